package com.lingting.example;

import com.google.protobuf.ByteString;
import com.lingting.asr.v1.Hotword;
import com.lingting.asr.v1.HotwordConfig;
import com.lingting.asr.v1.RecognitionConfig;
import com.lingting.asr.v1.RecognitionMetadata;
import com.lingting.asr.v1.RecognizeRequest;
import com.lingting.asr.v1.RecognizeResponse;
import com.lingting.asr.v1.SegmentResult;
import com.lingting.asr.v1.StreamingRecognitionConfig;
import com.lingting.asr.v1.StreamingRecognitionResult;
import com.lingting.asr.v1.StreamingRecognizeResponse;
import com.lingting.asr.v1.WordInfo;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Transcribes a recording file of any container format. Small files go in one Recognize call;
 * files above {@code --stream-threshold} (default 4 MiB, well under the server's 64 MiB message
 * limit) are uploaded in chunks through StreamingRecognize, which has no size limit.
 */
final class TranscribeFileExample {
  private static final long DEFAULT_STREAM_THRESHOLD = 4L * 1024 * 1024;
  private static final int UPLOAD_CHUNK_BYTES = 256 * 1024;

  private TranscribeFileExample() {}

  static int run(LingtingClient client, Args args) throws IOException {
    Path file = Path.of(args.positional(0, "FILE"));
    RecognitionConfig config = config(args);
    long size = Files.size(file);
    boolean stream = args.flag("stream") || size > args.getLong("stream-threshold", DEFAULT_STREAM_THRESHOLD);
    String requestId = args.get("request-id", "");
    boolean persist = !args.flag("no-persist");
    if (!stream) {
      RecognizeResponse response =
          client.recognize(
              RecognizeRequest.newBuilder()
                  .setConfig(config)
                  .setContent(ByteString.copyFrom(Files.readAllBytes(file)))
                  .putAllLabels(args.pairs("label"))
                  .setRequestId(requestId)
                  .setPersist(persist)
                  .build());
      System.out.println("MODE: unary");
      printResult(
          response.getTranscript(), response.getRecognitionId(), response.getRecognition(),
          response.getMetadata(), response.getResultsList());
      return 0;
    }
    StreamingRecognitionConfig streamingConfig =
        StreamingRecognitionConfig.newBuilder()
            .setConfig(config)
            .putAllLabels(args.pairs("label"))
            .setRequestId(requestId)
            .setPersist(persist)
            .build();
    // Final segment results arrive in END_OF_SEGMENT messages (on a gRPC thread); the last
    // message carries the transcript, the metadata and the stored recognition's id.
    List<SegmentResult> segments = Collections.synchronizedList(new ArrayList<>());
    StreamingRecognizeResponse last;
    try (InputStream in = Files.newInputStream(file)) {
      last =
          client.upload(
              streamingConfig,
              in,
              UPLOAD_CHUNK_BYTES,
              response -> {
                for (StreamingRecognitionResult result : response.getResultsList()) {
                  if (result.getIsFinal()) {
                    segments.add(result.getSegment());
                  }
                }
              });
    }
    System.out.println("MODE: stream");
    printResult(
        last.getTranscript(), last.getRecognitionId(), last.getRecognition(), last.getMetadata(),
        segments);
    return 0;
  }

  /** The RecognitionConfig shared by the examples, from the command-line options. */
  static RecognitionConfig config(Args args) {
    // ENCODING_UNSPECIFIED: the server detects WAV, FLAC, MP3, Ogg, M4A, WebM from the header.
    RecognitionConfig.Builder config =
        RecognitionConfig.newBuilder()
            .setLanguageCode(args.get("language", ""))
            .setEnableWordTimeOffsets(args.flag("words"));
    List<String> sets = args.all("hotword-set");
    List<String> phrases = args.all("hotword");
    if (!sets.isEmpty() || !phrases.isEmpty()) {
      HotwordConfig.Builder hotwords = HotwordConfig.newBuilder().addAllHotwordSets(sets);
      for (String phrase : phrases) {
        hotwords.addHotwords(Hotword.newBuilder().setPhrase(phrase));
      }
      config.setHotwordConfig(hotwords);
    }
    return config.build();
  }

  static void printResult(
      String transcript, long id, String name, RecognitionMetadata metadata,
      List<SegmentResult> segments) {
    System.out.println("TRANSCRIPT: " + transcript);
    System.out.println("RECOGNITION_ID: " + id);
    System.out.println("RECOGNITION: " + name);
    System.out.println("MODEL: " + metadata.getModel());
    System.out.println("AUDIO_MS: " + metadata.getAudioDurationMs());
    System.out.println("REQUEST_ID: " + metadata.getRequestId());
    if (!metadata.getAppliedHotwordSetsList().isEmpty()) {
      System.out.println("APPLIED_HOTWORD_SETS: " + String.join(",", metadata.getAppliedHotwordSetsList()));
    }
    System.out.println("APPLIED_HOTWORDS: " + metadata.getAppliedHotwordsCount());
    for (String warning : metadata.getWarningsList()) {
      System.out.println("WARNING: " + warning);
    }
    for (SegmentResult segment : segments) {
      System.out.println(
          "SEGMENT: " + segment.getStartOffsetMs() + "-" + segment.getEndOffsetMs() + " "
              + segment.getTranscript());
      for (WordInfo word : segment.getWordsList()) {
        System.out.println(
            "WORD: " + word.getStartOffsetMs() + "-" + word.getEndOffsetMs() + " " + word.getWord());
      }
    }
  }
}
