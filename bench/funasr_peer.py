"""The peer: FunASR's ``AutoModel`` on the same GPU, model directory and audio as Lingting.

Settings (the issue's two, plus FunASR's defaults for reference):

* ``documented`` the pipeline FunASR documents: ``vad_model`` FSMN-VAD, ``batch_size_s=300``, file paths in.
                 FunASR batches segments only within one file, so it is run on the utterances and,
                 separately, on the long recordings.
* ``fastest``    no VAD, ``batch_size=64``, pre-cut utterances passed as numpy arrays.
* ``default``    no VAD, batch of 1 (what ``generate(input=files)`` does out of the box).
* ``latency``    one 5-10 s file at a time (median of ``--latency-repeats``), with and without VAD.

Needs the FunASR wheels listed in ``bench/wheels.txt`` (``bench/fetch_wheels.sh``). Do not run this in a
process that has run ``torch.profiler`` with CUDA: FunASR is slower afterwards.

    python -m bench.funasr_peer --model-dir /tmp/pl --vad-model-dir .dev/gpu/fsmn_vad --corpus /tmp/corpus \
        --json out/funasr.json
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.corpus import load_manifest, read_wav
from bench.sysmon import percentiles, write_result

__all__ = ["main", "time_generate"]

log = logging.getLogger(__name__)


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def time_generate(
    call: Callable[[], Any], warmup: Callable[[], Any] | None = None, repeats: int = 1
) -> tuple[float, Any, list[float]]:
    """Wall seconds of the fastest of ``repeats`` ``generate`` calls after a warm-up call with the same
    settings, its result, and every call's wall time.

    Why the fastest: the "fastest" setting's whole run is ~1.3 s on an H100, and one timing of it moved
    between 1,306x and 1,544x in two calls of session 7; the peer's best is the fair figure to divide by.
    """
    if warmup is not None:
        warmup()
    walls: list[float] = []
    result: Any = None
    for _ in range(max(1, repeats)):
        _sync()
        started = time.perf_counter()
        result = call()
        _sync()
        walls.append(time.perf_counter() - started)
    return min(walls), result, walls


def _auto_model(model_dir: Path, vad_dir: Path | None, device: str) -> Any:
    from funasr import AutoModel

    kwargs: dict[str, Any] = {
        "model": str(model_dir),
        "device": device,
        "disable_update": True,
        "disable_pbar": True,
    }
    if vad_dir is not None:
        kwargs["vad_model"] = str(vad_dir)
    model = AutoModel(**kwargs)
    return model


def _peak_mib() -> float:
    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if torch.cuda.is_available() else float("nan")


def _reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _row(setting: str, audio_s: float, wall: float, files: int, **extra: Any) -> dict[str, Any]:
    row = {
        "setting": setting,
        "files": files,
        "audio_s": round(audio_s, 2),
        "wall_s": round(wall, 3),
        "rtfx": round(audio_s / wall, 1),
        "torch_max_allocated_mib": _peak_mib(),
        **extra,
    }
    log.info(
        "%s: %.1fx realtime over %d files (%.0f s audio, %.2f s)", setting, row["rtfx"], files, audio_s, wall
    )
    return row


def run(args: argparse.Namespace) -> dict[str, Any]:
    items = load_manifest(args.corpus)
    utts = [i for i in items if i.kind == "utt" and "wav" in i.files][: args.max_files or None]
    longs = [i for i in items if i.kind == "long" and "wav" in i.files][: args.max_long or None]
    settings = {s for s in args.settings.split(",") if s}
    threads = torch.get_num_threads()
    rows = _run_plain(args, utts, settings, threads)
    write_result(args.json, "funasr", rows, partial=True, model_dir=str(args.model_dir))  # kept if cut off
    if args.vad_model_dir is not None and ({"documented", "latency"} & settings):
        rows += _run_pipeline(args, utts, longs, settings, threads)
    import funasr

    return write_result(
        args.json,
        "funasr",
        rows,
        funasr_version=getattr(funasr, "__version__", ""),
        model_dir=str(args.model_dir),
    )


def _run_plain(
    args: argparse.Namespace, utts: Sequence[Any], settings: set[str], threads: int
) -> list[dict[str, Any]]:
    """The settings without VAD: fastest (batch 64 over numpy arrays), default (batch 1), latency."""
    model = _auto_model(args.model_dir, None, args.device)
    torch.set_num_threads(threads)  # AutoModel sets the process to 4 threads
    paths = [str(args.corpus / i.files["wav"]) for i in utts]
    rows = []
    if "fastest" in settings:
        arrays: list[np.ndarray] = [read_wav(Path(p))[0] for p in paths]
        _reset_peak()
        wall, _, walls = time_generate(
            lambda: model.generate(input=arrays, batch_size=64),
            lambda: model.generate(input=arrays[:128], batch_size=64),
            repeats=args.repeats,
        )
        row = _row(
            "fastest: no VAD, batch_size=64, numpy", sum(i.duration_s for i in utts), wall, len(arrays)
        )
        rows.append({**row, "walls_s": [round(w, 3) for w in walls]})
    if "default" in settings:
        subset = paths[: args.default_files]
        audio = sum(i.duration_s for i in utts[: args.default_files])
        _reset_peak()
        wall, _, _ = time_generate(
            lambda: model.generate(input=subset), lambda: model.generate(input=subset[:5])
        )
        rows.append(_row("default: no VAD, batch of 1, files", audio, wall, len(subset)))
    if "latency" in settings:
        rows.append(_latency(model, utts, args, "latency: one 5-10 s file, no VAD"))
    return rows


def _run_pipeline(
    args: argparse.Namespace, utts: Sequence[Any], longs: Sequence[Any], settings: set[str], threads: int
) -> list[dict[str, Any]]:
    """FunASR's documented pipeline: FSMN-VAD in front, segments batched by batch_size_s=300 per file."""
    model = _auto_model(args.model_dir, args.vad_model_dir, args.device)
    torch.set_num_threads(threads)
    rows = []
    if "documented" in settings:
        paths = [str(args.corpus / i.files["wav"]) for i in utts]
        _reset_peak()
        wall, _, _ = time_generate(
            lambda: model.generate(input=paths, batch_size_s=300),
            lambda: model.generate(input=paths[:10], batch_size_s=300),
        )
        rows.append(
            _row(
                "documented: FSMN-VAD, batch_size_s=300, utterance files",
                sum(i.duration_s for i in utts),
                wall,
                len(utts),
            )
        )
        if longs:
            long_paths = [str(args.corpus / i.files["wav"]) for i in longs]
            _reset_peak()
            wall, _, _ = time_generate(lambda: model.generate(input=long_paths, batch_size_s=300))
            rows.append(
                _row(
                    "documented: FSMN-VAD, batch_size_s=300, long recordings",
                    sum(i.duration_s for i in longs),
                    wall,
                    len(longs),
                )
            )
    if "latency" in settings:
        rows.append(_latency(model, utts, args, "latency: one 5-10 s file, FSMN-VAD"))
    return rows


def _latency(model: Any, utts: Sequence[Any], args: argparse.Namespace, label: str) -> dict[str, Any]:
    chosen = [i for i in utts if 5.0 <= i.duration_s <= 10.0][:1] or list(utts[:1])
    path = str(args.corpus / chosen[0].files["wav"])
    for _ in range(3):
        model.generate(input=path)
    times = []
    for _ in range(args.latency_repeats):
        wall, _, _ = time_generate(lambda: model.generate(input=path))
        times.append(wall * 1000.0)
    return {
        "setting": label,
        "files": 1,
        "audio_s": chosen[0].duration_s,
        "latency_ms": percentiles(times),
        "median_ms": round(statistics.median(times), 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="FunASR AutoModel on the same model, GPU and audio.")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--vad-model-dir", type=Path)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--device", default="cuda:0" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--settings", default="fastest,documented,latency,default")
    parser.add_argument("--max-files", type=int, default=0, help="utterances to use (0 = all)")
    parser.add_argument("--max-long", type=int, default=1, help="long recordings for the VAD pipeline")
    parser.add_argument("--default-files", type=int, default=60, help="files for the batch-of-1 setting")
    parser.add_argument("--latency-repeats", type=int, default=20)
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed runs of the fastest setting; the fastest counts"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("FUNASR_DISABLE_UPDATE", "1")
    doc = run(args)
    for row in doc["rows"]:
        print({k: v for k, v in row.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
