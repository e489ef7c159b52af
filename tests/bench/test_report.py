"""Result files become a RESULTS.md section with checked targets, and plots that are valid SVG."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from bench.report import check_targets, load_run, write_report
from bench.sysmon import cdf_points, percentiles


def _meta(command: str) -> dict[str, Any]:
    return {
        "commit": "abc123",
        "date": "2026-11-21 20:00:00Z",
        "command": command,
        "gpu": "NVIDIA H100 80GB HBM3",
        "cpu": "EPYC",
        "cpu_count": 16,
        "torch": "2.11.0",
    }


def _grpc_row(fmt: str, concurrency: int, rtfx: float, **extra: Any) -> dict[str, Any]:
    return {
        "setting": f"grpc unary {fmt} c={concurrency}",
        "mode": "unary",
        "format": fmt,
        "concurrency": concurrency,
        "rtfx": rtfx,
        "requests": 10,
        "ok": 10,
        "audio_s": 100.0,
        "requests_per_s": 5.0,
        "errors": {},
        "latency_ms": percentiles([10.0, 20.0]),
        "latency_cdf_ms": cdf_points([10.0, 20.0, 30.0]),
        "server_ms": percentiles([8.0, 18.0]),
        "gpu_mem_peak_process_mib": 3000.0,
        "cores_server": 6.5,
        **extra,
    }


def _write_run(folder: Path) -> Path:
    folder.mkdir()
    grpc = {
        "kind": "grpc",
        "meta": _meta("loadgen"),
        "rows": [
            _grpc_row("wav", 1, 900.0),
            _grpc_row("wav", 64, 25000.0),
            _grpc_row("mp3", 64, 3000.0),
            {**_grpc_row("wav", 1, 50.0), "idle": True, "server_ms": percentiles([12.0, 40.0])},
            {
                **_grpc_row("wav", 0, 12000.0),
                "open_loop": True,
                "offered_rtfx": 12500.0,
                "latency_ms": percentiles([50.0, 120.0]),
            },
        ],
    }
    funasr = {
        "kind": "funasr",
        "meta": _meta("funasr"),
        "rows": [
            {"setting": "fastest: no VAD, batch_size=64, numpy", "rtfx": 1400.0, "files": 200},
            {
                "setting": "documented: FSMN-VAD, batch_size_s=300, utterance files",
                "rtfx": 200.0,
                "files": 200,
            },
        ],
    }
    (folder / "grpc.json").write_text(json.dumps(grpc))
    (folder / "funasr.json").write_text(json.dumps(funasr))
    (folder / "notes.txt").write_text("not a result")
    return folder


def test_targets_are_checked_against_the_run(tmp_path: Path) -> None:
    run = load_run(_write_run(tmp_path / "run"))
    targets = {t.name: t for t in check_targets(run)}
    assert targets["gRPC throughput, 16 kHz WAV"].met is True
    assert targets["gRPC throughput, 44.1 kHz MP3"].met is False
    assert targets["Lingting / FunASR documented pipeline"].met is True  # 25,000 / 200 = 125
    assert targets["Lingting / FunASR fastest setting"].met is True  # 25,000 / 1,400 = 17.9
    assert targets["Idle, one 5-10 s file: server p50"].met is True  # 12 ms
    assert targets["Idle, one 5-10 s file: server p99"].met is False  # 40 ms
    assert targets["Half of peak load: client p99"].met is True
    assert targets["GPU memory of the server process at peak load"].met is True
    assert targets["CPU fallback, bundled model, 2 cores"].met is None
    assert "17.9x" in targets["Lingting / FunASR fastest setting"].value


def test_report_has_provenance_tables_and_valid_plots(tmp_path: Path) -> None:
    run = _write_run(tmp_path / "2026-11-21-h100")
    out, plots = tmp_path / "RESULTS.md", tmp_path / "plots"
    text = write_report([run], out, plots)
    assert out.read_text(encoding="utf-8") == text
    assert "## Run 2026-11-21-h100" in text and "abc123" in text and "NVIDIA H100" in text
    assert "| gRPC throughput, 16 kHz WAV | >= 20,000x | 25,000x (grpc unary wav c=64) | met |" in text
    assert "**missed**" in text and "not measured" in text
    svgs = sorted(plots.glob("*.svg"))
    assert [p.name for p in svgs] == ["2026-11-21-h100-latency-cdf.svg", "2026-11-21-h100-throughput.svg"]
    for svg in svgs:
        root = ET.fromstring(svg.read_text(encoding="utf-8"))
        assert root.tag.endswith("svg") and root.findall(".//{http://www.w3.org/2000/svg}polyline")
    assert "](plots/2026-11-21-h100-throughput.svg)" in text


def test_percentiles_nearest_rank() -> None:
    stats = percentiles(float(v) for v in range(1, 101))
    assert (stats["p50"], stats["p90"], stats["p99"], stats["max"], stats["n"]) == (
        50.0,
        90.0,
        99.0,
        100.0,
        100,
    )
    assert percentiles([]) == {}
    points = cdf_points(range(1000))
    assert len(points) == 101 and points[0] == 0 and points[-1] == 999 and points == sorted(points)
