package com.lingting.example;

import com.google.protobuf.ByteString;
import com.lingting.asr.v1.Encoding;
import com.lingting.asr.v1.RecognitionConfig;
import com.lingting.asr.v1.SegmentResult;
import com.lingting.asr.v1.StreamingRecognitionConfig;
import com.lingting.asr.v1.StreamingRecognitionResult;
import com.lingting.asr.v1.StreamingRecognizeResponse;
import java.io.IOException;
import java.nio.file.Path;

/**
 * Streams a 16-bit PCM WAV file as if it came from a microphone: LINEAR16 chunks of {@code
 * --chunk-ms} (default 100 ms) paced at real time ({@code --speed 1}), faster ({@code --speed 4}) or
 * unpaced ({@code --speed 0}). Interim hypotheses and final segments are printed as they arrive.
 * A live source (a telephony bridge, a browser socket) replaces the file loop with its own frames.
 */
final class StreamWavExample {
  private StreamWavExample() {}

  static int run(LingtingClient client, Args args) throws IOException {
    WavFile wav = WavFile.read(Path.of(args.positional(0, "WAV")));
    long chunkMs = args.getLong("chunk-ms", 100);
    double speed = args.getDouble("speed", 1.0);
    RecognitionConfig config =
        TranscribeFileExample.config(args).toBuilder()
            .setEncoding(Encoding.ENCODING_LINEAR16)
            .setSampleRateHertz(wav.sampleRate)
            .setAudioChannelCount(wav.channels)
            .build();
    StreamingRecognitionConfig streamingConfig =
        StreamingRecognitionConfig.newBuilder()
            .setConfig(config)
            .setInterimResults(!args.flag("no-interim"))
            .putAllLabels(args.pairs("label"))
            .build();

    long started = System.nanoTime();
    StreamingRecognizeResponse last;
    try (LingtingClient.StreamingSession session =
        client.stream(streamingConfig, response -> print(response, started))) {
      int chunkBytes = Math.max(2, wav.bytesFor(chunkMs));
      int chunks = 0;
      for (int offset = 0; offset < wav.pcm.length; offset += chunkBytes) {
        if (speed > 0) {
          // Sleep until this chunk would have been captured by a live source.
          long due = started + (long) (chunks * chunkMs * 1_000_000L / speed);
          long wait = due - System.nanoTime();
          if (wait > 0) {
            sleepNanos(wait);
          }
        }
        int end = Math.min(wav.pcm.length, offset + chunkBytes);
        session.send(ByteString.copyFrom(wav.pcm, offset, end - offset));
        chunks++;
      }
      System.out.println("SENT_CHUNKS: " + chunks);
      last = session.finish();
    }
    System.out.println("TRANSCRIPT: " + last.getTranscript());
    System.out.println("RECOGNITION_ID: " + last.getRecognitionId());
    System.out.println("RECOGNITION: " + last.getRecognition());
    System.out.println("AUDIO_MS: " + last.getMetadata().getAudioDurationMs());
    return 0;
  }

  private static void print(StreamingRecognizeResponse response, long started) {
    long elapsedMs = (System.nanoTime() - started) / 1_000_000L;
    for (StreamingRecognitionResult result : response.getResultsList()) {
      SegmentResult segment = result.getSegment();
      if (result.getIsFinal()) {
        System.out.println(
            "FINAL: " + segment.getStartOffsetMs() + "-" + segment.getEndOffsetMs() + " "
                + segment.getTranscript() + " (at " + elapsedMs + " ms)");
      } else {
        System.out.println(
            "INTERIM: " + segment.getTranscript() + " (stability " + result.getStability() + ")");
      }
    }
  }

  private static void sleepNanos(long nanos) {
    try {
      Thread.sleep(nanos / 1_000_000L, (int) (nanos % 1_000_000L));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while pacing audio", e);
    }
  }
}
