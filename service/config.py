"""Server settings: defaults, overridden by a TOML/YAML file, by ``LINGTING_*`` variables, by CLI flags.

Every setting has one name used everywhere: ``port`` is ``port = 50051`` in the file,
``LINGTING_PORT`` in the environment and ``--port`` on the command line. Limits may also sit in a
``[limits]`` table of the file. The file comes from ``--config`` or ``LINGTING_CONFIG``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "Limits", "Settings", "load_settings", "setting_names"]

log = logging.getLogger(__name__)

ENV_PREFIX = "LINGTING_"
# LINGTING_* variables read elsewhere (not settings): the CLI's client, id-generator worker, migrations
# folder, and the test suite's switches.
OTHER_ENV_NAMES = frozenset(
    {
        "CONFIG",
        "WORKER_ID",
        "API_KEY",
        "SERVER",
        "MIGRATIONS_DIR",
        "REQUIRE_JAVA",
        "SKIP_JAVA",
        "SHARED_DIR",
        "SKIP_EXTERNAL_DB",
        "TEST_PG_URL",
        "TEST_MYSQL_URL",
    }
)
MIB = 1024 * 1024


class ConfigError(ValueError):
    """A setting is unknown or its value cannot be parsed."""


@dataclass(frozen=True, kw_only=True)
class Limits:
    """What one request may ask of the server; every value is configuration."""

    max_audio_bytes: int = 64 * MIB  # one Recognize message's audio; bigger files go through the stream
    max_stream_bytes: int = 1024 * MIB  # total audio bytes of one StreamingRecognize call
    max_audio_duration_s: float = 4 * 3600.0  # decoded duration, unary and stream
    max_hotwords_per_request: int = 1000  # after merging inline, named and default sets
    max_hotword_sets_per_request: int = 32
    max_labels: int = 64
    max_label_key_chars: int = 63
    max_label_value_chars: int = 255
    max_receive_message_mb: int = 80  # must exceed max_audio_bytes plus the config
    max_in_flight: int = 64  # concurrent recognitions and streams; beyond: RESOURCE_EXHAUSTED
    retry_after_s: float = 1.0  # RetryInfo sent with RESOURCE_EXHAUSTED

    @property
    def max_audio_duration_ms(self) -> int:
        return int(self.max_audio_duration_s * 1000)


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything ``lingting serve`` needs; frozen, built once by ``load_settings``."""

    host: str = "127.0.0.1"
    port: int = 50051
    data_dir: Path = Path("var")
    database_url: str | None = None  # None: SQLite file ``<data_dir>/lingting.db``
    model_dir: Path | None = None  # None: the bundled default model
    vad_model_dir: Path | None = None
    punc_model_dir: Path | None = None
    device: str = "auto"
    dtype: str | None = None
    # CUDA graphs for small batches (Paraformer on CUDA; ignored elsewhere): lower idle latency.
    cuda_graphs: bool = True
    # Largest graphed batch (a power of two); a larger batch replays in chunks of it unless
    # cuda_graph_split is off, in which case it runs eagerly (the behaviour before chunking).
    cuda_graph_max_batch: int = 16
    # One more graphed batch size between the powers of two (0: none), e.g. 12: a batch of 9-12 segments
    # then pads to 12 rows, not 16. For A/B runs (more shapes to capture); see docs/configuration.md.
    cuda_graph_extra_batch: int = 0
    cuda_graph_split: bool = True
    # Decoder graphs round their token axis up to a multiple of this (8..256, a multiple of 8): coarser means
    # fewer graphs to capture under varied load, at some padded decoder work.
    cuda_graph_token_step: int = 8
    # One CUDA graph per (batch, time) shape for the whole model, its decoder at a token cap (items above it
    # are decoded again); false: the two-graph path of before (acoustic graph, a host read of the token
    # counts, a decoder graph per token bucket), for A/B runs.
    cuda_graph_fused: bool = True
    # The fused graphs' decoder token cap per 60 ms frame of a shape; an item above it is decoded again
    # eagerly. Under load at 0.4 ~0.3 % of items overflowed and their eager redos cost the H100 run 19 %
    # of its throughput (16,105x at 0.5 with no redo vs 13,102x, bench/results/2026-11-22-h100-s5-fused).
    cuda_graph_token_share: float = 0.5
    # Fused graphs: time each shape's replay when it is captured and cut each batch (longest items first)
    # into the chunks whose measured replays cost least in all, instead of one chunk padded to the next
    # batch bucket and the longest item. Off until A/B-measured on a GPU; see docs/configuration.md.
    cuda_graph_cost_aware_chunks: bool = False
    # CUDA: a device worker computes features on a stream of its own and leaves a batch's results (the wait
    # for its copies, the hypotheses) to a results thread while it takes the next batch; false: serial.
    device_pipeline: bool = True
    # Batches a pipelined device worker may have queued on the GPU before it waits for the oldest (1..8);
    # fewer lets batches grow while the GPU works. For A/B runs; see EngineConfig.pipeline_depth.
    device_pipeline_depth: int = 2
    # CUDA: the caching allocator's expandable segments (unless PYTORCH_CUDA_ALLOC_CONF is set): 3.5
    # instead of 5.1 GB under load on an H200, 3.6 instead of 3.9 GB on an H100; opt-in (cuda_memory.py).
    cuda_expandable_segments: bool = False
    # The engine process's GIL switch interval in ms (0: Python's 5 ms); for A/B runs, see EngineConfig.
    gil_switch_interval_ms: float = 0.0
    # Fused Triton kernels (SAN-M FSMN memory; CUDA, half precision, triton installed); false: native ops.
    fused_kernels: bool = True
    # The fused residual-add + LayerNorm Triton kernel (CUDA, half precision): +0.7 to +9 % through gRPC on
    # an H100 in four A/Bs (sessions 6-7); false: the native ops (bf16 ids then match the native ones).
    fused_add_norm: bool = True
    # Batch workers on the one device (each its own thread and CUDA stream): one dispatches kernels while
    # another waits on the GPU. 1 (the default) runs one batch at a time.
    device_workers: int = 1
    # The batcher's limits: padded seconds of audio per batch (throughput and GPU memory grow with it) and
    # how long a lone segment waits for company (latency at low load).
    max_batch_s: float = 600.0
    batch_wait_ms: float = 2.0
    # Full batches a device worker may queue on its thread behind the running one (0..4; 0: each batch is
    # chosen when the previous has ended). For A/B runs; see SchedulerConfig.batches_ahead.
    batches_ahead: int = 0
    # Bearer token of the TenantService; unset disables that service (the CLI still manages tenants).
    admin_token: str | None = None
    api_key_pepper: str | None = None  # HMAC key for stored API key hashes (keep it with the database)
    auth_cache_ttl_s: float = 30.0
    log_level: str = "WARNING"
    log_format: str = "kv"  # "kv" (key=value) or "json"
    shutdown_grace_s: float = 5.0
    # 1: one process does everything. N > 1: one engine process owns the model and N front-end processes
    # (gRPC, auth, database, audio decoding, VAD, post-processing) share the port (service/multiproc.py).
    frontend_processes: int = 1
    frontend_shm_mb: int = 64  # shared memory per front-end for segments on their way to the engine
    limits: Limits = field(default_factory=Limits)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'lingting.db').resolve()}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def setting_names() -> tuple[str, ...]:
    """Every setting name (limits included, flattened)."""
    top = [f.name for f in dataclasses.fields(Settings) if f.name != "limits"]
    return (*top, *(f.name for f in dataclasses.fields(Limits)))


def _convert(name: str, raw: Any, hint: Any) -> Any:
    """Parse ``raw`` (a string from the environment, or a TOML/YAML value) as the field's type."""
    args = typing.get_args(hint)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    if raw is None or (optional and isinstance(raw, str) and raw.strip() == ""):
        if optional:
            return None
        raise ConfigError(f"{name}: a value is required")
    try:
        if base is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if base is int:
            if isinstance(raw, bool):
                raise ValueError(raw)
            return int(raw)
        if base is float:
            return float(raw)
        if base is Path:
            return Path(str(raw)).expanduser()
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: cannot parse {raw!r} as {getattr(base, '__name__', base)}") from exc


def _read_file(path: Path) -> dict[str, Any]:
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        else:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise ConfigError(f"config file {path} is not valid: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a table of settings")
    flat = {k: v for k, v in data.items() if k != "limits"}
    limits = data.get("limits", {})
    if not isinstance(limits, dict):
        raise ConfigError(f"config file {path}: [limits] must be a table")
    flat.update(limits)
    return flat


def unknown_env_names(env: Mapping[str, str], names: set[str]) -> list[str]:
    """``LINGTING_*`` variables that name no setting: a misspelt one would otherwise be ignored silently."""
    found = []
    for key in env:
        if key.startswith(ENV_PREFIX):
            rest = key[len(ENV_PREFIX) :]
            if rest.lower() not in names and rest not in OTHER_ENV_NAMES:
                found.append(key)
    return sorted(found)


def load_settings(
    config_file: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Defaults < file (``config_file`` or ``LINGTING_CONFIG``) < ``LINGTING_*`` env < ``overrides``.

    ``overrides`` holds CLI flags by setting name; ``None`` values mean "not given" and are skipped.
    """
    env = os.environ if env is None else env
    names = set(setting_names())
    values: dict[str, Any] = {}
    path = config_file or env.get(ENV_PREFIX + "CONFIG") or None
    if path:
        from_file = _read_file(Path(path))
        unknown = sorted(set(from_file) - names)
        if unknown:
            raise ConfigError(f"config file {path}: unknown settings {unknown}")
        values.update(from_file)
    for name in names:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = raw
    stray = unknown_env_names(env, names)
    if stray:
        log.warning(
            "ignoring unknown environment variables %s (not settings; see docs/configuration.md)", stray
        )
    for name, value in (overrides or {}).items():
        if name not in names:
            raise ConfigError(f"unknown setting {name!r}")
        if value is not None:
            values[name] = value
    top_hints, limit_hints = _hints(Settings), _hints(Limits)
    top = {k: _convert(k, v, top_hints[k]) for k, v in values.items() if k in top_hints and k != "limits"}
    lim = {k: _convert(k, v, limit_hints[k]) for k, v in values.items() if k in limit_hints}
    settings = Settings(**top, limits=Limits(**lim))
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    limits = settings.limits
    if not 0 <= settings.port <= 65535:
        raise ConfigError(f"port: {settings.port} is not a TCP port")
    if settings.log_format not in ("kv", "json"):
        raise ConfigError(f"log_format: {settings.log_format!r} is not 'kv' or 'json'")
    if not 1 <= settings.frontend_processes <= 256:
        raise ConfigError(f"frontend_processes: {settings.frontend_processes} is not in 1..256")
    if settings.cuda_graph_max_batch not in (1, 2, 4, 8, 16, 32, 64, 128, 256):
        raise ConfigError(
            f"cuda_graph_max_batch: {settings.cuda_graph_max_batch} is not a power of two in 1..256"
        )
    extra = settings.cuda_graph_extra_batch
    if extra != 0 and not (2 < extra < settings.cuda_graph_max_batch and extra & (extra - 1)):
        raise ConfigError(
            f"cuda_graph_extra_batch: {extra} is not 0 or a size between 2 and cuda_graph_max_batch "
            f"({settings.cuda_graph_max_batch}) that is not a power of two"
        )
    if not (8 <= settings.cuda_graph_token_step <= 256 and settings.cuda_graph_token_step % 8 == 0):
        raise ConfigError(
            f"cuda_graph_token_step: {settings.cuda_graph_token_step} is not a multiple of 8 in 8..256"
        )
    if not 0.0 < settings.cuda_graph_token_share <= 1.0:
        raise ConfigError(
            f"cuda_graph_token_share: {settings.cuda_graph_token_share} is not in (0, 1] tokens per frame"
        )
    if not 0.0 <= settings.gil_switch_interval_ms <= 1000.0:
        raise ConfigError(f"gil_switch_interval_ms: {settings.gil_switch_interval_ms} is not in 0..1000")
    if not 1 <= settings.device_pipeline_depth <= 8:
        raise ConfigError(f"device_pipeline_depth: {settings.device_pipeline_depth} is not in 1..8")
    if not 1 <= settings.device_workers <= 16:
        raise ConfigError(f"device_workers: {settings.device_workers} is not in 1..16")
    if not 1.0 <= settings.max_batch_s <= 36000.0:
        raise ConfigError(f"max_batch_s: {settings.max_batch_s} is not in 1..36000 seconds")
    if not 0.0 <= settings.batch_wait_ms <= 1000.0:
        raise ConfigError(f"batch_wait_ms: {settings.batch_wait_ms} is not in 0..1000")
    if not 0 <= settings.batches_ahead <= 4:
        raise ConfigError(f"batches_ahead: {settings.batches_ahead} is not in 0..4")
    if settings.frontend_shm_mb < 1:
        raise ConfigError("frontend_shm_mb: must be positive")
    for name in (
        "max_audio_bytes",
        "max_stream_bytes",
        "max_hotwords_per_request",
        "max_in_flight",
        "max_receive_message_mb",
    ):
        if getattr(limits, name) <= 0:
            raise ConfigError(f"{name}: must be positive")
    if limits.max_audio_duration_s <= 0:
        raise ConfigError("max_audio_duration_s: must be positive")
    if limits.max_receive_message_mb * MIB < limits.max_audio_bytes:
        raise ConfigError(
            "max_receive_message_mb must be at least max_audio_bytes (plus room for the config)"
        )
