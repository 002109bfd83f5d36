"""The budget fields of hosted models: checked with one-line errors, recorded without changing old digests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import make_pdf
from tracr.config.job import ConfigError, parse_job_config
from tracr.config.models import model_spec


def _job(tmp_path: Path, **model: object) -> dict:
    make_pdf(tmp_path / "doc.pdf", 1)
    spec = {"model": "gpt-4o-mini", "provider": "openai", "api_key_env": "OPENAI_API_KEY", **model}
    return {"job_id": "j", "input_path": str(tmp_path / "doc.pdf"), "models": [spec]}


def test_hosted_models_take_budgets_and_local_ones_drop_them():
    api = model_spec(model="m", base_url="http://h/v1", requests_per_minute=500, tokens_per_minute=200_000, rate_limit_key="team-a")
    assert (api.requests_per_minute, api.tokens_per_minute, api.rate_limit_key, api.adaptive_concurrency) == (500, 200_000, "team-a", True)
    assert api.public_dict()["requests_per_minute"] == 500
    block = model_spec(block="my-target", requests_per_minute=10)
    assert block.requests_per_minute == 10
    local = model_spec(model="m", mode="local", provider="vllm", requests_per_minute=10)
    assert not hasattr(local, "requests_per_minute")


def test_a_config_without_budgets_records_what_it_recorded_before():
    public = model_spec(model="m", base_url="http://h/v1").public_dict()
    assert not {"requests_per_minute", "tokens_per_minute", "rate_limit_key", "adaptive_concurrency", "adaptive_latency_s"} & set(public)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"requests_per_minute": 0}, "models[0].requests_per_minute: Input should be greater than or equal to 1"),
        ({"tokens_per_minute": -5}, "models[0].tokens_per_minute: Input should be greater than or equal to 1"),
        ({"rate_limit_key": "has spaces in it"}, "models[0].rate_limit_key: must be a short name"),
        ({"adaptive_latency_s": 0}, "models[0].adaptive_latency_s: Input should be greater than 0"),
    ],
)
def test_bad_budgets_are_one_line_errors(tmp_path, fields, expected):
    with pytest.raises(ConfigError) as err:
        parse_job_config(_job(tmp_path, **fields), env={"OPENAI_API_KEY": "x"})
    assert any(line.startswith(expected) for line in err.value.problems), err.value.problems


def test_a_key_pasted_as_the_budget_name_is_refused_and_not_echoed(tmp_path):
    pasted = "sk-proj-Abcdefghijklmnopqrstuvwxyz0123456789"
    with pytest.raises(ConfigError) as err:
        parse_job_config(_job(tmp_path, rate_limit_key=pasted), env={"OPENAI_API_KEY": "x"})
    text = str(err.value) + " ".join(err.value.problems)
    assert "rate_limit_key" in text and pasted not in text
