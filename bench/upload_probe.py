"""What uploading one batch's audio costs the device thread: the engine's per-segment copies out of a
registered shared arena against the alternatives. Run it on the GPU machine.

Session 6's py-spy put 26 % of the engine's device thread on one line: the per-segment ``copy_`` from the
front-ends' page-locked arenas (engine.py ``_waves_on_device``), about 150 µs per ~0.7 MB segment. That is
what a staged copy from pageable memory costs, not the enqueue of a DMA copy
(bench/results/2026-11-22-h100-s6-spy). For a batch of segments laid out in an arena as a front-end lays
them, this times four ways to get the batch onto the GPU:

* ``arena``: the arena registered with CUDA (``HostRegistry``, as the engine does), one ``copy_`` per segment;
* ``arena-unregistered``: the same views, the arena not registered (pageable memory);
* ``pinned``: the same segments in a torch page-locked tensor, one ``copy_`` per segment;
* ``joined``: ``torch.cat`` of the views into a page-locked staging tensor, then one copy (session 4's path);
* ``arena-contended``: ``arena`` again while another thread runs pure Python, as the engine's results thread
  and event loop do. Each ``copy_`` lets go of the GIL and must get it back; a slow ``arena`` says the copy
  itself is slow, a slow ``arena-contended`` beside a fast ``arena`` says the GIL is;
* ``arena-foreach`` / ``arena-foreach-contended``: the engine's path since session 7, all the segments'
  copies queued by one ``torch._foreach_copy_`` call (one GIL hand-off per batch, not one per segment).

Then, with ~2 ms of GPU work already queued on the stream (as the feature stream has the batch's upload
and fbank chunks queued), a small index (one feature chunk's frame starts) uploaded the two ways:
``index-pageable`` (``torch.from_numpy(a).to("cuda")``, the features' way before session 7, which waits
for the queued work) and ``index-upload`` (``host_memory.upload``, staged through page-locked memory and
not waited for).

For each it gives the host time until the calls return (what the device thread pays) and the time until
the copies are done, as medians over ``--repeats``, plus whether torch sees an arena view as page-locked.

    python -m bench.upload_probe --segments 14 --json out/upload_probe.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from asr_engine.host_memory import HostRegistry, upload
from asr_engine.remote.arena import GRAIN, SharedArena

__all__ = ["lay_out", "main"]

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000


def lay_out(sizes: Sequence[int], grain: int = GRAIN) -> list[int]:
    """Byte offsets of float32 segments of ``sizes`` samples placed end to end, each on a ``grain`` boundary
    (as the front-ends' allocator places blocks)."""
    offsets, at = [], 0
    for size in sizes:
        offsets.append(at)
        at += -(-4 * size // grain) * grain
    return offsets


def _segment_sizes(count: int, seed: int) -> list[int]:
    """2-20 s segments, as the bench corpus's utterances."""
    rng = np.random.default_rng(seed)
    return [int(s * SAMPLE_RATE) for s in rng.uniform(2.0, 20.0, size=count)]


def _time(upload: Callable[[], object], device: torch.device, repeats: int) -> dict[str, float]:
    host, done = [], []
    for index in range(repeats + 3):  # three warm-up rounds
        torch.cuda.synchronize(device)
        started = time.perf_counter()
        upload()
        returned = time.perf_counter()
        torch.cuda.synchronize(device)
        finished = time.perf_counter()
        if index >= 3:
            host.append((returned - started) * 1e6)
            done.append((finished - started) * 1e6)
    return {"host_us": statistics.median(host), "done_us": statistics.median(done)}


def _probe(sizes: Sequence[int], repeats: int, device: torch.device) -> dict[str, object]:
    offsets = lay_out(sizes)
    total = offsets[-1] + 4 * sizes[-1]
    arena = SharedArena.create_anonymous(total + GRAIN, name="lingting-upload-probe")
    rng = np.random.default_rng(0)
    views = [arena.array(offset, size) for offset, size in zip(offsets, sizes, strict=True)]
    for view in views:
        view[:] = rng.standard_normal(view.size, dtype=np.float32)
    flat = torch.empty(sum(sizes), dtype=torch.float32, device=device)
    parts = flat.split(list(sizes))

    def per_segment(sources: Sequence[np.ndarray | torch.Tensor]) -> Callable[[], object]:
        """One ``copy_`` per segment; numpy views are wrapped inside the timing, as the engine does."""

        def copy_each() -> None:
            for part, source in zip(parts, sources, strict=True):
                tensor = torch.from_numpy(source) if isinstance(source, np.ndarray) else source
                part.copy_(tensor, non_blocking=True)

        return copy_each

    rows: dict[str, object] = {
        "arena-unregistered": _time(per_segment(views), device, repeats),
        "arena_view_is_pinned_unregistered": bool(torch.from_numpy(views[0]).is_pinned()),
    }
    registry = HostRegistry()
    registered = registry.register(arena.array(0, (total + GRAIN) // 4))
    rows["arena_registered"] = registered
    rows["arena_view_is_pinned"] = bool(torch.from_numpy(views[0]).is_pinned())
    from_arena = per_segment(views)
    rows["arena"] = _time(from_arena, device, repeats)
    pinned = torch.empty(sum(sizes), dtype=torch.float32, pin_memory=True)
    pinned.copy_(torch.from_numpy(np.concatenate(views)))
    rows["pinned"] = _time(per_segment(pinned.split(list(sizes))), device, repeats)
    staging = torch.empty(sum(sizes), dtype=torch.float32, pin_memory=True)

    def joined() -> None:
        torch.cat([torch.from_numpy(view) for view in views], out=staging)
        flat.copy_(staging, non_blocking=True)

    rows["joined"] = _time(joined, device, repeats)
    sources = [torch.from_numpy(view) for view in views]

    def foreach() -> None:
        torch._foreach_copy_(list(parts), sources, non_blocking=True)

    rows["arena-foreach"] = _time(foreach, device, repeats)
    with _python_busy():
        rows["arena-contended"] = _time(from_arena, device, repeats)
        rows["arena-foreach-contended"] = _time(foreach, device, repeats)
    registry.close()
    arena.close()
    return rows


def _index_probe(repeats: int, device: torch.device) -> dict[str, object]:
    """A 6,000-row int64 index uploaded behind ~2 ms of queued GPU work, blocking and through ``upload``."""
    index = np.arange(6000, dtype=np.int64) * 160
    square = torch.randn(4096, 4096, device=device)

    def busy_then(send: Callable[[], object]) -> Callable[[], object]:
        def run() -> None:
            for _ in range(4):
                _ = square @ square  # queued work; the result is not needed
            send()

        return run

    queued_only = _time(busy_then(lambda: None), device, repeats)
    return {
        "queued_work": queued_only,
        "index-pageable": _time(busy_then(lambda: torch.from_numpy(index).to(device)), device, repeats),
        "index-upload": _time(busy_then(lambda: upload(index, device)), device, repeats),
    }


@contextlib.contextmanager
def _python_busy() -> Iterator[None]:
    """A thread that holds the GIL for pure-Python work (as building hypotheses does) until the block ends."""
    stop = threading.Event()

    def spin() -> None:
        total = 0
        while not stop.is_set():
            for value in range(2000):
                total += value * value

    thread = threading.Thread(target=spin, name="python-busy", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=14, help="segments per batch (H100 c=256: ~11-16)")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not torch.cuda.is_available():
        print("upload_probe: needs a CUDA device", file=sys.stderr)
        return 2
    device = torch.device("cuda")
    sizes = _segment_sizes(args.segments, args.seed)
    result = {
        "segments": args.segments,
        "audio_s": sum(sizes) / SAMPLE_RATE,
        "mib": sum(sizes) * 4 / 2**20,
        "device_name": torch.cuda.get_device_name(device),
        "torch": torch.__version__,
        **_probe(sizes, args.repeats, device),
        **_index_probe(args.repeats, device),
    }
    log.info("%s", result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
