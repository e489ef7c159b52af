"""Command line for offline use: ``python -m asr_engine transcribe|itn ...``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asr_engine.blocking import BlockingEngine
    from asr_engine.types import TranscribeOptions, Transcript

__all__ = ["main", "parse_hotword"]


def parse_hotword(spec: str) -> tuple[str, float | None]:
    """``PHRASE[:BOOST]``; a suffix that is not a number belongs to the phrase."""
    phrase, sep, boost = spec.rpartition(":")
    if sep:
        try:
            return phrase, float(boost)
        except ValueError:
            pass
    return spec, None


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m asr_engine", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True)

    tr = commands.add_parser("transcribe", help="transcribe audio files, one JSON object per line")
    tr.add_argument("--model", type=Path, default=None, help="FunASR model directory (default: bundled)")
    tr.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    tr.add_argument("--dtype", default=None, help="float32, bfloat16 or float16 (default by device)")
    tr.add_argument("--hotword", action="append", default=[], metavar="PHRASE[:BOOST]")
    tr.add_argument("--no-itn", action="store_true", help="keep the spoken form")
    tr.add_argument("--no-punc", action="store_true", help="no punctuation")
    tr.add_argument("--no-vad", action="store_true", help="decode each file as one segment")
    tr.add_argument("--vad-model", type=Path, default=None, help="FSMN-VAD directory (default: silero)")
    tr.add_argument("--punc-model", type=Path, default=None, help="CT-Transformer punctuation directory")
    tr.add_argument("--timestamps", action="store_true", help="word timestamps")
    tr.add_argument("--language", default=None, help="language code, or auto")
    tr.add_argument("files", nargs="+", type=Path)

    itn = commands.add_parser("itn", help="spoken-form lines on stdin -> written-form lines on stdout")
    itn.add_argument("--lang", default=None, choices=["zh", "en"], help="default: $ITN_LANG")
    return parser


def _transcribe(args: argparse.Namespace) -> int:
    from asr_engine.blocking import BlockingEngine
    from asr_engine.engine import EngineConfig
    from asr_engine.errors import EngineError
    from asr_engine.types import Hotword, TranscribeOptions

    config = EngineConfig(vad="none") if args.no_vad else EngineConfig()
    engine = BlockingEngine.load(
        args.model,
        device=args.device,
        dtype=args.dtype,
        vad_model_dir=args.vad_model,
        punc_model_dir=args.punc_model,
        config=config,
    )
    options = TranscribeOptions(
        language=args.language,
        itn=not args.no_itn,
        punctuation=not args.no_punc,
        word_timestamps=args.timestamps,
        hotwords=tuple(Hotword(phrase=p, boost=b) for p, b in map(parse_hotword, args.hotword)),
        vad=not args.no_vad,
    )
    status = 0
    with engine:
        # Every file is in flight at once so their segments share batches; results print in order.
        futures = [_submit(engine, path, options) for path in args.files]
        for path, future in zip(args.files, futures, strict=True):
            try:
                result = future.result()
            except (EngineError, OSError) as exc:
                print(json.dumps({"file": str(path), "error": str(exc)}, ensure_ascii=False), flush=True)
                status = 1
                continue
            verbatim = args.no_itn and args.no_punc
            record = {
                "file": str(path),
                "text": result.text_raw if verbatim else result.text,
                "segments": [
                    {
                        "start_ms": s.start_ms,
                        "end_ms": s.end_ms,
                        "text": s.text_raw if verbatim else s.text,
                        "text_raw": s.text_raw,
                        "words": [asdict(w) for w in s.words],
                    }
                    for s in result.segments
                ],
                "duration_ms": result.duration_ms,
                "language": result.language,
            }
            print(json.dumps(record, ensure_ascii=False), flush=True)
    return status


def _submit(engine: BlockingEngine, path: Path, options: TranscribeOptions) -> Future[Transcript]:
    """The file's transcription in flight, or a future holding the error reading it."""
    try:
        return engine.submit(path.read_bytes(), options)
    except OSError as exc:
        failed: Future[Transcript] = Future()
        failed.set_exception(exc)
        return failed


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    if args.command == "itn":
        from asr_engine.text import itn_cli

        return itn_cli.main(["--lang", args.lang] if args.lang else [])
    return _transcribe(args)


if __name__ == "__main__":
    sys.exit(main())
