"""Model kinds: today's config keys pick the type, each kind keeps and records only its own fields."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.config.test_config import TRACR_CONFIG
from tests.conftest import make_pdf
from tracr.config.job import ConfigError, parse_job_config
from tracr.config.models import (
    ApiModel,
    BlockModel,
    OcrServerModel,
    TextLayerModel,
    VllmDockerModel,
    VllmProcessModel,
    model_spec,
)

VLLM_ONLY = {"device", "docker_image", "gpu_memory_utilization", "tensor_parallel_size", "extra_vllm_args", "vllm_executable", "runtime"}


def _job(tmp_path: Path, *models: dict) -> dict:
    make_pdf(tmp_path / "doc.pdf", 1)
    return {"job_id": "j", "input_path": str(tmp_path / "doc.pdf"), "models": list(models)}


def _problems(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_job_config(data, env={})
    return info.value.problems


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"model": "m", "base_url": "http://x/v1"}, ApiModel),
        ({"model": "m", "mode": "api", "provider": "OpenAI"}, ApiModel),
        ({"block": "my-target"}, BlockModel),
        ({"model": "m", "mode": "local"}, VllmProcessModel),
        ({"model": "m", "mode": "local", "provider": "vllm", "runtime": "docker"}, VllmDockerModel),
        ({"model": "m", "mode": "local", "provider": "tracr-ocr"}, OcrServerModel),
        ({"model": "m", "mode": "local", "provider": "PDF-Text"}, TextLayerModel),
    ],
)
def test_each_kind_of_config_loads_to_its_type(tmp_path, fields, kind):
    spec = parse_job_config(_job(tmp_path, fields), env={"OPENAI_API_KEY": "k"}).config.models[0]
    assert type(spec) is kind
    assert spec.serves_locally is (kind in (VllmProcessModel, VllmDockerModel, OcrServerModel))


def test_tracr_config_keeps_its_shape_and_drops_other_kinds_fields(tmp_path):
    data = yaml.safe_load(TRACR_CONFIG)
    data["input_path"] = str(tmp_path / "doc.pdf")
    make_pdf(tmp_path / "doc.pdf", 1)
    api, local = parse_job_config(data, env={"OPENAI_API_KEY": "k"}).config.models
    assert isinstance(api, ApiModel) and api.max_concurrent_requests == 8 and api.provider == "openai"
    assert not VLLM_ONLY & set(api.public_dict())  # TRACR writes vLLM fields for API models too
    assert isinstance(local, VllmProcessModel) and local.gpu_memory_utilization == 0.85 and local.tensor_parallel_size == 2


def test_example_config_kinds():
    from tracr.config.job import load_job_config

    example = Path(__file__).resolve().parents[2] / "job_configs" / "example.yaml"
    assert [type(m) for m in load_job_config(example, env={}).config.models] == [OcrServerModel, TextLayerModel]


def test_text_layer_metadata_records_no_vllm_fields():
    data = model_spec(model="text", mode="local", provider="pdf-text", device="gpu", gpu_memory_utilization=0.5).public_dict()
    assert not VLLM_ONLY & set(data) and not {"retries", "api_key_env", "base_url", "block"} & set(data)
    assert data["kind"] == "pdf-text" and data["mode"] == "local" and data["provider"] == "pdf-text"
    assert "docker_image" not in model_spec(model="m", mode="local").public_dict()
    assert model_spec(model="m", mode="local", runtime="docker").public_dict()["docker_image"] == "vllm/vllm-openai:latest"


def test_a_plan_round_trips_each_kind():
    from tracr.config.render import RenderSettings
    from tracr.run.plan import RunPlan

    for spec in (
        model_spec(model="m", base_url="http://x/v1"),
        model_spec(block="b", model="m"),
        model_spec(model="m", mode="local", runtime="docker"),
    ):
        plan = RunPlan(
            job_id="j", outputs_root="/o", run=1, model=spec, pdfs=[], prompt="p", max_tokens=1, temperature=0, render=RenderSettings()
        )
        assert RunPlan.model_validate_json(plan.model_dump_json()).model == spec


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (
            {"model": "m", "mode": "local", "provider": "ollama"},
            "models[1].provider: unknown local runtime 'ollama' (choose from vllm, tracr-ocr, pdf-text)",
        ),
        (
            {"model": "m", "provider": "acme"},
            "models[1].provider: unknown provider 'acme' for mode api (choose from openai, openrouter, gemini, mistral, custom)",
        ),
        (
            {"model": "m", "mode": "local", "provider": "tracr-ocr", "runtime": "docker"},
            "models[1].runtime: docker runs vLLM only (provider is 'tracr-ocr')",
        ),
        ({"model": "m", "mode": "remote"}, "models[1].mode: Input should be 'api' or 'local'"),
        ({"name": "x"}, "models[1].model: required (or name a ModelTarget block with `block`)"),
        ({"block": "b", "base_url": "http://x/v1"}, "models[1].base_url: comes from block 'b'; remove it from the config"),
        ({"block": "Bad Name"}, "models[1].block: 'Bad Name' is not a Prefect block name (lowercase letters, digits and dashes)"),
        ({"block": "b", "mode": "local"}, "models[1].block: a ModelTarget block names an API endpoint; remove `mode: local` or the block"),
        ({"model": "m", "base_url": "ftp://x"}, "models[1].base_url: must start with http:// or https:// (got 'ftp://x')"),
        (
            {"model": "m", "mode": "local", "tensor_parallel_size": 0},
            "models[1].tensor_parallel_size: Input should be greater than or equal to 1",
        ),
        (
            {"model": "m", "mode": "local", "gpu_memory_utilisation": 0.5},
            "models[1].gpu_memory_utilisation: unknown key (did you mean 'gpu_memory_utilization'?)",
        ),
        (
            {"model": "m", "mode": "local", "provider": "pdf-text", "timout_s": 5},
            "models[1].timout_s: unknown key (did you mean 'timeout_s'?)",
        ),
    ],
)
def test_a_bad_model_names_its_field(tmp_path, model, expected):
    assert _problems(_job(tmp_path, {"model": "ok", "mode": "local", "provider": "pdf-text"}, model)) == [expected]
