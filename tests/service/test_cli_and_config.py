"""The ``lingting`` CLI (migrate, tenants, keys, transcribe against a live server) and settings layering."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest

from service.cli import main
from service.config import ConfigError, load_settings
from service.db import current_revision
from service.db.migrate import head_revision
from tests.service.conftest import AUDIO_DIR, Running

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


async def test_operator_commands_and_transcribe(
    running: Running, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    code, out = _run(capsys, "migrate", "--database-url", url)
    assert code == 0 and current_revision(url) == head_revision()
    code, out = _run(capsys, "tenants", "create", "Acme", "--database-url", url, "--json")
    tenant = json.loads(out)[0]
    code, out = _run(capsys, "keys", "create", tenant["tenant"], "--database-url", url, "--json")
    key = json.loads(out)[0]
    assert code == 0 and key["secret"].startswith("lt_")
    code, out = _run(capsys, "keys", "revoke", tenant["tenant"], key["key"], "--database-url", url)
    code, out = _run(capsys, "keys", "list", str(tenant["id"]), "--database-url", url, "--json")
    assert json.loads(out)[0]["revoked"] is True
    code, out = _run(capsys, "tenants", "list", "--database-url", url)
    assert "display_name=Acme" in out

    client = await running.new_tenant("cli")
    wav = str(AUDIO_DIR / "en_16k.wav")
    flac = str(AUDIO_DIR / "en_44k1_stereo.flac")
    server = f"127.0.0.1:{running.port}"
    code = await asyncio.to_thread(
        main, ["transcribe", wav, "--server", server, "--api-key", client.secret, "--json", "--timestamps"]
    )
    unary = json.loads(capsys.readouterr().out)
    assert code == 0 and unary["transcript"] and unary["results"]
    # A file over the unary limit goes through the stream; same text as a unary request of it.
    code = await asyncio.to_thread(
        main,
        [
            "transcribe",
            flac,
            "--server",
            server,
            "--api-key",
            client.secret,
            "--json",
            "--max-unary-bytes",
            "1000",
        ],
    )
    streamed = json.loads(capsys.readouterr().out)
    code2 = await asyncio.to_thread(
        main, ["transcribe", flac, "--server", server, "--api-key", client.secret]
    )
    plain = capsys.readouterr().out.strip()
    assert code == 0 and code2 == 0 and streamed["transcript"] == plain
    code = await asyncio.to_thread(main, ["transcribe", wav, "--server", server, "--api-key", "lt_wrong"])
    assert code == 1 and "UNAUTHENTICATED" in capsys.readouterr().err


async def test_serve_refuses_an_unmigrated_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    code = await asyncio.to_thread(main, ["serve", "--database-url", url, "--port", "0"])
    assert code == 2 and "lingting migrate" in capsys.readouterr().err


async def test_settings_layering(tmp_path: Path) -> None:
    config = tmp_path / "lingting.toml"
    config.write_text('port = 6000\nhost = "0.0.0.0"\n[limits]\nmax_hotwords_per_request = 7\n')
    env = {
        "LINGTING_CONFIG": str(config),
        "LINGTING_PORT": "7000",
        "LINGTING_MAX_AUDIO_BYTES": "1024",
        "LINGTING_ADMIN_TOKEN": "secret",
    }
    settings = load_settings(env=env, overrides={"host": "127.0.0.2", "port": None})
    assert settings.port == 7000 and settings.host == "127.0.0.2" and settings.admin_token == "secret"
    assert settings.limits.max_hotwords_per_request == 7 and settings.limits.max_audio_bytes == 1024
    yaml_file = tmp_path / "lingting.yaml"
    yaml_file.write_text("device: cpu\nlimits:\n  max_in_flight: 3\n")
    settings = load_settings(yaml_file, env={})
    assert settings.device == "cpu" and settings.limits.max_in_flight == 3
    assert settings.resolved_database_url.endswith("/var/lingting.db")
    with pytest.raises(ConfigError):
        load_settings(env={"LINGTING_PORT": "many"})
    config.write_text("no_such_setting = 1\n")
    with pytest.raises(ConfigError):
        load_settings(config, env={})


async def test_batching_settings_reach_the_engine_config() -> None:
    """max_batch_s / batch_wait_ms / batches_ahead: from the environment, range-checked, the batcher's."""
    from asr_engine.engine import EngineConfig
    from asr_engine.scheduler import SchedulerConfig
    from service.engine_host import engine_tuning

    settings = load_settings(env={"LINGTING_MAX_BATCH_S": "120", "LINGTING_BATCH_WAIT_MS": "0.5"})
    assert settings.max_batch_s == 120.0 and settings.batch_wait_ms == 0.5
    config = EngineConfig.tuned(**engine_tuning(settings))  # what both server loaders build
    assert config.cuda_graphs == settings.cuda_graphs and config.device_workers == settings.device_workers
    scheduler = config.scheduler
    assert scheduler.max_batch_samples == 120 * 16000 and scheduler.max_wait_ms == 0.5
    assert scheduler.max_batch_items == SchedulerConfig().max_batch_items
    assert scheduler.batches_ahead == 0  # off unless set
    ahead = EngineConfig.tuned(**engine_tuning(load_settings(env={"LINGTING_BATCHES_AHEAD": "1"})))
    assert ahead.scheduler == dataclasses.replace(SchedulerConfig(), batches_ahead=1)
    with pytest.raises(ConfigError, match="batches_ahead"):
        load_settings(env={"LINGTING_BATCHES_AHEAD": "5"})
    with pytest.raises(ConfigError, match="max_batch_s"):
        load_settings(env={"LINGTING_MAX_BATCH_S": "0"})
    with pytest.raises(ConfigError, match="batch_wait_ms"):
        load_settings(env={"LINGTING_BATCH_WAIT_MS": "-1"})


async def test_graph_batch_settings_reach_the_engine_config() -> None:
    """cuda_graph_max_batch / cuda_graph_split: the graphed batch buckets and chunked replays."""
    from asr_engine.engine import EngineConfig
    from service.engine_host import engine_tuning

    default_config = EngineConfig.tuned(**engine_tuning(load_settings(env={})))
    default = default_config.graphs
    assert default.batch_buckets == (1, 2, 4, 8, 16) and default.split_large_batches
    assert default_config.fused_kernels
    env = {
        "LINGTING_CUDA_GRAPH_MAX_BATCH": "32",
        "LINGTING_CUDA_GRAPH_SPLIT": "false",
        "LINGTING_FUSED_KERNELS": "false",
        "LINGTING_CUDA_GRAPH_TOKEN_STEP": "32",
    }
    config = EngineConfig.tuned(**engine_tuning(load_settings(env=env)))
    assert config.graphs.batch_buckets == (1, 2, 4, 8, 16, 32) and not config.graphs.split_large_batches
    assert not config.fused_kernels and config.graphs.token_step == 32
    assert default.token_step == 8
    with pytest.raises(ConfigError, match="cuda_graph_token_step"):
        load_settings(env={"LINGTING_CUDA_GRAPH_TOKEN_STEP": "12"})
    with pytest.raises(ConfigError, match="cuda_graph_max_batch"):
        load_settings(env={"LINGTING_CUDA_GRAPH_MAX_BATCH": "24"})


async def test_cost_aware_chunks_are_off_by_default_and_reach_the_graph_settings(tmp_path: Path) -> None:
    """cuda_graph_cost_aware_chunks: from the environment or the file to ``GraphSettings``, nothing else."""
    from asr_engine.engine import EngineConfig
    from service.engine_host import engine_tuning

    default = EngineConfig.tuned(**engine_tuning(load_settings(env={}))).graphs
    assert not default.cost_aware_chunks
    settings = load_settings(env={"LINGTING_CUDA_GRAPH_COST_AWARE_CHUNKS": "true"})
    graphs = EngineConfig.tuned(**engine_tuning(settings)).graphs
    assert graphs.cost_aware_chunks
    assert graphs == dataclasses.replace(default, cost_aware_chunks=True)  # the other graph settings stay
    config = tmp_path / "lingting.toml"
    config.write_text("cuda_graph_cost_aware_chunks = true\n")
    assert load_settings(config, env={}).cuda_graph_cost_aware_chunks
    with pytest.raises(ConfigError, match="cuda_graph_cost_aware_chunks"):
        load_settings(env={"LINGTING_CUDA_GRAPH_COST_AWARE_CHUNKS": "sometimes"})


async def test_misspelt_environment_settings_are_named(caplog: pytest.LogCaptureFixture) -> None:
    """A LINGTING_* variable that names no setting is reported, not silently dropped."""
    env = {"LINGTING_LINGTING_MAX_BATCH_S": "100", "LINGTING_PORT": "7001", "LINGTING_WORKER_ID": "3"}
    with caplog.at_level("WARNING", logger="service.config"):
        settings = load_settings(env=env)
    assert settings.port == 7001 and settings.max_batch_s == 600.0
    assert "LINGTING_LINGTING_MAX_BATCH_S" in caplog.text and "LINGTING_WORKER_ID" not in caplog.text
