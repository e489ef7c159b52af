"""``lingting``: serve, migrate, manage tenants and keys, and transcribe files through a running server.

Logging is configured here only: key=value (or JSON) lines on stderr, WARNING by default
(``--log-level`` / ``LINGTING_LOG_LEVEL``); the processes of a multi-process server add ``proc=``.
Operator commands (``migrate``, ``tenants``, ``keys``) talk to the database directly; ``transcribe``
is a gRPC client of a running server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from service.config import ConfigError, Settings, load_settings

__all__ = ["configure_logging", "main"]

log = logging.getLogger(__name__)

UNARY_CHUNK = 256 * 1024  # stream chunk size for uploads


class _KeyValueFormatter(logging.Formatter):
    def __init__(self, as_json: bool, process: str = "") -> None:
        super().__init__()
        self._json = as_json
        self._process = process

    def format(self, record: logging.LogRecord) -> str:
        fields = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            **({"proc": self._process} if self._process else {}),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        if self._json:
            return json.dumps(fields, ensure_ascii=False)
        return " ".join(
            f"{k}={json.dumps(v, ensure_ascii=False) if ' ' in v or not v else v}" for k, v in fields.items()
        )


def configure_logging(level: str, fmt: str, process: str = "") -> None:
    """Log lines on stderr; ``process`` names the process of a multi-process server (e.g. "frontend-1")."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_KeyValueFormatter(fmt == "json", process))
    root = logging.getLogger()
    # Replace only a handler this CLI installed earlier (tests call main() more than once).
    kept = [h for h in root.handlers if not isinstance(h.formatter, _KeyValueFormatter)]
    root.handlers[:] = [*kept, handler]
    root.setLevel(level.upper())


def _settings(ns: argparse.Namespace, **extra: Any) -> Settings:
    overrides = {
        "database_url": getattr(ns, "database_url", None),
        "log_level": getattr(ns, "log_level", None),
        **extra,
    }
    return load_settings(getattr(ns, "config", None), overrides=overrides)


# -- serve / migrate ---------------------------------------------------------------------------------


def _cmd_serve(ns: argparse.Namespace) -> int:
    settings = _settings(
        ns,
        host=ns.host,
        port=ns.port,
        model_dir=ns.model_dir,
        vad_model_dir=ns.vad_model_dir,
        punc_model_dir=ns.punc_model_dir,
        device=ns.device,
        dtype=ns.dtype,
        frontend_processes=ns.frontends,
    )
    configure_logging(
        settings.log_level, settings.log_format, "main" if settings.frontend_processes > 1 else ""
    )
    from service.db import SchemaOutdatedError
    from service.server import serve

    try:
        if settings.frontend_processes > 1:
            from service.multiproc import run_multiprocess

            return run_multiprocess(settings)
        asyncio.run(serve(settings))
    except SchemaOutdatedError as exc:
        print(f"lingting: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"lingting: {exc}", file=sys.stderr)
        return 1
    return 0


def _cmd_migrate(ns: argparse.Namespace) -> int:
    settings = _settings(ns)
    configure_logging(settings.log_level, settings.log_format)
    from service.db import current_revision, upgrade

    url = settings.resolved_database_url
    upgrade(url, ns.revision)
    print(f"database at revision {current_revision(url)}")
    return 0


# -- tenants / keys ---------------------------------------------------------------------------------


def _open_db(ns: argparse.Namespace) -> Any:
    settings = _settings(ns)
    configure_logging(settings.log_level, settings.log_format)
    from service.db import Database, require_current

    url = settings.resolved_database_url
    require_current(url)
    return Database(url, api_key_pepper=settings.api_key_pepper)


def _print_rows(rows: Sequence[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print(json.dumps(list(rows), ensure_ascii=False, indent=2, default=str))
        return
    for row in rows:
        print("  ".join(f"{k}={v}" for k, v in row.items()))


def _all_pages(fetch: Any) -> Iterator[Any]:
    token = ""
    while True:
        page = fetch(token)
        yield from page.items
        token = page.next_page_token
        if not token:
            return


def _cmd_tenants(ns: argparse.Namespace) -> int:
    db = _open_db(ns)
    try:
        if ns.action == "create":
            tenant = db.tenants.create_tenant(ns.display_name)
            _print_rows(
                [{"tenant": f"tenants/{tenant.id}", "id": tenant.id, "display_name": tenant.display_name}],
                ns.json,
            )
        else:
            rows = [
                {
                    "tenant": f"tenants/{t.id}",
                    "id": t.id,
                    "display_name": t.display_name,
                    "created": t.create_time,
                }
                for t in _all_pages(lambda token: db.tenants.list_tenants(1000, token))
            ]
            _print_rows(rows, ns.json)
    finally:
        db.close()
    return 0


def _tenant_id(text: str) -> int:
    """``tenants/{id}`` or a bare numeric id; anything else ends the command with a clear message."""
    raw = text.removeprefix("tenants/")
    if not raw.isdigit():
        raise SystemExit(f"lingting: {text!r} is not a tenant (expected tenants/<id> or a numeric id)")
    return int(raw)


def _cmd_keys(ns: argparse.Namespace) -> int:
    db = _open_db(ns)
    try:
        tenant_id = _tenant_id(ns.tenant)
        if ns.action == "create":
            key, secret = db.api_keys.create_api_key(tenant_id, ns.display_name)
            _print_rows([{"key": f"tenants/{tenant_id}/apiKeys/{key.id}", "secret": secret}], ns.json)
            if not ns.json:
                print("the secret is shown only once; store it now", file=sys.stderr)
        elif ns.action == "list":
            rows = [
                {
                    "key": f"tenants/{tenant_id}/apiKeys/{k.id}",
                    "prefix": k.key_prefix,
                    "display_name": k.display_name,
                    "revoked": k.revoked,
                    "last_used": k.last_used_time,
                }
                for k in _all_pages(lambda token: db.api_keys.list_api_keys(tenant_id, 1000, token))
            ]
            _print_rows(rows, ns.json)
        else:
            key = db.api_keys.revoke_api_key(tenant_id, int(ns.key_id.rsplit("/", 1)[-1]))
            _print_rows(
                [{"key": f"tenants/{tenant_id}/apiKeys/{key.id}", "revoked": key.revoke_time}], ns.json
            )
    finally:
        db.close()
    return 0


# -- transcribe (client) -----------------------------------------------------------------------------


def _hotword(text: str) -> Any:
    from lingting.asr.v1 import hotword_pb2

    phrase, sep, boost = text.rpartition(":")
    if sep and phrase:
        try:
            return hotword_pb2.Hotword(phrase=phrase, boost=float(boost))
        except ValueError:
            pass
    return hotword_pb2.Hotword(phrase=text)


def _config(ns: argparse.Namespace) -> Any:
    from lingting.asr.v1 import recognition_pb2

    config = recognition_pb2.RecognitionConfig(
        language_code=ns.language or "",
        enable_word_time_offsets=ns.timestamps,
        hotword_config=recognition_pb2.HotwordConfig(
            hotwords=[_hotword(h) for h in ns.hotword], hotword_sets=list(ns.hotword_set)
        ),
    )
    if ns.no_itn:
        config.enable_itn = False
    if ns.no_punc:
        config.enable_punctuation = False
    return config


def _transcribe_file(stub: Any, path: Path, ns: argparse.Namespace, metadata: Any) -> dict[str, Any]:
    from google.protobuf import json_format

    from lingting.asr.v1 import recognition_service_pb2 as pb

    data = path.read_bytes()
    config = _config(ns)
    if len(data) <= ns.max_unary_bytes:
        response = stub.Recognize(pb.RecognizeRequest(config=config, content=data), metadata=metadata)
        return json_format.MessageToDict(response, preserving_proto_field_name=True)

    def requests() -> Iterator[Any]:
        yield pb.StreamingRecognizeRequest(streaming_config=pb.StreamingRecognitionConfig(config=config))
        for start in range(0, len(data), UNARY_CHUNK):
            yield pb.StreamingRecognizeRequest(audio_content=data[start : start + UNARY_CHUNK])

    last = None
    for response in stub.StreamingRecognize(requests(), metadata=metadata):
        last = response
    if last is None:
        raise RuntimeError("the server sent no result")
    out = json_format.MessageToDict(last, preserving_proto_field_name=True)
    out["results"] = [r.get("segment", {}) for r in out.get("results", [])]
    return out


def _cmd_transcribe(ns: argparse.Namespace) -> int:
    import grpc

    from lingting.asr.v1 import recognition_service_pb2_grpc

    configure_logging(ns.log_level or os.environ.get("LINGTING_LOG_LEVEL", "WARNING"), "kv")
    api_key = ns.api_key or os.environ.get("LINGTING_API_KEY")
    if not api_key:
        print("lingting: an API key is needed: --api-key or LINGTING_API_KEY", file=sys.stderr)
        return 2
    metadata = (("authorization", f"Bearer {api_key}"),)
    limit = 128 * 1024 * 1024
    status = 0
    with grpc.insecure_channel(
        ns.server,
        options=[("grpc.max_send_message_length", limit), ("grpc.max_receive_message_length", limit)],
    ) as channel:
        stub = recognition_service_pb2_grpc.RecognitionServiceStub(channel)
        for name in ns.files:
            path = Path(name)
            try:
                result = _transcribe_file(stub, path, ns, metadata)
            except OSError as exc:
                print(f"lingting: {path}: {exc.strerror or exc}", file=sys.stderr)
                status = 1
                continue
            except grpc.RpcError as exc:
                print(f"lingting: {path}: {exc.code().name}: {exc.details()}", file=sys.stderr)  # type: ignore[attr-defined]
                status = 1
                continue
            if ns.json:
                print(json.dumps({"file": str(path), **result}, ensure_ascii=False))
            elif len(ns.files) > 1:
                print(f"{path}: {result.get('transcript', '')}")
            else:
                print(result.get("transcript", ""))
            if ns.timestamps and not ns.json:
                for segment in result.get("results", []):
                    start, end = int(segment.get("start_offset_ms", 0)), int(segment.get("end_offset_ms", 0))
                    print(f"  [{start / 1000:.2f}-{end / 1000:.2f}] {segment.get('transcript', '')}")
    return status


# -- parser ------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lingting", description="Lingting speech recognition service.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser, db: bool = True) -> None:
        p.add_argument("--config", help="TOML or YAML settings file (or LINGTING_CONFIG)")
        p.add_argument("--log-level", dest="log_level", help="DEBUG, INFO, WARNING (default), ERROR")
        if db:
            p.add_argument(
                "--database-url",
                dest="database_url",
                help="SQLAlchemy URL (or LINGTING_DATABASE_URL); default: SQLite in ./var",
            )

    serve = sub.add_parser("serve", help="run the gRPC server")
    common(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 50051; 0 picks one)")
    serve.add_argument(
        "--model-dir", dest="model_dir", help="FunASR model directory (default: bundled model)"
    )
    serve.add_argument("--vad-model-dir", dest="vad_model_dir", help="FSMN-VAD directory (default: silero)")
    serve.add_argument("--punc-model-dir", dest="punc_model_dir", help="CT-Transformer punctuation directory")
    serve.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    serve.add_argument("--dtype", help="float32, bfloat16, float16 (default: bf16 on GPU, fp32 on CPU)")
    serve.add_argument(
        "--frontends",
        type=int,
        help="gRPC front-end processes sharing the port, fed by one engine process (default 1: one process)",
    )
    serve.set_defaults(func=_cmd_serve)

    migrate = sub.add_parser("migrate", help="upgrade the database schema")
    common(migrate)
    migrate.add_argument("--revision", default="head", help="target revision (default head)")
    migrate.set_defaults(func=_cmd_migrate)

    tenants = sub.add_parser("tenants", help="manage tenants (direct database access)")
    tenants_sub = tenants.add_subparsers(dest="action", required=True)
    t_create = tenants_sub.add_parser("create", help="create a tenant")
    t_create.add_argument("display_name")
    t_list = tenants_sub.add_parser("list", help="list tenants")
    for p in (t_create, t_list):
        common(p)
        p.add_argument("--json", action="store_true")
    tenants.set_defaults(func=_cmd_tenants)

    keys = sub.add_parser("keys", help="manage API keys (direct database access)")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    k_create = keys_sub.add_parser("create", help="create a key; prints its secret once")
    k_create.add_argument("tenant", help="tenant id or tenants/{id}")
    k_create.add_argument("--display-name", dest="display_name", default="")
    k_list = keys_sub.add_parser("list", help="list a tenant's keys")
    k_list.add_argument("tenant")
    k_revoke = keys_sub.add_parser("revoke", help="revoke a key")
    k_revoke.add_argument("tenant")
    k_revoke.add_argument("key_id", help="key id or tenants/{t}/apiKeys/{id}")
    for p in (k_create, k_list, k_revoke):
        common(p)
        p.add_argument("--json", action="store_true")
    keys.set_defaults(func=_cmd_keys)

    tr = sub.add_parser("transcribe", help="transcribe files through a running server")
    tr.add_argument("files", nargs="+", metavar="FILE")
    tr.add_argument("--server", default=os.environ.get("LINGTING_SERVER", "127.0.0.1:50051"))
    tr.add_argument("--api-key", dest="api_key", help="API key (or LINGTING_API_KEY)")
    tr.add_argument("--language", help='language code, e.g. "zh" or "en" (default: the model decides)')
    tr.add_argument("--no-itn", dest="no_itn", action="store_true", help="keep spoken forms")
    tr.add_argument("--no-punc", dest="no_punc", action="store_true", help="no punctuation")
    tr.add_argument("--timestamps", action="store_true", help="print segment times (and request word times)")
    tr.add_argument("--hotword", action="append", default=[], metavar="PHRASE[:BOOST]")
    tr.add_argument("--hotword-set", dest="hotword_set", action="append", default=[], metavar="NAME")
    tr.add_argument("--json", action="store_true", help="one JSON object per file")
    tr.add_argument(
        "--max-unary-bytes",
        dest="max_unary_bytes",
        type=int,
        default=32 * 1024 * 1024,
        help="larger files are uploaded through the stream",
    )
    tr.add_argument("--log-level", dest="log_level")
    tr.set_defaults(func=_cmd_transcribe)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        return int(ns.func(ns))
    except ConfigError as exc:
        print(f"lingting: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from service.db import DbError

        if isinstance(exc, DbError):
            print(f"lingting: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
