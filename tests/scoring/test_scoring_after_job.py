"""``scoring: {score: true}`` in a job config: a real job (the text-layer baseline) is scored when it ends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import make_pdf, write_config
from tracr.index.store import read_index
from tracr.outputs.files import read_json

pytestmark = pytest.mark.usefixtures("prefect_server")

TESTS = [  # (id, test fields, passes on the text layer of tests.conftest.make_pdf pages)
    ("alpha-title", {"pdf": "reports/alpha.pdf", "page": 1, "type": "present", "text": "page 1 of alpha"}, True),
    ("alpha-fox", {"pdf": "reports/alpha.pdf", "page": 2, "type": "present", "text": "The quick brown fox jumps over the lazy dog."}, True),
    ("alpha-clean", {"pdf": "reports/alpha.pdf", "page": 2, "type": "absent", "text": "CONFIDENTIAL"}, True),
    ("beta-order", {"pdf": "beta.pdf", "page": 1, "type": "order", "before": "page 1 of beta", "after": "quick brown fox"}, True),
    ("beta-missing", {"pdf": "beta.pdf", "page": 1, "type": "present", "text": "a sentence that is not on the page"}, False),
    ("beta-sane", {"pdf": "beta.pdf", "page": 1, "type": "baseline"}, True),
]


async def test_job_with_score_true_writes_scores_before_the_index(tmp_path: Path) -> None:
    from flows.ocr_job import ocr_job_flow
    from tracr.config.job_request import JobRequest

    make_pdf(tmp_path / "inputs" / "reports" / "alpha.pdf", 2)
    make_pdf(tmp_path / "inputs" / "beta.pdf", 1)
    (tmp_path / "tests.jsonl").write_text("".join(json.dumps({"id": i, **t}) + "\n" for i, t, _ in TESTS), encoding="utf-8")
    config = write_config(
        tmp_path / "job.yaml",
        {
            "job_id": "autoscore",
            "input_path": str(tmp_path / "inputs"),
            "models": [{"model": "text-layer", "mode": "local", "provider": "pdf-text"}],
            "scoring": {"score": True, "references": {"tests": "tests.jsonl"}},  # relative to the config's folder
        },
    )
    outputs = tmp_path / "out"
    state = await ocr_job_flow(JobRequest(config_path=str(config), outputs=str(outputs)), return_state=True)
    assert state.is_completed(), state.message

    scores = outputs / "autoscore" / "scores"
    assert sorted(p.name for p in scores.iterdir()) == ["health.jsonl", "summary.json", "tests.jsonl"]
    lines = [json.loads(line) for line in (scores / "tests.jsonl").read_text().splitlines()]
    assert {r["id"]: r["passed"] for r in lines} == {i: ok for i, _, ok in TESTS}
    assert {(r["model_slug"], r["run"]) for r in lines} == {("text-layer", 1)}
    assert {r["pdf_slug"] for r in lines if r["id"].startswith("alpha")} == {"alpha"}  # matched by path under the input folder

    summary = read_json(scores / "summary.json")
    assert summary is not None and summary["options"]["tests"] == str((tmp_path / "tests.jsonl").resolve())
    tests = summary["models"]["text-layer"]["tests"]
    assert (tests["passed"], tests["n_tests"]) == (5, 6)
    assert tests["categories"]["present"]["estimate"] == pytest.approx(2 / 3)
    assert summary["models"]["text-layer"]["health"]["pages"] == 3

    with read_index(outputs) as con:  # the end-of-job index refresh ran after scoring and picked the scores up
        row = con.execute("SELECT tests, pass_rate FROM model_scores WHERE job_id = 'autoscore' AND model_slug = 'text-layer'").fetchone()
        outcomes = con.execute("SELECT count(*), count(*) FILTER (WHERE passed) FROM test_outcomes WHERE job_id = 'autoscore'").fetchone()
    assert row is not None and row[0] == 6 and row[1] == pytest.approx((2 / 3 + 1 + 1 + 1) / 4)
    assert outcomes == (6, 5)


async def test_job_without_score_writes_no_scores(tmp_path: Path) -> None:
    from flows.ocr_job import ocr_job_flow
    from tracr.config.job_request import JobRequest

    make_pdf(tmp_path / "inputs" / "beta.pdf", 1)
    config = write_config(
        tmp_path / "job.yaml",
        {
            "job_id": "noscore",
            "input_path": str(tmp_path / "inputs"),
            "models": [{"model": "text-layer", "mode": "local", "provider": "pdf-text"}],
            "scoring": {"references": {"tests": "tests.jsonl"}},  # references given, but score is false (the default)
        },
    )
    state = await ocr_job_flow(JobRequest(config_path=str(config), outputs=str(tmp_path / "out")), return_state=True)
    assert state.is_completed(), state.message
    assert not (tmp_path / "out" / "noscore" / "scores").exists()
