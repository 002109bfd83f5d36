"""The ocr-job flow's parameter model: one config source, no key values."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.conftest import TEST_API_KEY, write_config
from tracr.job_request import JobRequest


def _inline(pdf: str, **model) -> dict:
    return {"job_id": "inline-job", "input_path": pdf, "models": [{"model": "m", "base_url": "http://127.0.0.1:1/v1", **model}]}


def test_exactly_one_config_source(tmp_path):
    with pytest.raises(ValidationError, match="exactly one of config_path .* or config"):
        JobRequest()
    with pytest.raises(ValidationError, match="exactly one of config_path"):
        JobRequest(config_path="a.yaml", config={"job_id": "x"})


def test_inline_api_key_is_refused_without_echoing_it():
    with pytest.raises(ValidationError) as info:
        JobRequest(config=_inline("x.pdf", api_key=TEST_API_KEY))
    text = str(info.value)
    assert "config.models[0].api_key" in text and "api_key_env" in text
    assert TEST_API_KEY not in text


def test_inline_and_file_configs_load_the_same_job(tmp_path, pdf_factory, monkeypatch):
    monkeypatch.setenv("INLINE_KEY", "k")
    pdf = pdf_factory("a.pdf", 2)
    data = _inline(str(pdf), api_key_env="INLINE_KEY")
    from_file = JobRequest(config_path=str(write_config(tmp_path / "job.yaml", data))).load()
    inline = JobRequest(config=data, job_id="renamed").load()
    assert inline.config.job_id == "renamed" and from_file.config.job_id == "inline-job"
    assert inline.pdfs == from_file.pdfs
    assert JobRequest(config=data).raw_job_id() == "inline-job"


def test_request_schema_is_a_form():
    schema = JobRequest.model_json_schema()
    assert set(schema["properties"]) == {"config_path", "config", "job_id", "outputs", "resume", "force"}
