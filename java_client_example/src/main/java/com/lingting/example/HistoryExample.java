package com.lingting.example;

import com.google.protobuf.Timestamp;
import com.lingting.asr.v1.ListRecognitionsRequest;
import com.lingting.asr.v1.ListRecognitionsResponse;
import com.lingting.asr.v1.Recognition;
import java.time.Instant;
import java.util.Map;
import java.util.TreeMap;

/**
 * Pages through the tenant's recognitions, newest first, filtered by creation time, labels and
 * text. Labels are how a backend joins Lingting's history to its own rows: attach {@code call_id}
 * when recognising, filter by it here.
 */
final class HistoryExample {
  private HistoryExample() {}

  static int run(LingtingClient client, Args args) {
    ListRecognitionsRequest.Builder request =
        ListRecognitionsRequest.newBuilder()
            .setPageSize((int) args.getLong("page-size", 50))
            .putAllLabels(args.pairs("label"))
            .setTranscriptContains(args.get("contains", ""));
    String since = args.get("since", null);
    if (since != null) {
      request.setCreateTimeStart(timestamp(Instant.parse(since)));
    }
    String until = args.get("until", null);
    if (until != null) {
      request.setCreateTimeEnd(timestamp(Instant.parse(until)));
    }
    long maxPages = args.getLong("max-pages", Long.MAX_VALUE);
    int pages = 0;
    int total = 0;
    String token = "";
    do {
      // The same filters on every page; only the token changes.
      ListRecognitionsResponse page = client.listRecognitions(request.setPageToken(token).build());
      pages++;
      for (Recognition r : page.getRecognitionsList()) {
        total++;
        System.out.println(
            "RECOGNITION: " + r.getId() + " " + instant(r.getCreateTime()) + " " + r.getState()
                + " labels=" + labels(r.getLabelsMap()) + " " + r.getTranscript());
      }
      token = page.getNextPageToken();
      System.out.println("PAGE: " + pages + " size=" + page.getRecognitionsCount() + " more=" + !token.isEmpty());
    } while (!token.isEmpty() && pages < maxPages);
    System.out.println("TOTAL: " + total);
    return 0;
  }

  /** java.time to protobuf without protobuf-java-util. */
  static Timestamp timestamp(Instant instant) {
    return Timestamp.newBuilder().setSeconds(instant.getEpochSecond()).setNanos(instant.getNano()).build();
  }

  static Instant instant(Timestamp timestamp) {
    return Instant.ofEpochSecond(timestamp.getSeconds(), timestamp.getNanos());
  }

  static String labels(Map<String, String> labels) {
    return new TreeMap<>(labels).toString();
  }
}
