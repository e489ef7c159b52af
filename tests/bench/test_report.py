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


def _server_doc(
    frontends: int,
    rows: list[dict[str, Any]],
    date: str,
    no_itn: bool = False,
    settings: dict[str, str] | None = None,
) -> dict[str, Any]:
    processes = {"supervisor": 1, "engine": 2, **{f"frontend-{i}": 3 + i for i in range(frontends)}}
    return {
        "kind": "grpc",
        "meta": {**_meta("loadgen --serve" + (" --no-itn" if no_itn else "")), "date": date},
        "rows": rows,
        "server": {"frontends": frontends, "settings": settings or {}, "processes": processes},
    }


def _mp_row(concurrency: int, rtfx: float, frontends: int, **extra: Any) -> dict[str, Any]:
    by_role = {"supervisor": 0.0, "engine": 1.0, **{f"frontend-{i}": 0.1 for i in range(frontends)}}
    total = round(sum(by_role.values()), 2)
    return {
        **_grpc_row("wav", concurrency, rtfx),
        "cores_by_process": by_role,
        "cores_server": total,
        **extra,
    }


def _model_speed_doc() -> dict[str, Any]:
    def model(batch: int, rtfx: float) -> dict[str, Any]:
        return {"setting": f"model batch={batch}", "batch_size": batch, "rtfx": rtfx, "ms_per_batch": 5.0}

    latency = [{"setting": "idle latency, one file", "server_ms": percentiles([8.0, 9.0])}]
    return {
        "kind": "model_speed",
        "meta": _meta("model_speed"),
        "rows": [],
        "settings": {
            "eager": {"model": [model(1, 400.0), model(256, 14000.0)], "latency": latency},
            "graphs": {
                "model": [model(1, 1900.0), model(256, 13900.0)],
                "latency": latency,
                "warm_up": {"graphs": 70, "s": 2.8},
                "identity": {"utterances": 4, "batch=5": {"identical": 3, "different": 1, "tokens": 9}},
            },
        },
    }


def _write_multiproc_run(folder: Path) -> Path:
    """Front-end sweep (1, 4, 12 and 12 without ITN), an idle c=1 file, model speed and an A/B subfolder."""
    (folder / "ab").mkdir(parents=True)
    docs = {
        "grpc-fe1.json": _server_doc(1, [_grpc_row("wav", 256, 3000.0)], "2026-11-21 22:10:00Z"),
        "grpc-fe4.json": _server_doc(4, [_mp_row(256, 6000.0, 4)], "2026-11-21 22:11:00Z"),
        "grpc-fe12.json": _server_doc(12, [_mp_row(256, 7600.0, 12)], "2026-11-21 22:12:00Z"),
        "grpc-fe12-noitn.json": _server_doc(12, [_mp_row(256, 7700.0, 12)], "2026-11-21 22:13:00Z", True),
        "grpc-idle.json": _server_doc(
            12,
            [
                _mp_row(1, 600.0, 12, server_ms=percentiles([10.0, 136.0])),
                _mp_row(0, 2600.0, 12, open_loop=True, offered_rtfx=2650.0, latency_ms=percentiles([500.0])),
            ],
            "2026-11-21 22:14:00Z",
        ),
        "grpc-idle-warm-all.json": _server_doc(
            12, [_mp_row(1, 800.0, 12, server_ms=percentiles([12.0, 14.0]))], "2026-11-21 22:15:00Z"
        ),
        "model_speed.json": _model_speed_doc(),
        "ab/old-grpc-fe12.json": _server_doc(12, [_mp_row(256, 50000.0, 12)], "2026-11-21 22:16:00Z"),
    }
    for name, doc in docs.items():
        (folder / name).write_text(json.dumps(doc))
    (folder / "summary.json").write_text(json.dumps([{"frontends": 1}]))
    (folder / "NOTES.md").write_text("### Notes on this run\n\nverbatim sentence.\n")
    return folder


def test_multiprocess_targets_skip_itn_off_and_ab_and_use_the_newest_single_caller(tmp_path: Path) -> None:
    run = load_run(_write_multiproc_run(tmp_path / "mp"))
    targets = {t.name: t for t in check_targets(run)}
    wav = targets["gRPC throughput, 16 kHz WAV"]
    assert (
        wav.number == 7600.0 and "12 front-ends, grpc-fe12.json" in wav.value
    )  # not 7,700 (ITN off), not A/B
    p99 = targets["Idle, one 5-10 s file: server p99"]
    assert p99.number == 14.0 and p99.met is True and "grpc-idle-warm-all.json" in p99.value
    assert targets["Half of peak load: client p99"].met is False
    assert [d["_file"] for d in run.sub_docs] == ["ab/old-grpc-fe12.json"]


def test_throughput_target_counts_only_levels_at_the_defaults(tmp_path: Path) -> None:
    """A level with a setting changed is a diagnostic; one with only the log level set runs the defaults."""
    folder = tmp_path / "levels"
    folder.mkdir()
    docs = {
        "grpc-base.json": _server_doc(12, [_mp_row(256, 7500.0, 12)], "2026-11-21 22:10:00Z"),
        "grpc-tuned.json": _server_doc(
            12, [_mp_row(256, 9000.0, 12)], "2026-11-21 22:11:00Z", settings={"fused_add_norm": "true"}
        ),
        "grpc-again.json": _server_doc(
            12, [_mp_row(256, 7800.0, 12)], "2026-11-21 22:12:00Z", settings={"log_level": "INFO"}
        ),
    }
    for name, doc in docs.items():
        (folder / name).write_text(json.dumps(doc))
    wav = {t.name: t for t in check_targets(load_run(folder))}["gRPC throughput, 16 kHz WAV"]
    assert wav.number == 7800.0 and "grpc-again.json" in wav.value


def test_multiprocess_section_tables_and_plots(tmp_path: Path) -> None:
    run_dir = _write_multiproc_run(tmp_path / "2026-11-21-mp")
    out, plots = tmp_path / "RESULTS.md", tmp_path / "plots"
    text = write_report([run_dir], out, plots)
    assert "| `grpc-fe12-noitn.json` | 12 (ITN off) |" in text
    assert "| `grpc-fe1.json` | 1 | grpc unary wav c=256 | 3,000 |" in text and "6.5 (one process)" in text
    assert "2.20 = 1.00 + 1.20 (0.10-0.10 each)" in text  # engine + 12 front-ends at 0.1 core
    assert "### A/B runs of other trees" in text and "`ab/old-grpc-fe12.json`" in text
    assert "| 256 | 14,000 (5.0 ms) | 13,900 (5.0 ms) |" in text
    assert "| warm-up at start | - | 70 graphs in 2.8 s |" in text and "batch=5: 3 of 4 identical" in text
    assert "verbatim sentence." in text
    names = sorted(p.name for p in plots.glob("*.svg"))
    assert names == [
        "2026-11-21-mp-frontends.svg",
        "2026-11-21-mp-latency-cdf.svg",
        "2026-11-21-mp-model-speed.svg",
    ]
    frontends = ET.fromstring((plots / "2026-11-21-mp-frontends.svg").read_text(encoding="utf-8"))
    ns = "{http://www.w3.org/2000/svg}"
    assert len(frontends.findall(f".//{ns}circle")) == 4  # 1, 4, 12 front-ends with ITN; 12 without
    for name in names:
        assert f"](plots/{name})" in text


def test_standing_takes_best_throughput_and_newest_latency(tmp_path: Path) -> None:
    old = _write_run(tmp_path / "2026-11-20-old")  # 25,000x, idle p99 40 ms, dated 20:00
    new = _write_multiproc_run(tmp_path / "2026-11-21-mp")  # 7,600x, idle p99 14 ms, dated 22:15
    profile = tmp_path / "2026-11-21-profile"
    profile.mkdir()
    (profile / "prof_b1.txt").write_text("table")
    (profile / "NOTES.md").write_text("run of 2026-11-21 21:25Z\n")
    text = write_report([old, new, profile], tmp_path / "RESULTS.md", tmp_path / "plots")
    standing = text.split("## Current standing (issue 7 targets)")[1].split("\n## Run")[0]
    wav = next(line for line in standing.splitlines() if line.startswith("| gRPC throughput, 16 kHz WAV"))
    assert (
        "25,000x" in wav
        and "[2026-11-20-old](#run-2026-11-20-old)" in wav
        and "7,600x ([2026-11-21-mp]" in wav
    )
    idle = next(
        line for line in standing.splitlines() if line.startswith("| Idle, one 5-10 s file: server p99")
    )
    assert "14.0 ms" in idle and "| met |" in idle and "40.0 ms ([2026-11-20-old]" in idle
    mp3 = next(line for line in standing.splitlines() if line.startswith("| gRPC throughput, 44.1 kHz MP3"))
    assert "CPU-decode bound" in mp3  # MP3 is below its goal in the old run; the remark stays
    order = [line for line in text.splitlines() if line.startswith("## Run ")]
    assert order == ["## Run 2026-11-21-mp", "## Run 2026-11-21-profile", "## Run 2026-11-20-old"]
    assert "[`prof_b1.txt`](2026-11-21-profile/prof_b1.txt)" in text


def test_linear_ticks_cover_the_maximum() -> None:
    from bench.svg import nice_ticks

    for high in (1.0, 10.4, 12.0, 14093.0, 20000.0):
        ticks = nice_ticks(0.0, high, log=False)
        assert ticks[-1] >= high and ticks[-2] < high and ticks == sorted(ticks)


def test_standing_prefers_h100_runs_over_a_better_figure_on_another_gpu(tmp_path: Path) -> None:
    """The issue's targets name one H100: an H200 run's higher MP3 figure is listed, not standing."""
    h100 = _write_run(tmp_path / "2026-11-20-h100")  # MP3 3,000x on an H100
    h200 = _write_run(tmp_path / "2026-11-20-h200")
    grpc = json.loads((h200 / "grpc.json").read_text())
    grpc["meta"]["gpu"] = "NVIDIA H200"
    grpc["rows"] = [r if r["format"] != "mp3" else {**r, "rtfx": 4500.0} for r in grpc["rows"]]
    (h200 / "grpc.json").write_text(json.dumps(grpc))
    (h200 / "funasr.json").unlink()
    text = write_report([h100, h200], tmp_path / "RESULTS.md", tmp_path / "plots")
    standing = text.split("## Current standing (issue 7 targets)")[1].split("\n## Run")[0]
    mp3 = next(line for line in standing.splitlines() if line.startswith("| gRPC throughput, 44.1 kHz MP3"))
    assert "| 3,000x" in mp3 and "[2026-11-20-h100](#run-2026-11-20-h100) |" in mp3
    assert "4,500x ([2026-11-20-h200]" in mp3
