"""What the benchmark measures besides time: GPU memory, CPU use, percentiles, and the run's provenance.

psutil is not everywhere we run, so CPU time comes from ``/proc/<pid>/stat`` (utime + stime of the process
and, summed, of its threads) and GPU memory from polling ``nvidia-smi``, which sees the whole process
(CUDA context, allocator cache, other libraries) rather than only PyTorch's allocations.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "CpuSampler",
    "GpuMemoryPoller",
    "cdf_points",
    "percentiles",
    "run_meta",
    "write_result",
]

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def percentiles(values: Iterable[float], points: Sequence[float] = (50, 90, 99)) -> dict[str, float]:
    """Nearest-rank percentiles plus mean and max; empty input gives an empty dict."""
    ordered = sorted(values)
    if not ordered:
        return {}
    out: dict[str, float] = {}
    for point in points:
        rank = max(1, math.ceil(point / 100.0 * len(ordered)))
        out[f"p{point:g}"] = round(ordered[rank - 1], 3)
    out["mean"] = round(sum(ordered) / len(ordered), 3)
    out["max"] = round(ordered[-1], 3)
    out["n"] = len(ordered)
    return out


def cdf_points(values: Iterable[float], points: int = 101) -> list[float]:
    """``points`` evenly spaced quantiles (0 to 100 %), enough to draw a latency CDF without raw data."""
    ordered = sorted(values)
    if not ordered:
        return []
    last = len(ordered) - 1
    return [round(ordered[round(i * last / (points - 1))], 3) for i in range(points)]


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU seconds used so far by a process (all its threads), from /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime, stime (fields 14, 15 of the line)


class CpuSampler:
    """CPU seconds of some processes between ``start()`` and ``stop()``, as cores busy on average."""

    def __init__(self, pids: Sequence[int | str] = ("self",)) -> None:
        self._pids = list(pids)
        self._begin: list[float] = []
        self._t0 = 0.0

    def start(self) -> None:
        self._begin = [cpu_seconds(pid) for pid in self._pids]
        self._t0 = time.perf_counter()

    def stop(self) -> dict[str, float]:
        wall = max(time.perf_counter() - self._t0, 1e-9)
        used = [cpu_seconds(pid) - begin for pid, begin in zip(self._pids, self._begin, strict=True)]
        return {f"cores_{name}": round(sec / wall, 2) for name, sec in zip(self._names(), used, strict=True)}

    def _names(self) -> list[str]:
        return ["client" if pid == "self" else f"pid{pid}" for pid in self._pids]


class GpuMemoryPoller:
    """Peak GPU memory (MiB) seen by ``nvidia-smi`` while running, for given pids or the whole GPU.

    Use as a context manager; ``peak_mib`` is the largest per-process figure when ``pids`` is given
    (falling back to the whole device's used memory when per-process figures are unavailable, as in some
    containers), else the device's.
    """

    def __init__(self, pids: Sequence[int] = (), interval_s: float = 0.2, gpu_index: int = 0) -> None:
        self._pids = {int(p) for p in pids}
        self._interval = interval_s
        self._gpu = gpu_index
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peak_mib = 0.0
        self.peak_device_mib = 0.0
        self.baseline_device_mib = 0.0
        self.available = shutil.which("nvidia-smi") is not None

    def __enter__(self) -> GpuMemoryPoller:
        if self.available:
            self.baseline_device_mib = self._device_used()
            self._thread = threading.Thread(target=self._loop, name="gpu-mem-poll", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sample()

    def result(self) -> dict[str, float]:
        if not self.available:
            return {}
        out = {
            "gpu_mem_peak_device_mib": self.peak_device_mib,
            "gpu_mem_device_baseline_mib": self.baseline_device_mib,
        }
        if self._pids:
            out["gpu_mem_peak_process_mib"] = self.peak_mib
        return out

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def _sample(self) -> None:
        if not self.available:
            return
        self.peak_device_mib = max(self.peak_device_mib, self._device_used())
        if self._pids:
            used = self._process_used()
            self.peak_mib = max(self.peak_mib, used if used > 0 else self.peak_device_mib)

    def _query(self, args: list[str]) -> str:
        try:
            return subprocess.run(
                ["nvidia-smi", *args], capture_output=True, text=True, timeout=10, check=False
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            return ""

    def _device_used(self) -> float:
        text = self._query([f"--id={self._gpu}", "--query-gpu=memory.used", "--format=csv,noheader,nounits"])
        try:
            return float(text.strip().splitlines()[0])
        except (ValueError, IndexError):
            return 0.0

    def _process_used(self) -> float:
        text = self._query(["--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"])
        total = 0.0
        for line in text.splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) == 2 and parts[0].isdigit() and int(parts[0]) in self._pids:
                try:
                    total += float(parts[1])
                except ValueError:
                    continue
        return total


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
            cwd=Path(__file__).resolve().parents[1],
        ).stdout.strip()
    except OSError:
        return ""


def _gpu_name() -> str:
    if shutil.which("nvidia-smi") is None:
        return ""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.strip().splitlines()[0] if out.strip() else ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def run_meta(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Commit, device, date and command of this run (what every reported figure must carry)."""
    # BENCH_COMMIT first: the device tool's copy of the tree carries a .git whose HEAD can be stale (every
    # session-2 GPU file read 7b624449d65c), so the caller's stated commit is the one to trust.
    stated = os.environ.get("BENCH_COMMIT", "")
    meta: dict[str, Any] = {
        "commit": stated if stated and stated != "unknown" else _git("rev-parse", "--short=12", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
        "command": " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv)),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu": _gpu_name(),
        "host": platform.node(),
    }
    try:
        import torch

        meta["torch"] = torch.__version__
        meta["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return meta


def write_result(path: Path | None, kind: str, rows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """Write one result file (the unit ``bench/report.py`` reads) and return its content."""
    doc = {"kind": kind, "meta": run_meta(), "rows": rows, **extra}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=1, ensure_ascii=False), encoding="utf-8")
    return doc
