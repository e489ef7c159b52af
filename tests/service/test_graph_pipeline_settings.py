"""cuda_graph_fused / device_pipeline: from the environment to the engine config (the A/B switches of the
fused graphs and the pipelined device workers)."""

from __future__ import annotations

from asr_engine.engine import EngineConfig
from service.config import load_settings
from service.engine_host import engine_tuning


def test_fused_graphs_and_pipeline_are_on_by_default_and_switch_off_from_the_environment() -> None:
    default = EngineConfig.tuned(**engine_tuning(load_settings(env={})))
    assert default.graphs.fused and default.pipeline and not default.expandable_segments
    env = {
        "LINGTING_CUDA_GRAPH_FUSED": "false",
        "LINGTING_DEVICE_PIPELINE": "false",
        "LINGTING_CUDA_EXPANDABLE_SEGMENTS": "true",
    }
    config = EngineConfig.tuned(**engine_tuning(load_settings(env=env)))
    assert not config.graphs.fused and not config.pipeline and config.expandable_segments
    # The other graph settings are untouched by the switch.
    assert config.graphs.batch_buckets == default.graphs.batch_buckets
    assert config.graphs.token_step == default.graphs.token_step


def test_token_share_reaches_the_graph_settings() -> None:
    settings = load_settings(env={"LINGTING_CUDA_GRAPH_TOKEN_SHARE": "0.4"})
    assert EngineConfig.tuned(**engine_tuning(settings)).graphs.token_share == 0.4
    assert EngineConfig.tuned(**engine_tuning(load_settings(env={}))).graphs.token_share == 0.5


def test_pipeline_depth_reaches_the_engine_and_is_checked() -> None:
    import pytest

    from service.config import ConfigError

    assert EngineConfig.tuned(**engine_tuning(load_settings(env={}))).pipeline_depth == 2
    settings = load_settings(env={"LINGTING_DEVICE_PIPELINE_DEPTH": "1"})
    assert EngineConfig.tuned(**engine_tuning(settings)).pipeline_depth == 1
    with pytest.raises(ConfigError, match="device_pipeline_depth"):
        load_settings(env={"LINGTING_DEVICE_PIPELINE_DEPTH": "0"})


def test_fused_add_norm_is_on_by_default_and_can_be_switched_off() -> None:
    assert EngineConfig.tuned(**engine_tuning(load_settings(env={}))).fused_add_norm
    assert EngineConfig().fused_add_norm  # the engine's own default agrees with the service's
    settings = load_settings(env={"LINGTING_FUSED_ADD_NORM": "false"})
    assert not EngineConfig.tuned(**engine_tuning(settings)).fused_add_norm


def test_an_extra_batch_bucket_joins_the_powers_of_two() -> None:
    import pytest

    from service.config import ConfigError

    default = EngineConfig.tuned(**engine_tuning(load_settings(env={}))).graphs.batch_buckets
    assert default == (1, 2, 4, 8, 16)
    settings = load_settings(env={"LINGTING_CUDA_GRAPH_EXTRA_BATCH": "12"})
    assert EngineConfig.tuned(**engine_tuning(settings)).graphs.batch_buckets == (1, 2, 4, 8, 12, 16)
    for bad in ("8", "16", "20", "2"):
        with pytest.raises(ConfigError, match="cuda_graph_extra_batch"):
            load_settings(env={"LINGTING_CUDA_GRAPH_EXTRA_BATCH": bad})


def test_token_share_and_gil_interval_out_of_range_are_refused() -> None:
    import pytest

    from service.config import ConfigError

    for bad in ("0", "-0.5", "1.5"):
        with pytest.raises(ConfigError, match="cuda_graph_token_share"):
            load_settings(env={"LINGTING_CUDA_GRAPH_TOKEN_SHARE": bad})
    for bad in ("-1", "2000"):
        with pytest.raises(ConfigError, match="gil_switch_interval_ms"):
            load_settings(env={"LINGTING_GIL_SWITCH_INTERVAL_MS": bad})
    assert load_settings(env={"LINGTING_CUDA_GRAPH_TOKEN_SHARE": "1"}).cuda_graph_token_share == 1.0
