"""Expandable segments are asked for before CUDA starts, and an operator's own allocator setting wins.

Each case runs in a fresh interpreter: the setting is process-wide and read when CUDA starts.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

SCRIPT = """
import os, torch
from asr_engine.cuda_memory import prefer_expandable_segments
applied = prefer_expandable_segments()
print(applied, os.environ.get("PYTORCH_CUDA_ALLOC_CONF"))
"""


def _run(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTORCH_CUDA_ALLOC_CONF"}
    if env_value is not None:
        env["PYTORCH_CUDA_ALLOC_CONF"] = env_value
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout.strip().splitlines()[-1]


def test_expandable_segments_set_when_the_operator_has_not_configured_the_allocator() -> None:
    assert _run(None) == "True expandable_segments:True"


def test_an_operator_setting_is_kept() -> None:
    assert _run("max_split_size_mb:128") == "False max_split_size_mb:128"


@pytest.mark.gpu
def test_reserved_by_pool_reads_graph_pools_and_streams() -> None:
    from asr_engine.cuda_memory import reserved_by_pool

    device = torch.device("cuda")
    x = torch.ones(1 << 20, device=device)
    pool = torch.cuda.graph_pool_handle()
    graph = torch.cuda.CUDAGraph()
    side = torch.cuda.Stream(device)
    with torch.cuda.stream(side):
        (x * 2).sum()
    torch.cuda.current_stream(device).wait_stream(side)
    with torch.cuda.graph(graph, pool=pool):
        y = x * 2
    graph.replay()
    summary = reserved_by_pool(device)
    graphs = int(summary.split("graph_pools_mib=")[1].split()[0])
    assert graphs >= 2, summary  # the graph's 4 MiB output lives in its pool
    assert "stream_mib=[" in summary and float(y.sum()) == 2 * (1 << 20)
