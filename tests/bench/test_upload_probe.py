"""The upload probe's arena layout (the timing itself needs a GPU: bench/upload_probe.py on the device)."""

from __future__ import annotations

from bench.upload_probe import lay_out, main


def test_segments_lie_end_to_end_on_grain_boundaries_without_overlap() -> None:
    sizes = [32000, 1, 64, 100_003]
    offsets = lay_out(sizes, grain=256)
    assert offsets[0] == 0 and all(o % 256 == 0 for o in offsets)
    ends = [o + 4 * s for o, s in zip(offsets, sizes, strict=True)]
    assert all(end <= nxt for end, nxt in zip(ends, offsets[1:], strict=False))
    assert offsets[1] == 128000 and offsets[2] == 128256 and offsets[3] == 128512


def test_without_cuda_it_says_so_and_fails() -> None:
    import torch

    if torch.cuda.is_available():
        return  # on a GPU machine the probe runs for real; nothing to check here
    assert main(["--segments", "2", "--repeats", "1"]) == 2
