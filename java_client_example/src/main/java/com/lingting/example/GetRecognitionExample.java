package com.lingting.example;

import com.lingting.asr.v1.Recognition;
import com.lingting.asr.v1.SegmentResult;
import com.lingting.asr.v1.WordInfo;
import java.util.Map;

/**
 * Fetches one stored recognition with its segments and word timings (words are present when the
 * recognition was made with {@code enable_word_time_offsets}). Another tenant's id is NOT_FOUND,
 * exactly as if it did not exist.
 */
final class GetRecognitionExample {
  private GetRecognitionExample() {}

  static int run(LingtingClient client, Args args) {
    long id = Long.parseLong(args.positional(0, "ID"));
    Recognition r = client.getRecognition(id);
    System.out.println("RECOGNITION_ID: " + r.getId());
    System.out.println("RECOGNITION: " + r.getName());
    System.out.println("STATE: " + r.getState());
    System.out.println("CREATED: " + HistoryExample.instant(r.getCreateTime()));
    for (Map.Entry<String, String> label : r.getLabelsMap().entrySet()) {
      System.out.println("LABEL: " + label.getKey() + "=" + label.getValue());
    }
    System.out.println("TRANSCRIPT: " + r.getTranscript());
    System.out.println("TRANSCRIPT_RAW: " + r.getTranscriptRaw());
    System.out.println("MODEL: " + r.getMetadata().getModel());
    System.out.println("AUDIO_MS: " + r.getMetadata().getAudioDurationMs());
    if (r.getState() == Recognition.State.STATE_FAILED) {
      System.out.println("FAILED: " + r.getError().getCode() + " " + r.getError().getMessage());
    }
    for (SegmentResult segment : r.getResultsList()) {
      System.out.println(
          "SEGMENT: " + segment.getStartOffsetMs() + "-" + segment.getEndOffsetMs() + " "
              + segment.getTranscript());
      for (WordInfo word : segment.getWordsList()) {
        System.out.println(
            "WORD: " + word.getStartOffsetMs() + "-" + word.getEndOffsetMs() + " " + word.getWord());
      }
    }
    return 0;
  }
}
