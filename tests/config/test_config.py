"""Job config validation: TRACR compatibility, presets, and errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import make_pdf, write_config
from tracr.config.job import ConfigError, load_job_config, parse_job_config

TRACR_CONFIG = """\
job_id: invoices-2025
title: Invoice OCR comparison
input_path: inputs/invoices
prompt: Extract all text from this page as markdown.
max_tokens: 4096
temperature: 0.0
models:
  - model: gpt-4.1-mini
    mode: api
    provider: openai
    base_url: https://api.openai.com/v1
    api_key_env: OPENAI_API_KEY
    api_key: null
    tensor_parallel_size: 1
    data_parallel_size: 1
    gpu_memory_utilization: 0.9
    max_model_len: null
    max_concurrent_requests: 8
    extra_vllm_args: []
  - model: allenai/olmOCR-2-7B-1025-FP8
    mode: local
    provider: vllm
    base_url: null
    api_key_env: null
    api_key: null
    tensor_parallel_size: 2
    data_parallel_size: 1
    gpu_memory_utilization: 0.85
    max_model_len: 16384
    max_concurrent_requests: 32
    extra_vllm_args: ["--enforce-eager"]
"""


@pytest.fixture
def tracr_job(tmp_path: Path) -> Path:
    make_pdf(tmp_path / "inputs" / "invoices" / "a.pdf", 1)
    path = tmp_path / "job_configs" / "invoices.yaml"
    path.parent.mkdir()
    path.write_text(TRACR_CONFIG)
    return path


def test_tracr_config_loads_unchanged(tracr_job, monkeypatch):
    monkeypatch.chdir(tracr_job.parent.parent)  # TRACR resolves input_path from the repo root
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    loaded = load_job_config(tracr_job)
    config = loaded.config
    assert config.job_id == "invoices-2025" and len(config.models) == 2
    local = config.models[1]
    assert local.slug == "allenai-olmocr-2-7b-1025-fp8" and local.gpus_needed == 2
    assert local.extra_vllm_args == ["--enforce-eager"] and local.max_model_len == 16384
    assert [Path(p).name for p in loaded.pdfs] == ["a.pdf"]


def test_missing_key_variable_is_named_and_no_value_printed(tracr_job, monkeypatch):
    monkeypatch.chdir(tracr_job.parent.parent)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError) as info:
        load_job_config(tracr_job)
    assert "models[0].api_key_env: environment variable OPENAI_API_KEY is not set" in str(info.value)


def _base(tmp_path: Path, **model) -> dict:
    make_pdf(tmp_path / "doc.pdf", 1)
    return {"job_id": "j", "input_path": str(tmp_path / "doc.pdf"), "models": [{"model": "m", **model}]}


def _errors(data: dict, env: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_job_config(data, env=env or {})
    return info.value.problems


def test_base_url_required_for_custom_api(tmp_path):
    data = _base(tmp_path, mode="api")
    data["models"].insert(0, {"model": "ok", "provider": "custom", "base_url": "http://127.0.0.1:1/v1"})
    assert _errors(data) == ["models[1].base_url: required for mode api"]


def test_unknown_keys_are_named_with_a_hint(tmp_path):
    data = _base(tmp_path, provider="custom", base_url="http://x/v1", max_concurent_requests=4)
    data["promt"] = "hi"
    problems = _errors(data)
    assert "promt: unknown key (did you mean 'prompt'?)" in problems
    assert "models[0].max_concurent_requests: unknown key (did you mean 'max_concurrent_requests'?)" in problems


def test_provider_presets_fill_endpoint_and_key_variable(tmp_path):
    data = _base(tmp_path, provider="openrouter")
    loaded = parse_job_config(data, env={"OPENROUTER_API_KEY": "k"})
    spec = loaded.config.models[0]
    assert spec.base_url == "https://openrouter.ai/api/v1" and spec.api_key_env == "OPENROUTER_API_KEY"
    gemini = parse_job_config(_base(tmp_path, provider="gemini", base_url="https://proxy.example/v1"), env={"GEMINI_API_KEY": "k"})
    assert gemini.config.models[0].base_url == "https://proxy.example/v1"  # explicit value wins


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"job_id": "../escape"}, "job_id: Value error, must be 1-128 letters"),
        ({"pages": "3-1"}, "pages: Value error, range '3-1' ends before it starts"),
        ({"models": []}, "models: list at least one model"),
        ({"input_path": "/nonexistent/x.pdf"}, "input_path '/nonexistent/x.pdf': no such file or folder"),
        ({"render": {"longest_side_px": 10}}, "render.longest_side_px: Input should be greater than or equal to 64"),
    ],
)
def test_bad_values_name_their_field(tmp_path, change, expected):
    data = _base(tmp_path, provider="custom", base_url="http://x/v1")
    data.update(change)
    problems = _errors(data)
    assert any(p.startswith(expected.replace("Value error, ", "")) for p in problems), problems


def test_key_value_in_key_variable_field_is_refused_without_echo(tmp_path):
    secret = "sk-proj-abcdef0123456789"
    problems = _errors(_base(tmp_path, provider="openai", api_key_env=secret))
    assert problems == ["models[0].api_key_env: must name an environment variable (letters, digits, _), not hold the key itself"]
    assert all(secret not in p for p in problems)


@pytest.mark.parametrize("args", [["--api-key", "sk-x"], ["--hf-token=hf_abc"], "--enforce-eager --api-key sk-x"])
def test_secrets_on_the_vllm_command_line_are_refused(tmp_path, args):
    problems = _errors(_base(tmp_path, mode="local", provider="vllm", extra_vllm_args=args))
    assert len(problems) == 1 and problems[0].startswith("models[0].extra_vllm_args: --")
    assert "set it in the environment instead" in problems[0] and "sk-x" not in problems[0] and "hf_abc" not in problems[0]


def test_duplicate_model_folders_are_refused(tmp_path):
    data = _base(tmp_path, provider="custom", base_url="http://x/v1")
    data["models"].append({"model": "M", "provider": "custom", "base_url": "http://y/v1"})
    assert _errors(data) == ["models[1].name: model folder 'm' is already used by models[0]; give one of them a distinct `name`"]


def test_inputs_accept_folders_globs_and_lists(tmp_path):
    make_pdf(tmp_path / "a" / "x.pdf", 1)
    make_pdf(tmp_path / "b" / "nested" / "x.pdf", 1)
    make_pdf(tmp_path / "c" / "y.pdf", 1)
    (tmp_path / "c" / "notes.txt").write_text("not a pdf")
    data = {
        "job_id": "j",
        "input_path": [str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "c" / "*.pdf")],
        "models": [{"model": "m", "mode": "local", "provider": "pdf-text"}],
    }
    loaded = parse_job_config(data, env={})
    assert [Path(p).relative_to(tmp_path).as_posix() for p in loaded.pdfs] == ["a/x.pdf", "b/nested/x.pdf", "c/y.pdf"]


def test_relative_inputs_resolve_from_the_config_folder(tmp_path, monkeypatch):
    make_pdf(tmp_path / "project" / "pdfs" / "doc.pdf", 1)
    config = write_config(
        tmp_path / "project" / "job.yaml",
        {"job_id": "j", "input_path": "pdfs", "models": [{"model": "m", "mode": "local", "provider": "pdf-text"}]},
    )
    monkeypatch.chdir(tmp_path)
    assert [Path(p).name for p in load_job_config(config).pdfs] == ["doc.pdf"]


def test_yaml_syntax_errors_name_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("job_id: x\nmodels:\n  - model: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_job_config(path)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(f"{path}:4:1: not valid YAML")


def test_every_missing_input_is_reported(tmp_path):
    data = _base(tmp_path, mode="local", provider="pdf-text")
    data["input_path"] = [str(tmp_path / "doc.pdf"), "/nope/x.pdf", "/nope/*.pdf"]
    problems = _errors(data)
    assert problems[0].startswith("input_path '/nope/x.pdf': no such file")
    assert problems[1] == "input_path '/nope/*.pdf': the pattern matched no PDF"


def test_per_model_render_settings_override_the_job(tmp_path):
    data = _base(tmp_path, mode="local", provider="tracr-ocr", render={"longest_side_px": 2048})
    data["models"].append({"model": "other", "mode": "local", "provider": "pdf-text"})
    config = parse_job_config(data, env={}).config
    assert config.render_for(config.models[0]).longest_side_px == 2048
    assert config.render_for(config.models[1]).longest_side_px == 1288


def test_public_dict_has_no_secret(tmp_path):
    loaded = parse_job_config(_base(tmp_path, provider="custom", base_url="http://x/v1", api_key="sk-inline-secret"), env={})
    assert "sk-inline-secret" not in str(loaded.config.public_dict())
    assert loaded.config.models[0].public_dict()["api_key_source"] == "config"


def test_example_config_is_valid():
    example = Path(__file__).resolve().parents[2] / "job_configs" / "example.yaml"
    loaded = load_job_config(example, env={})
    assert {m.provider for m in loaded.config.models} == {"tracr-ocr", "pdf-text"}
    assert len(loaded.pdfs) == 4


def test_a_missing_key_is_listed_with_every_other_problem(tmp_path):
    """One pass lists it all: a missing key variable beside an unknown key, a bad value, a missing input and a credential."""
    data = {
        "job_id": "j",
        "title": "Authorization: Bearer abcdef0123456789xyz",
        "input_path": str(tmp_path / "missing.pdf"),
        "promt": "hi",
        "models": [
            {"model": "gpt-4.1-mini", "provider": "openai"},
            {"model": "m", "provider": "custom", "base_url": "http://x/v1", "max_concurrent_requests": 0},
            {"model": "n", "provider": "custom", "base_url": "http://x/v1", "api_key_env": "TRACR_UNSET_KEY"},
        ],
    }
    problems = _errors(data, env={"UNRELATED": "1"})
    assert problems[0].startswith(f"input_path '{tmp_path / 'missing.pdf'}': no such file")
    assert "promt: unknown key (did you mean 'prompt'?)" in problems
    assert any(p.startswith("models[1].max_concurrent_requests: Input should be greater than or equal to 1") for p in problems)
    assert any(p.startswith("title: looks like a credential (an Authorization header value)") for p in problems)
    assert problems[-2:] == [
        "models[0].api_key_env: environment variable OPENAI_API_KEY is not set (export it before running, or name another variable)",
        "models[2].api_key_env: environment variable TRACR_UNSET_KEY is not set (export it before running, or name another variable)",
    ]
    assert len(problems) == 6, problems
    assert all("abcdef0123456789xyz" not in p for p in problems)
    # The same config, with its structure fixed, keeps the key problems: the list did not depend on what else was wrong.
    fixed = {**data, "input_path": str(make_pdf(tmp_path / "doc.pdf", 1)), "models": [data["models"][0], data["models"][2]]}
    del fixed["promt"], fixed["title"]
    assert [p.split(":")[0] for p in _errors(fixed)] == ["models[0].api_key_env", "models[1].api_key_env"]


def test_a_refused_field_is_not_reported_twice_as_a_credential(tmp_path):
    problems = _errors(_base(tmp_path, mode="local", provider="vllm", extra_vllm_args=["--api-key", "sk-proj-a1B2c3D4e5F6g7H8i9J0k"]))
    assert len(problems) == 1 and problems[0].startswith("models[0].extra_vllm_args: --api-key would put a secret"), problems
    assert "a1B2c3D4" not in problems[0]


def test_tracr_ocr_renders_pages_large_enough_to_read(tmp_path):
    """RapidOCR needs text about 16 px tall: the built-in model renders at 144 dpi unless the job chose a size."""
    config = parse_job_config(_base(tmp_path, mode="local", provider="tracr-ocr"), env={}).config
    render = config.render_for(config.models[0])
    assert render.dpi == 144 and render.min_shortest_side_px == 1000 and render.max_pixels == 40_000_000
    chosen = parse_job_config({**_base(tmp_path, mode="local", provider="tracr-ocr"), "render": {"longest_side_px": 2000}}, env={}).config
    assert chosen.render_for(chosen.models[0]).longest_side_px == 2000 and chosen.render_for(chosen.models[0]).dpi is None
