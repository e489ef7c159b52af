package com.lingting.example;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import com.google.rpc.RetryInfo;
import io.grpc.Status;
import io.grpc.protobuf.StatusProto;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * A failed Lingting call: the gRPC status code and message plus the {@code google.rpc} details the
 * server attached (why it failed, which request fields were wrong, when to retry).
 *
 * <p>Unchecked, so that service methods of a Spring app can let it reach a {@code @ControllerAdvice}
 * and map {@link #getCode()} to an HTTP status there.
 */
public class LingtingException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** One invalid request field, as reported in {@code google.rpc.BadRequest}. */
  public static final class FieldViolation {
    private final String field;
    private final String description;

    FieldViolation(String field, String description) {
      this.field = field;
      this.description = description;
    }

    /** Path of the offending field, such as {@code config.sample_rate_hertz}. */
    public String getField() {
      return field;
    }

    /** What is wrong with it. */
    public String getDescription() {
      return description;
    }

    @Override
    public String toString() {
      return field + ": " + description;
    }
  }

  private final Status.Code code;
  private final String statusMessage;
  private final String reason;
  private final String domain;
  private final Map<String, String> errorMetadata;
  private final List<FieldViolation> fieldViolations;
  private final Duration retryDelay;

  private LingtingException(
      Status.Code code,
      String statusMessage,
      String reason,
      String domain,
      Map<String, String> errorMetadata,
      List<FieldViolation> fieldViolations,
      Duration retryDelay,
      Throwable cause) {
    super(code + (statusMessage.isEmpty() ? "" : ": " + statusMessage), cause);
    this.code = code;
    this.statusMessage = statusMessage;
    this.reason = reason;
    this.domain = domain;
    this.errorMetadata = errorMetadata;
    this.fieldViolations = fieldViolations;
    this.retryDelay = retryDelay;
  }

  /**
   * Builds the exception from whatever a stub threw: a StatusRuntimeException or StatusException
   * (rich details decoded from the {@code grpc-status-details-bin} trailer), or any other throwable
   * (code UNKNOWN).
   */
  public static LingtingException from(Throwable t) {
    if (t instanceof LingtingException) {
      return (LingtingException) t;
    }
    Status status = Status.fromThrowable(t);
    String message = status.getDescription() == null ? "" : status.getDescription();
    String reason = "";
    String domain = "";
    Map<String, String> metadata = Collections.emptyMap();
    List<FieldViolation> violations = new ArrayList<>();
    Duration retryDelay = null;
    com.google.rpc.Status rich = StatusProto.fromThrowable(t);
    if (rich != null) {
      for (Any detail : rich.getDetailsList()) {
        try {
          if (detail.is(ErrorInfo.class)) {
            ErrorInfo info = detail.unpack(ErrorInfo.class);
            reason = info.getReason();
            domain = info.getDomain();
            metadata = info.getMetadataMap();
          } else if (detail.is(BadRequest.class)) {
            for (BadRequest.FieldViolation v : detail.unpack(BadRequest.class).getFieldViolationsList()) {
              violations.add(new FieldViolation(v.getField(), v.getDescription()));
            }
          } else if (detail.is(RetryInfo.class)) {
            com.google.protobuf.Duration d = detail.unpack(RetryInfo.class).getRetryDelay();
            retryDelay = Duration.ofSeconds(d.getSeconds(), d.getNanos());
          }
        } catch (InvalidProtocolBufferException e) {
          // A malformed detail must not hide the status itself; keep what was decoded.
        }
      }
    }
    return new LingtingException(
        status.getCode(),
        message,
        reason,
        domain,
        metadata,
        Collections.unmodifiableList(violations),
        retryDelay,
        t);
  }

  /** The gRPC status code, such as NOT_FOUND or INVALID_ARGUMENT. */
  public Status.Code getCode() {
    return code;
  }

  /** The server's human-readable message (may be empty). */
  public String getStatusMessage() {
    return statusMessage;
  }

  /** {@code ErrorInfo.reason}, such as {@code AUDIO_DECODE_FAILED}; empty when not sent. */
  public String getReason() {
    return reason;
  }

  /** {@code ErrorInfo.domain}, {@code lingting.asr.v1} for Lingting's own reasons. */
  public String getDomain() {
    return domain;
  }

  /** {@code ErrorInfo.metadata}: machine-readable facts about the error (limits, names). */
  public Map<String, String> getErrorMetadata() {
    return errorMetadata;
  }

  /** {@code BadRequest.field_violations}: each invalid request field; empty when none. */
  public List<FieldViolation> getFieldViolations() {
    return fieldViolations;
  }

  /** {@code RetryInfo.retry_delay}: how long to wait before retrying, or null when not sent. */
  public Duration getRetryDelay() {
    return retryDelay;
  }

  /** Whether retrying the same call later may succeed. */
  public boolean isRetryable() {
    return code == Status.Code.UNAVAILABLE
        || code == Status.Code.RESOURCE_EXHAUSTED
        || code == Status.Code.ABORTED
        || retryDelay != null;
  }
}
