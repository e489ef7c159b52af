package com.lingting.example;

import com.lingting.asr.v1.Model;
import java.time.Duration;
import java.util.Set;

/**
 * The examples behind one command line:
 *
 * <pre>
 *   Main [--target host:port] [--api-key KEY] [--deadline-ms N] COMMAND ...
 *     models                         the loaded models
 *     transcribe FILE [options]      a file: unary Recognize, or a streamed upload when large
 *     stream WAV [options]           real-time LINEAR16 stream with interim and final results
 *     hotwords WAV --set-id ID       create, update (etag), use and delete a hotword set
 *     history [filters]              page through the tenant's recognitions
 *     get ID                         one recognition with segments, words and timestamps
 * </pre>
 *
 * The target and key default to the LINGTING_TARGET and LINGTING_API_KEY environment variables.
 * Every result is printed as {@code KEY: value} lines; a failed call prints {@code ERROR: CODE
 * message} (plus the decoded details) and exits with status 3.
 */
public final class Main {
  private static final Set<String> FLAGS =
      Set.of("stream", "words", "no-persist", "no-interim", "keep", "help");

  private Main() {}

  public static void main(String[] argv) {
    System.exit(run(argv));
  }

  static int run(String[] argv) {
    int i = 0;
    String target = env("LINGTING_TARGET", "127.0.0.1:50051");
    String apiKey = env("LINGTING_API_KEY", "");
    long deadlineMs = 60_000;
    while (i < argv.length && argv[i].startsWith("--")) {
      String option = argv[i];
      if (option.equals("--help")) {
        return usage(0);
      }
      if (i + 1 >= argv.length) {
        return usage(2);
      }
      String value = argv[i + 1];
      switch (option) {
        case "--target":
          target = value;
          break;
        case "--api-key":
          apiKey = value;
          break;
        case "--deadline-ms":
          deadlineMs = Long.parseLong(value);
          break;
        default:
          System.err.println("unknown option " + option);
          return usage(2);
      }
      i += 2;
    }
    if (i >= argv.length) {
      return usage(2);
    }
    String command = argv[i];
    Args args;
    try {
      args = new Args(argv, i + 1, FLAGS);
    } catch (IllegalArgumentException e) {
      System.err.println(e.getMessage());
      return usage(2);
    }
    if (apiKey.isEmpty()) {
      System.err.println("no API key: pass --api-key or set LINGTING_API_KEY");
      return 2;
    }
    try (LingtingClient client =
        LingtingClient.builder()
            .target(target)
            .apiKey(apiKey)
            .deadline(Duration.ofMillis(deadlineMs))
            .build()) {
      switch (command) {
        case "models":
          return listModels(client);
        case "transcribe":
          return TranscribeFileExample.run(client, args);
        case "stream":
          return StreamWavExample.run(client, args);
        case "hotwords":
          return HotwordSetExample.run(client, args);
        case "history":
          return HistoryExample.run(client, args);
        case "get":
          return GetRecognitionExample.run(client, args);
        default:
          System.err.println("unknown command " + command);
          return usage(2);
      }
    } catch (LingtingException e) {
      printError(e);
      return 3;
    } catch (IllegalArgumentException e) {
      System.err.println(e.getMessage());
      return 2;
    } catch (java.io.IOException e) {
      System.out.println("ERROR: IO " + e.getMessage());
      return 4;
    }
  }

  private static int listModels(LingtingClient client) {
    for (Model model : client.listModels()) {
      System.out.println(
          "MODEL: " + model.getName() + " family=" + model.getFamily()
              + " languages=" + String.join(",", model.getLanguagesList())
              + " default=" + model.getIsDefault());
    }
    return 0;
  }

  /** The machine-readable form of a failed call, used by every example. */
  static void printError(LingtingException e) {
    System.out.println("ERROR: " + e.getCode() + " " + e.getStatusMessage());
    if (!e.getReason().isEmpty()) {
      System.out.println("ERROR_REASON: " + e.getReason() + " (" + e.getDomain() + ")");
    }
    for (LingtingException.FieldViolation v : e.getFieldViolations()) {
      System.out.println("FIELD_VIOLATION: " + v);
    }
    if (e.getRetryDelay() != null) {
      System.out.println("RETRY_DELAY_MS: " + e.getRetryDelay().toMillis());
    }
  }

  private static String env(String name, String fallback) {
    String value = System.getenv(name);
    return value == null || value.isEmpty() ? fallback : value;
  }

  private static int usage(int status) {
    System.err.println(
        String.join(
            "\n",
            "usage: Main [--target host:port] [--api-key KEY] [--deadline-ms N] COMMAND ...",
            "  models",
            "  transcribe FILE [--stream] [--stream-threshold BYTES] [--language L] [--words]",
            "                  [--label k=v]... [--hotword-set NAME]... [--hotword PHRASE]...",
            "                  [--request-id ID] [--no-persist]",
            "  stream WAV [--speed X (0 = as fast as possible)] [--chunk-ms 100] [--no-interim]",
            "             [--label k=v]... [--language L]",
            "  hotwords WAV --set-id ID [--phrase P]... [--language L]",
            "  history [--since ISO-8601] [--until ISO-8601] [--label k=v]... [--contains TEXT]",
            "          [--page-size N] [--max-pages N]",
            "  get ID",
            "environment: LINGTING_TARGET (default 127.0.0.1:50051), LINGTING_API_KEY"));
    return status;
  }
}
