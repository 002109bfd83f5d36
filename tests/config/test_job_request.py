"""The ocr-job flow's parameter model: one config source, no key values."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.conftest import TEST_API_KEY, write_config
from tracr.config.job_request import JobRequest


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


async def test_inline_config_runs_and_is_stored_as_a_form_parameter(tmp_path, prefect_server, stub_server, pdf_factory, monkeypatch):
    from prefect import get_client

    from flows.ocr_job import ocr_job_flow

    monkeypatch.setenv("INLINE_KEY", TEST_API_KEY)
    stub = stub_server()
    pdf = pdf_factory("a.pdf", 2)
    data = _inline(str(pdf), api_key_env="INLINE_KEY", retries=0)
    data["models"][0].update(base_url=stub.base_url, model="stub-ocr")
    state = await ocr_job_flow({"config": data, "outputs": str(tmp_path / "out")}, return_state=True)  # a dict, as a deployment passes it
    assert state.is_completed(), state.message
    assert len(list((tmp_path / "out/inline-job/stub-ocr/run-1/a").glob("*.md"))) == 2
    async with get_client() as client:
        run = await client.read_flow_run(state.state_details.flow_run_id)
    assert run.name == "inline-job" and "tracr-job:inline-job" in run.tags
    assert run.parameters["request"]["config"]["models"][0]["api_key_env"] == "INLINE_KEY"
    assert TEST_API_KEY not in str(run.parameters)


async def test_documented_failure_automation_is_accepted_by_prefect(prefect_server):
    """The automation example in docs/operations.md, created against the real server."""
    from prefect.automations import Automation
    from prefect.blocks.notifications import SlackWebhook
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import EventTrigger, Posture

    await SlackWebhook(url="https://hooks.slack.com/services/T000/B000/XXXX").save("ops-slack", overwrite=True)
    block = await SlackWebhook.load("ops-slack")
    automation = await Automation(
        name="tracr run failed",
        trigger=EventTrigger(
            expect={"tracr.run.failed"}, match={"prefect.resource.id": "tracr.run.*"}, posture=Posture.Reactive, threshold=1
        ),
        actions=[
            SendNotification(
                block_document_id=block._block_document_id,
                subject="tracr: {{ event.resource['tracr.job-id'] }} failed",
                body="{{ event.resource.name }} failed ({{ event.payload.error_class }}): "
                "{{ event.payload.pages_done }} pages done, {{ event.payload.pages_failed }} failed.",
            )
        ],
    ).acreate()
    stored = await Automation.aread(id=automation.id)
    assert stored.trigger.expect == {"tracr.run.failed"} and stored.actions[0].type == "send-notification"
