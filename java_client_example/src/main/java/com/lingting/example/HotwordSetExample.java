package com.lingting.example;

import com.google.protobuf.ByteString;
import com.lingting.asr.v1.Hotword;
import com.lingting.asr.v1.HotwordConfig;
import com.lingting.asr.v1.HotwordSet;
import com.lingting.asr.v1.RecognitionConfig;
import com.lingting.asr.v1.RecognizeRequest;
import com.lingting.asr.v1.RecognizeResponse;
import io.grpc.Status;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * A hotword set's whole life: create it, update it with optimistic locking (the etag), see a stale
 * etag rejected, recognise a file with it, delete it. Stored sets let every backend instance and
 * every request share one list of product and person names.
 */
final class HotwordSetExample {
  private HotwordSetExample() {}

  static int run(LingtingClient client, Args args) throws IOException {
    Path audio = Path.of(args.positional(0, "WAV"));
    String setId = args.get("set-id", "example-products");
    List<String> phrases = args.all("phrase").isEmpty() ? List.of("lingting", "paraformer") : args.all("phrase");

    HotwordSet.Builder draft =
        HotwordSet.newBuilder()
            .setDisplayName("Example products")
            .setLanguageCode(args.get("language", ""));
    for (String phrase : phrases) {
      draft.addPhrases(Hotword.newBuilder().setPhrase(phrase));
    }
    HotwordSet created = client.createHotwordSet(setId, draft.build());
    System.out.println("CREATED: " + created.getName() + " id=" + created.getId() + " etag=" + created.getEtag());

    // Read-modify-write: send back the etag we read; the server refuses if someone changed the set.
    HotwordSet updated =
        client.updateHotwordSet(
            created.toBuilder()
                .setDisplayName("Example products (boosted)")
                .addPhrases(Hotword.newBuilder().setPhrase("hotword").setBoost(3.0f))
                .build(),
            "display_name",
            "phrases");
    System.out.println(
        "UPDATED: " + updated.getName() + " etag=" + updated.getEtag()
            + " phrases=" + updated.getPhrasesCount() + " display_name=" + updated.getDisplayName());

    try {
      client.updateHotwordSet(created.toBuilder().setDisplayName("lost update").build(), "display_name");
      System.out.println("STALE_UPDATE: accepted");
    } catch (LingtingException e) {
      // ABORTED: re-read the set, re-apply the change, try again.
      System.out.println("STALE_UPDATE: " + e.getCode() + " " + e.getStatusMessage());
    }

    RecognizeResponse response =
        client.recognize(
            RecognizeRequest.newBuilder()
                .setConfig(
                    RecognitionConfig.newBuilder()
                        .setLanguageCode(args.get("language", ""))
                        .setHotwordConfig(HotwordConfig.newBuilder().addHotwordSets(updated.getName())))
                .setContent(ByteString.copyFrom(Files.readAllBytes(audio)))
                .putLabels("example", "hotwords")
                .build());
    System.out.println("TRANSCRIPT: " + response.getTranscript());
    System.out.println("RECOGNITION_ID: " + response.getRecognitionId());
    System.out.println(
        "APPLIED_HOTWORD_SETS: " + String.join(",", response.getMetadata().getAppliedHotwordSetsList()));
    System.out.println("APPLIED_HOTWORDS: " + response.getMetadata().getAppliedHotwordsCount());
    for (String warning : response.getMetadata().getWarningsList()) {
      System.out.println("WARNING: " + warning);
    }

    if (args.flag("keep")) {
      return 0;
    }
    client.deleteHotwordSet(updated.getName(), updated.getEtag());
    System.out.println("DELETED: " + updated.getName());
    try {
      client.getHotwordSet(updated.getName());
      System.out.println("AFTER_DELETE: still there");
      return 1;
    } catch (LingtingException e) {
      if (e.getCode() != Status.Code.NOT_FOUND) {
        throw e;
      }
      System.out.println("AFTER_DELETE: " + e.getCode());
    }
    return 0;
  }
}
