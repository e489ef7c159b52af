package com.lingting.example;

import com.google.protobuf.ByteString;
import com.google.protobuf.FieldMask;
import com.lingting.asr.v1.CreateHotwordSetRequest;
import com.lingting.asr.v1.DeleteHotwordSetRequest;
import com.lingting.asr.v1.DeleteRecognitionRequest;
import com.lingting.asr.v1.GetHotwordSetRequest;
import com.lingting.asr.v1.GetRecognitionRequest;
import com.lingting.asr.v1.HotwordSet;
import com.lingting.asr.v1.HotwordSetServiceGrpc;
import com.lingting.asr.v1.ListHotwordSetsRequest;
import com.lingting.asr.v1.ListHotwordSetsResponse;
import com.lingting.asr.v1.ListModelsRequest;
import com.lingting.asr.v1.ListRecognitionsRequest;
import com.lingting.asr.v1.ListRecognitionsResponse;
import com.lingting.asr.v1.Model;
import com.lingting.asr.v1.Recognition;
import com.lingting.asr.v1.RecognitionServiceGrpc;
import com.lingting.asr.v1.RecognizeRequest;
import com.lingting.asr.v1.RecognizeResponse;
import com.lingting.asr.v1.SpeechEventType;
import com.lingting.asr.v1.StreamingRecognitionConfig;
import com.lingting.asr.v1.StreamingRecognizeRequest;
import com.lingting.asr.v1.StreamingRecognizeResponse;
import com.lingting.asr.v1.UpdateHotwordSetRequest;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.stub.AbstractStub;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.grpc.stub.MetadataUtils;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

/**
 * One connection to a Lingting server for one tenant (API key). Thread-safe and meant to live as
 * long as the application: register it as a singleton (a Spring {@code @Bean(destroyMethod =
 * "close")}) and share it; gRPC multiplexes all calls over one HTTP/2 connection.
 *
 * <p>What it adds to the generated stubs: the API key on every call, a deadline on every call,
 * retries of idempotent reads when the server is briefly UNAVAILABLE (a replica restarting), errors
 * as {@link LingtingException}, flow-controlled streaming, and an orderly {@link #close()}.
 */
public final class LingtingClient implements AutoCloseable {
  private static final String RECOGNITION_SERVICE = "lingting.asr.v1.RecognitionService";
  private static final String HOTWORD_SET_SERVICE = "lingting.asr.v1.HotwordSetService";
  private static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private final ManagedChannel channel;
  private final boolean ownsChannel;
  private final Duration deadline;
  private final Duration streamDeadline;
  private final RecognitionServiceGrpc.RecognitionServiceBlockingStub recognition;
  private final RecognitionServiceGrpc.RecognitionServiceStub recognitionAsync;
  private final HotwordSetServiceGrpc.HotwordSetServiceBlockingStub hotwordSets;

  private LingtingClient(
      ManagedChannel channel, boolean ownsChannel, Duration deadline, Duration streamDeadline) {
    this.channel = channel;
    this.ownsChannel = ownsChannel;
    this.deadline = deadline;
    this.streamDeadline = streamDeadline;
    this.recognition = RecognitionServiceGrpc.newBlockingStub(channel);
    this.recognitionAsync = RecognitionServiceGrpc.newStub(channel);
    this.hotwordSets = HotwordSetServiceGrpc.newBlockingStub(channel);
  }

  /** Starts a builder; {@link Builder#build()} opens the channel (lazily: nothing connects yet). */
  public static Builder builder() {
    return new Builder();
  }

  /** Settings of a {@link LingtingClient}. */
  public static final class Builder {
    private String host = "127.0.0.1";
    private int port = 50051;
    private String apiKey;
    private File trustedCertificates;
    private boolean plaintext = true;
    private Duration deadline = Duration.ofSeconds(60);
    private Duration streamDeadline = Duration.ofMinutes(30);
    private int maxInboundMessageBytes = 64 * 1024 * 1024;

    private Builder() {}

    /** Server address; default 127.0.0.1:50051. */
    public Builder address(String host, int port) {
      this.host = Objects.requireNonNull(host, "host");
      this.port = port;
      return this;
    }

    /** Server address as {@code host:port}. */
    public Builder target(String target) {
      int colon = target.lastIndexOf(':');
      if (colon <= 0) {
        throw new IllegalArgumentException("target must be host:port, got " + target);
      }
      return address(target.substring(0, colon), Integer.parseInt(target.substring(colon + 1)));
    }

    /** The tenant's API key, sent as {@code authorization: Bearer <key>}. Required. */
    public Builder apiKey(String apiKey) {
      this.apiKey = apiKey;
      return this;
    }

    /** Plaintext HTTP/2 (the default): only on a trusted network or through a TLS-ending proxy. */
    public Builder plaintext() {
      this.plaintext = true;
      this.trustedCertificates = null;
      return this;
    }

    /** TLS, trusting the system's CAs. */
    public Builder useTls() {
      this.plaintext = false;
      return this;
    }

    /** TLS, trusting the CA certificates in this PEM file (a private CA). */
    public Builder trustCertificates(File pemFile) {
      this.plaintext = false;
      this.trustedCertificates = pemFile;
      return this;
    }

    /** Deadline of every unary call (default 60 s). */
    public Builder deadline(Duration deadline) {
      this.deadline = Objects.requireNonNull(deadline, "deadline");
      return this;
    }

    /** Deadline of a whole streaming call (default 30 min); null means none. */
    public Builder streamDeadline(Duration streamDeadline) {
      this.streamDeadline = streamDeadline;
      return this;
    }

    /** Largest response accepted (default 64 MiB: long recordings with word timings are big). */
    public Builder maxInboundMessageBytes(int bytes) {
      this.maxInboundMessageBytes = bytes;
      return this;
    }

    /** Opens the channel. */
    public LingtingClient build() {
      if (apiKey == null || apiKey.isEmpty()) {
        throw new IllegalArgumentException("an API key is required");
      }
      ChannelCredentials credentials;
      if (plaintext) {
        credentials = InsecureChannelCredentials.create();
      } else if (trustedCertificates != null) {
        try {
          credentials = TlsChannelCredentials.newBuilder().trustManager(trustedCertificates).build();
        } catch (IOException e) {
          throw new IllegalArgumentException("cannot read " + trustedCertificates, e);
        }
      } else {
        credentials = TlsChannelCredentials.create();
      }
      Metadata headers = new Metadata();
      headers.put(AUTHORIZATION, "Bearer " + apiKey);
      ManagedChannelBuilder<?> builder =
          Grpc.newChannelBuilderForAddress(host, port, credentials)
              .intercept(MetadataUtils.newAttachHeadersInterceptor(headers))
              .defaultServiceConfig(serviceConfig())
              .enableRetry()
              .maxInboundMessageSize(maxInboundMessageBytes)
              .userAgent("lingting-java-example");
      return new LingtingClient(builder.build(), true, deadline, streamDeadline);
    }
  }

  /**
   * The channel's service config: reads are retried up to 4 times on UNAVAILABLE with exponential
   * backoff. Writes are not: a Recognize that reached the server may have been stored (send a
   * {@code request_id} and retry yourself to make it idempotent). Numbers must be Doubles here.
   */
  static Map<String, Object> serviceConfig() {
    List<Map<String, Object>> names = new ArrayList<>();
    for (String method : new String[] {"GetRecognition", "ListRecognitions", "ListModels"}) {
      names.add(Map.of("service", RECOGNITION_SERVICE, "method", method));
    }
    for (String method : new String[] {"GetHotwordSet", "ListHotwordSets"}) {
      names.add(Map.of("service", HOTWORD_SET_SERVICE, "method", method));
    }
    Map<String, Object> retryPolicy = new LinkedHashMap<>();
    retryPolicy.put("maxAttempts", 4.0);
    retryPolicy.put("initialBackoff", "0.2s");
    retryPolicy.put("maxBackoff", "2s");
    retryPolicy.put("backoffMultiplier", 2.0);
    retryPolicy.put("retryableStatusCodes", List.of("UNAVAILABLE"));
    Map<String, Object> methodConfig = new LinkedHashMap<>();
    methodConfig.put("name", names);
    methodConfig.put("retryPolicy", retryPolicy);
    return Map.of("methodConfig", List.of(methodConfig));
  }

  /**
   * A client sharing this one's connection whose unary calls use another deadline (for one slow
   * call, or a tight one). Closing it does nothing; close the original.
   */
  public LingtingClient withDeadline(Duration newDeadline) {
    return new LingtingClient(channel, false, newDeadline, streamDeadline);
  }

  private <S extends AbstractStub<S>> S timed(S stub) {
    return stub.withDeadlineAfter(deadline.toMillis(), TimeUnit.MILLISECONDS);
  }

  // ---- Recognition ----

  /** Recognises one recording sent in one message (files up to a few MiB; else {@link #upload}). */
  public RecognizeResponse recognize(RecognizeRequest request) {
    try {
      return timed(recognition).recognize(request);
    } catch (StatusRuntimeException e) {
      throw LingtingException.from(e);
    }
  }

  /** One stored recognition of this tenant, by numeric id; NOT_FOUND for other tenants' ids. */
  public Recognition getRecognition(long id) {
    try {
      return timed(recognition)
          .getRecognition(GetRecognitionRequest.newBuilder().setName("recognitions/" + id).build())
          .getRecognition();
    } catch (StatusRuntimeException e) {
      throw LingtingException.from(e);
    }
  }

  /** One page of this tenant's history, newest first. */
  public ListRecognitionsResponse listRecognitions(ListRecognitionsRequest request) {
    try {
      return timed(recognition).listRecognitions(request);
    } catch (StatusRuntimeException e) {
      throw LingtingException.from(e);
    }
  }

  /** Deletes one stored recognition of this tenant. */
  public void deleteRecognition(long id) {
    try {
      timed(recognition)
          .deleteRecognition(
              DeleteRecognitionRequest.newBuilder().setName("recognitions/" + id).build());
    } catch (StatusRuntimeException e) {
      throw LingtingException.from(e);
    }
  }

  /** The models the server has loaded. */
  public List<Model> listModels() {
    try {
      return timed(recognition).listModels(ListModelsRequest.getDefaultInstance()).getModelsList();
    } catch (StatusRuntimeException e) {
      throw LingtingException.from(e);
    }
  }

  // ---- Hotword sets ----

  /** Creates a hotword set with the id {@code setId}; ALREADY_EXISTS when taken. */
  public HotwordSet createHotwordSet(String setId, HotwordSet set) {
    try {
      return timed(hotwordSets)
          .createHotwordSet(
              CreateHotwordSetRequest.newBuilder().setHotwordSetId(setId).setHotwordSet(set).build())
          .getHotwordSet();
    } catch (StatusRuntimeException e) {
      throw LingtingException.from(e);
    }
  }

  /** Reads a hotword set by name ({@code hotwordSets/products}) or bare id ({@code products}). */
  public HotwordSet getHotwordSet(String name) {
    try {
      return timed(hotwordSets)
          .getHotwordSet(GetHotwordSetRequest.newBuilder().setName(setName(name)).build())
          .getHotwordSet();
    } catch (StatusRuntimeException e) {
      throw LingtingException.from(e);
    }
  }

  /** One page of the tenant's hotword sets. */
  public ListHotwordSetsResponse listHotwordSets(ListHotwordSetsRequest request) {
    try {
      return timed(hotwordSets).listHotwordSets(request);
    } catch (StatusRuntimeException e) {
      throw LingtingException.from(e);
    }
  }

  /**
   * Changes the fields of {@code set} named in {@code fields} ({@code display_name}, {@code
   * language_code}, {@code tenant_default}, {@code phrases}). {@code set.name} picks the set; when
   * {@code set.etag} is non-empty the update fails with ABORTED if someone changed the set since.
   */
  public HotwordSet updateHotwordSet(HotwordSet set, String... fields) {
    try {
      return timed(hotwordSets)
          .updateHotwordSet(
              UpdateHotwordSetRequest.newBuilder()
                  .setHotwordSet(set)
                  .setUpdateMask(FieldMask.newBuilder().addAllPaths(List.of(fields)))
                  .build())
          .getHotwordSet();
    } catch (StatusRuntimeException e) {
      throw LingtingException.from(e);
    }
  }

  /** Deletes a hotword set; with a non-empty etag only if it is unchanged (else ABORTED). */
  public void deleteHotwordSet(String name, String etag) {
    try {
      timed(hotwordSets)
          .deleteHotwordSet(
              DeleteHotwordSetRequest.newBuilder()
                  .setName(setName(name))
                  .setEtag(etag == null ? "" : etag)
                  .build());
    } catch (StatusRuntimeException e) {
      throw LingtingException.from(e);
    }
  }

  private static String setName(String name) {
    return name.startsWith("hotwordSets/") ? name : "hotwordSets/" + name;
  }

  // ---- Streaming ----

  /**
   * Opens a StreamingRecognize call and sends {@code config} as its first message. Every response
   * (interim results, final segments, the END_OF_STREAM summary) is passed to {@code onResponse} on
   * a gRPC thread, in order. Feed audio with {@link StreamingSession#send}, then call {@link
   * StreamingSession#finish()}.
   */
  public StreamingSession stream(
      StreamingRecognitionConfig config, Consumer<StreamingRecognizeResponse> onResponse) {
    StreamingSession session = new StreamingSession(onResponse);
    RecognitionServiceGrpc.RecognitionServiceStub stub = recognitionAsync;
    if (streamDeadline != null) {
      stub = stub.withDeadlineAfter(streamDeadline.toMillis(), TimeUnit.MILLISECONDS);
    }
    session.start(stub, config);
    return session;
  }

  /**
   * Uploads a whole file through StreamingRecognize in {@code chunkBytes} pieces (no size limit,
   * memory stays flat) and returns the END_OF_STREAM response with the transcript and the stored
   * recognition's id.
   */
  public StreamingRecognizeResponse upload(
      StreamingRecognitionConfig config, InputStream audio, int chunkBytes) throws IOException {
    return upload(config, audio, chunkBytes, response -> {});
  }

  /** {@link #upload(StreamingRecognitionConfig, InputStream, int)}, seeing every response too. */
  public StreamingRecognizeResponse upload(
      StreamingRecognitionConfig config,
      InputStream audio,
      int chunkBytes,
      Consumer<StreamingRecognizeResponse> onResponse)
      throws IOException {
    try (StreamingSession session = stream(config, onResponse)) {
      byte[] buffer = new byte[chunkBytes];
      int n;
      while ((n = audio.read(buffer)) > 0) {
        session.send(ByteString.copyFrom(buffer, 0, n));
      }
      return session.finish();
    }
  }

  /**
   * A StreamingRecognize call in progress. {@link #send} blocks while the transport's buffer is
   * full, so a fast producer cannot pile audio up in memory.
   */
  public static final class StreamingSession implements AutoCloseable {
    private final Consumer<StreamingRecognizeResponse> onResponse;
    private final Object readiness = new Object();
    private final CountDownLatch done = new CountDownLatch(1);
    private final AtomicReference<Throwable> error = new AtomicReference<>();
    private final AtomicReference<StreamingRecognizeResponse> last = new AtomicReference<>();
    private ClientCallStreamObserver<StreamingRecognizeRequest> requests;
    private boolean finished;

    private StreamingSession(Consumer<StreamingRecognizeResponse> onResponse) {
      this.onResponse = onResponse;
    }

    private void start(
        RecognitionServiceGrpc.RecognitionServiceStub stub, StreamingRecognitionConfig config) {
      ClientResponseObserver<StreamingRecognizeRequest, StreamingRecognizeResponse> observer =
          new ClientResponseObserver<>() {
            @Override
            public void beforeStart(ClientCallStreamObserver<StreamingRecognizeRequest> stream) {
              stream.setOnReadyHandler(StreamingSession.this::wakeUp);
            }

            @Override
            public void onNext(StreamingRecognizeResponse response) {
              if (response.getSpeechEventType() == SpeechEventType.SPEECH_EVENT_TYPE_END_OF_STREAM) {
                last.set(response);
              }
              onResponse.accept(response);
            }

            @Override
            public void onError(Throwable t) {
              error.set(t);
              done.countDown();
              wakeUp();
            }

            @Override
            public void onCompleted() {
              done.countDown();
              wakeUp();
            }
          };
      requests =
          (ClientCallStreamObserver<StreamingRecognizeRequest>) stub.streamingRecognize(observer);
      requests.onNext(StreamingRecognizeRequest.newBuilder().setStreamingConfig(config).build());
    }

    private void wakeUp() {
      synchronized (readiness) {
        readiness.notifyAll();
      }
    }

    /** Sends one chunk of audio; throws if the call already failed. */
    public void send(ByteString audio) {
      synchronized (readiness) {
        while (!requests.isReady() && done.getCount() > 0) {
          try {
            readiness.wait(50);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            requests.cancel("interrupted", e);
            throw interrupted(e);
          }
        }
      }
      if (done.getCount() == 0) {
        throw failure();
      }
      requests.onNext(StreamingRecognizeRequest.newBuilder().setAudioContent(audio).build());
    }

    /**
     * Half-closes (no more audio), waits for the server to finish and returns the END_OF_STREAM
     * response.
     */
    public StreamingRecognizeResponse finish() {
      if (!finished) {
        finished = true;
        requests.onCompleted();
      }
      try {
        done.await();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        requests.cancel("interrupted", e);
        throw interrupted(e);
      }
      if (error.get() != null) {
        throw failure();
      }
      if (last.get() == null) {
        throw LingtingException.from(
            io.grpc.Status.INTERNAL
                .withDescription("stream ended without an END_OF_STREAM response")
                .asRuntimeException());
      }
      return last.get();
    }

    private static LingtingException interrupted(InterruptedException e) {
      return LingtingException.from(
          io.grpc.Status.CANCELLED.withDescription("interrupted").withCause(e).asRuntimeException());
    }

    private LingtingException failure() {
      Throwable t = error.get();
      return LingtingException.from(
          t != null ? t : io.grpc.Status.CANCELLED.withDescription("stream closed").asException());
    }

    /** Cancels the call if it has not finished (e.g. on an exception while sending). */
    @Override
    public void close() {
      if (done.getCount() > 0 && !finished) {
        requests.cancel("client closed the stream", null);
      }
    }
  }

  /**
   * Stops accepting calls, lets running ones finish for up to 5 s, then cancels the rest.
   */
  @Override
  public void close() {
    if (!ownsChannel) {
      return;
    }
    channel.shutdown();
    try {
      if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
        channel.shutdownNow();
        channel.awaitTermination(1, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      channel.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }
}
