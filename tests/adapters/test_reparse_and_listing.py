"""Re-reading finished runs from their kept replies, the registry listing, and adapter config errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.adapters.family_jobs import KEY_ENV, job_config, run_job
from tests.adapters.test_family_runs import DOTS_REPLY
from tests.conftest import TEST_API_KEY, write_config
from tracr.adapters.registry import ADAPTERS, adapter_by_name
from tracr.config.job import ConfigError, parse_job_config
from tracr.outputs.files import read_json
from tracr.outputs.journal import latest_entries

REPO = Path(__file__).resolve().parents[2]
DOTS = "rednote-hilab/dots.ocr"


def _tracr(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, cwd=REPO, timeout=120)


async def _dots_job(tmp_path: Path, stub_server: Any, pdf_factory: Any, monkeypatch: Any, **model: Any) -> Path:
    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    stub = stub_server(model=DOTS, replies=[DOTS_REPLY])
    pdf_factory("report.pdf", 2)
    config = write_config(tmp_path / "job.yaml", job_config("families", str(tmp_path / "inputs"), stub.base_url, DOTS, **model))
    state = await run_job(config, tmp_path / "out")
    assert state.is_completed(), state.message
    (run_dir,) = (tmp_path / "out" / "families").glob("*/run-1")
    return run_dir


@pytest.mark.usefixtures("prefect_server")
async def test_reparse_keeps_furniture_afterwards_without_asking_again(tmp_path, stub_server, pdf_factory, monkeypatch):
    run_dir = await _dots_job(tmp_path, stub_server, pdf_factory, monkeypatch)
    page = run_dir / "report" / "1.md"
    assert "ACME Corp" not in page.read_text()
    before = read_json(run_dir / "run_metadata.json")

    done = _tracr("reparse", "families", "--keep-furniture", "--outputs", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert "changed 2 (0 now done, 0 now failed)" in done.stdout, done.stdout
    assert "ACME Corp" in page.read_text() and "Page 3 of 9" in page.read_text()
    entries = latest_entries(run_dir / "report" / "pages.jsonl")
    assert entries[1]["dropped"] is None and entries[1]["chars"] == len(page.read_text())
    assert entries[1]["input_tokens"] == before["rollup"]["input_tokens"] // 2  # the page's cost is kept, not re-counted
    after = read_json(run_dir / "run_metadata.json")
    assert after["settings"]["adapter"]["keep_furniture"] is True and after["reparsed"][0]["pages_changed"] == 2
    assert after["rollup"]["pages_done"] == 2 and after["rollup"]["input_tokens"] == before["rollup"]["input_tokens"]
    pdf_meta = read_json(run_dir / "report" / "pdf_metadata.json")
    assert [p["chars"] for p in pdf_meta["pages"]] == [entries[1]["chars"], entries[2]["chars"]]

    again = _tracr("reparse", "families", "--keep-furniture", "--outputs", str(tmp_path / "out"))
    assert "changed 0" in again.stdout  # nothing left to change: idempotent


@pytest.mark.usefixtures("prefect_server")
async def test_reparse_a_run_asked_generically_with_the_family_parser(tmp_path, stub_server, pdf_factory, monkeypatch):
    run_dir = await _dots_job(tmp_path, stub_server, pdf_factory, monkeypatch, adapter="none")
    page = run_dir / "report" / "1.md"
    assert page.read_text().startswith("[{")  # asked the generic way, the JSON was stored as the page
    assert not (run_dir / "report" / "1.reply.txt").exists()

    done = _tracr("reparse", "families", "--adapter", "dots.ocr", "--outputs", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert page.read_text().startswith("# Quarterly report") and "ACME" not in page.read_text()
    assert json.loads((run_dir / "report" / "1.reply.txt").read_text())[0]["category"] == "Page-header"

    wrong = _tracr("reparse", "families", "--adapter", "olmocr-2", "--outputs", str(tmp_path / "out"))
    assert wrong.returncode == 0 and "0 now done, 2 now failed" in wrong.stdout
    entries = latest_entries(run_dir / "report" / "pages.jsonl")
    assert entries[1]["status"] == "failed" and entries[1]["error_class"] == "unparseable_reply"
    assert not page.exists() and (run_dir / "report" / "1.reply.txt").is_file()  # the reply is never lost
    assert read_json(run_dir / "run_metadata.json")["rollup"]["pages_failed"] == 2


def test_reparse_refuses_what_it_cannot_do(tmp_path):
    missing = _tracr("reparse", "nojob", "--outputs", str(tmp_path))
    assert missing.returncode == 1 and "no run to re-parse" in missing.stderr
    (tmp_path / "j" / "m" / "run-1").mkdir(parents=True)
    (tmp_path / "j" / "m" / "run-1" / "run_metadata.json").write_text(json.dumps({"status": "completed"}))
    unknown = _tracr("reparse", "j", "--adapter", "olmocr-9", "--outputs", str(tmp_path))
    assert unknown.returncode == 2 and "unknown adapter 'olmocr-9'" in unknown.stderr and "dots.ocr" in unknown.stderr
    no_adapter = _tracr("reparse", "j", "--outputs", str(tmp_path))
    assert no_adapter.returncode != 0 and "recorded no adapter" in no_adapter.stderr and "Traceback" not in no_adapter.stderr


def test_models_lists_every_family_and_shows_one_in_full():
    listing = _tracr("models")
    assert listing.returncode == 0
    for adapter in ADAPTERS:
        assert adapter.name in listing.stdout
    dots = _tracr("models", "dots.ocr")
    assert dots.returncode == 0 and "<|img|><|imgpad|><|endofimg|>" in dots.stdout and "layout_utils.py" in dots.stdout
    assert adapter_by_name("dots.ocr").prompt.splitlines()[0] in dots.stdout
    as_json = json.loads(_tracr("models", "--json").stdout)
    assert {entry["name"] for entry in as_json} >= {a.name for a in ADAPTERS}
    unknown = _tracr("models", "olmocr-9")
    assert unknown.returncode == 2 and "choose from" in unknown.stderr


def _job(models: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    base = {"mode": "api", "provider": "custom", "base_url": "http://127.0.0.1:9/v1"}
    return {"job_id": "j", "input_path": str(REPO / "tracr" / "samples"), "models": [{**base, **m} for m in models], **extra}


def test_unknown_adapter_names_fail_before_anything_starts_listing_the_choices():
    with pytest.raises(ConfigError) as caught:
        parse_job_config(_job([{"model": "served-as-olmocr", "adapter": "olmocr-9"}]))
    assert "models[0].adapter: unknown adapter 'olmocr-9'" in str(caught.value) and "olmocr-2" in str(caught.value)
    with pytest.raises(ConfigError, match=r"adapters\[0\]\.parser: unknown parser 'yaml'"):
        parse_job_config(_job([{"model": "m"}], adapters=[{"name": "mine", "parser": "yaml"}]))
    with pytest.raises(ConfigError, match="'dots.ocr' is a built-in adapter name"):
        parse_job_config(_job([{"model": "m"}], adapters=[{"name": "dots.ocr"}]))


def test_served_name_custom_adapter_and_none():
    config = parse_job_config(
        _job(
            [
                {"model": "olmocr", "adapter": "olmocr-2", "name": "a"},  # vLLM's --served-model-name hides the id
                {"model": "rednote-hilab/dots.ocr", "adapter": "none", "name": "b"},
                {"model": "my-org/new-ocr", "adapter": "house-style", "name": "c"},
            ],
            adapters=[{"name": "house-style", "base": "nanonets-ocr2", "prompt": "Read it.", "order": "text_first", "max_tokens": 2000}],
        )
    ).config
    first, second, third = (config.adapter_for(spec) for spec in config.models)
    assert first is not None and first.name == "olmocr-2" and first.parser == "olmocr"
    assert second is not None and second.name == "generic" and second.prompt == config.prompt and second.parser == "none"
    assert third is not None and (third.name, third.prompt, third.order.value, third.sampling.max_tokens) == (
        "house-style",
        "Read it.",
        "text_first",
        2000,
    )
    assert third.parser == "nanonets" and third.system == adapter_by_name("nanonets-ocr2").system
    assert config.render_for(config.models[2]).shortest_side_px == 1280  # the base's image preparation
    recorded = config.public_dict()
    assert recorded["adapters"][0]["name"] == "house-style" and recorded["models"][0]["adapter"] == "olmocr-2"


def test_a_model_without_adapter_settings_keeps_its_recorded_config_and_digest():
    plain = parse_job_config(_job([{"model": "stub-ocr"}])).config.public_dict()
    assert "adapter" not in plain["models"][0] and "keep_furniture" not in plain["models"][0] and "adapters" not in plain
    assert set(plain["render"]) == {"longest_side_px", "format", "jpeg_quality"}
