"""Compressed-audio decode rate per CPU core: the bound of the issue's MP3 throughput target.

Decoding (PyAV/ffmpeg) plus resampling to 16 kHz mono float32 runs in the gRPC front-ends, one decode per
request, so a server's MP3 throughput is at most (cores given to front-ends) x (this rate). Single process,
single thread, the same ``decode_audio`` the engine calls.

    python -m bench.decode_rate --corpus /tmp/mp3c --format mp3 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

from asr_engine.audio import decode_audio
from bench.corpus import load_manifest
from bench.sysmon import run_meta


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--format", default="mp3")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    items = [item for item in load_manifest(args.corpus) if args.format in item.files]
    payloads = [(args.corpus / item.files[args.format]).read_bytes() for item in items]
    audio_s = 0.0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(args.repeats):
        for data in payloads:
            audio_s += decode_audio(data).samples.size / 16000.0
    cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
    row = {
        "kind": "decode_rate",
        "meta": run_meta(),
        "format": args.format,
        "files": len(payloads),
        "audio_s": round(audio_s, 1),
        "cpu_s": round(cpu_s, 3),
        "wall_s": round(wall_s, 3),
        "rtfx_per_cpu_core": round(audio_s / cpu_s, 1),
    }
    print(json.dumps(row))
    if args.json:
        args.json.write_text(json.dumps(row, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
