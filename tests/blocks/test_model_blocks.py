"""ModelTarget blocks: registered with Prefect's CLI, named by job configs, key kept out of everything."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_config
from tracr.config.job import ConfigError, parse_job_config
from tracr.outputs.files import read_json

REPO = Path(__file__).resolve().parents[2]
BLOCK_KEY = "sk-block-91c4e7a2d05b8f36-kept-in-prefect-only"


def _block_job(tmp_path: Path, block: str, **model: object) -> Path:
    return write_config(
        tmp_path / "job.yaml",
        {"job_id": f"block-{block}", "input_path": str(tmp_path / "inputs"), "models": [{"block": block, "retries": 0, **model}]},
    )


def _errors(models: list[dict]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_job_config({"job_id": "b", "input_path": str(REPO / "tracr/samples"), "models": models})
    return info.value.problems


def test_config_names_a_block_instead_of_a_target():
    job = parse_job_config(
        {
            "job_id": "b",
            "input_path": str(REPO / "tracr/samples"),
            "models": [{"block": "my-gpt"}, {"block": "my-gpt", "model": "other", "name": "second"}],
        }
    )
    first, second = job.config.models
    assert (first.block, first.slug, first.model) == ("my-gpt", "my-gpt", "")
    assert type(first).__name__ == "BlockModel" and "base_url" not in first.public_dict()  # the endpoint is the block's
    assert first.public_dict()["api_key_source"] == "block"
    assert (second.slug, second.model) == ("second", "other")
    assert _errors([{"block": "My GPT"}]) == [
        "models[0].block: 'My GPT' is not a Prefect block name (lowercase letters, digits and dashes)"
    ]
    assert _errors([{"block": "b", "base_url": "http://x/v1"}]) == ["models[0].base_url: comes from block 'b'; remove it from the config"]
    assert _errors([{"block": "b", "api_key_env": "K"}]) == ["models[0].api_key_env: comes from block 'b'; remove it from the config"]
    assert _errors([{"block": "b", "mode": "local"}]) == [
        "models[0].block: a ModelTarget block names an API endpoint; remove `mode: local` or the block"
    ]
    assert _errors([{"name": "x"}]) == ["models[0].model: required (or name a ModelTarget block with `block`)"]


def test_block_type_registers_with_prefects_cli(prefect_server):
    import asyncio

    from prefect.client.orchestration import get_client

    result = subprocess.run(
        [sys.executable, "-m", "prefect", "block", "register", "-m", "blocks.model_target"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tracr Model Target" in result.stdout

    async def read():
        async with get_client() as client:
            block_type = await client.read_block_type_by_slug("tracr-model-target")
            schema = await client.get_most_recent_block_schema_for_block_type(block_type.id)
            return block_type, schema

    block_type, schema = asyncio.run(read())
    assert block_type.name == "tracr Model Target"
    assert schema.fields["secret_fields"] == ["api_key"]  # Prefect obfuscates it in the API and the UI
    assert {"base_url", "model", "api_key", "max_concurrent_requests", "timeout_s"} <= set(schema.fields["properties"])


async def test_job_runs_through_a_block_and_the_key_stays_in_it(tmp_path, stub_server, pdf_factory, prefect_server):
    """The stub accepts only the block's key; afterwards the key is nowhere but (encrypted) in the block."""
    from prefect.client.orchestration import get_client
    from prefect.logging.handlers import APILogHandler

    from blocks.model_target import ModelTarget
    from flows.ocr_job import ocr_job_flow
    from tracr.config.job_request import JobRequest

    stub = stub_server(model="block-model", api_key=BLOCK_KEY)
    await ModelTarget(base_url=stub.base_url, model="block-model", api_key=BLOCK_KEY, max_concurrent_requests=2, timeout_s=20).asave(
        "stub-target", overwrite=True
    )
    pdf_factory("doc.pdf", 3)
    config = _block_job(tmp_path, "stub-target")
    state = await ocr_job_flow(JobRequest(config_path=str(config), outputs=str(tmp_path / "out")), return_state=True)
    assert state.is_completed(), state.message

    run_meta = read_json(tmp_path / "out/block-stub-target/stub-target/run-1/run_metadata.json")
    assert run_meta["status"] == "completed" and run_meta["rollup"]["pages_done"] == 3
    assert run_meta["model"]["block"] == "stub-target" and run_meta["model"]["model"] == "block-model"
    assert run_meta["model"]["api_key_source"] == "block"
    assert run_meta["model"]["max_concurrent_requests"] == 2  # the block's default, since the config did not set it
    assert stub.stats()["outcomes"].get("ok") == 3 and stub.stats()["max_in_flight"] <= 2
    assert "stub page" in (tmp_path / "out/block-stub-target/stub-target/run-1/doc/1.md").read_text()

    await APILogHandler.aflush()
    for file in (tmp_path / "out").rglob("*"):
        if file.is_file():
            assert BLOCK_KEY.encode() not in file.read_bytes(), file
    async with get_client() as client:
        flow_runs = await client.read_flow_runs()
        logs = await client.read_logs()
        artifacts = await client.read_artifacts()
        stored = await client.read_block_document_by_name("stub-target", "tracr-model-target", include_secrets=False)
    dumped = json.dumps([r.model_dump(mode="json") for r in flow_runs + logs + artifacts])
    assert "block-stub-target" in dumped and "stub-target" in dumped  # we looked at this job's records
    assert BLOCK_KEY not in dumped
    assert BLOCK_KEY not in json.dumps(stored.model_dump(mode="json"))  # obfuscated when read without include_secrets

    # Prefect encrypts block documents at rest, so the plaintext is nowhere in its database:
    # not in block_document, flow_run parameters, logs, artifacts or events.
    db_path = Path(re.sub(r"^sqlite\+aiosqlite:///", "", prefect_server))
    db_files = list(db_path.parent.glob(db_path.name + "*"))
    assert any(b"block-stub-target" in f.read_bytes() for f in db_files)
    assert any(b"tracr-model-target" in f.read_bytes() for f in db_files)
    for file in db_files:
        assert BLOCK_KEY.encode() not in file.read_bytes(), file


async def test_missing_block_fails_the_job_before_anything_starts(tmp_path, pdf_factory, prefect_server):
    from flows.ocr_job import ocr_job_flow
    from tracr.config.job_request import JobRequest

    pdf_factory("doc.pdf", 1)
    config = _block_job(tmp_path, "no-such-target")
    state = await ocr_job_flow(JobRequest(config_path=str(config), outputs=str(tmp_path / "out")), return_state=True)
    assert state.is_failed()
    assert "no tracr-model-target block named 'no-such-target'" in state.message
    assert "models[0].block 'no-such-target'" in state.message and "prefect block register -m blocks.model_target" in state.message
    assert not (tmp_path / "out").exists()  # nothing was written
