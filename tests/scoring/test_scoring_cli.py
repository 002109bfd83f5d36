"""``tracr score`` and ``tracr show`` end to end: the score-job flow on a real Prefect server, bad input as one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from tests.scoring.job_tree import JOB, build_job
from tracr.outputs.files import read_json


def test_score_command_runs_the_flow_and_show_prints_rates(tmp_path: Path, prefect_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    build_job(tmp_path)
    code = main(["score", "scored", "--outputs", str(tmp_path), "--tests", str(JOB / "tests.jsonl"), "--references", str(JOB / "refs")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "tests passed [95% CI]" in out and "100.0% [100.0–100.0]" in out
    assert (tmp_path / "scored" / "scores" / "tests.jsonl").is_file()
    summary = read_json(tmp_path / "scored" / "scores" / "summary.json")
    assert summary is not None and summary["options"]["tests"] == str(JOB / "tests.jsonl")

    assert main(["show", "scored", "--outputs", str(tmp_path)]) == 0
    shown = capsys.readouterr().out
    assert "scores (tracr score" in shown and "repetition" in shown and "paired sign-flip tests" in shown


def test_bad_test_line_is_one_line_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build_job(tmp_path)
    tests = tmp_path / "bad.jsonl"
    tests.write_text(json.dumps({"pdf": "report.pdf", "page": 1, "id": "a", "type": "order", "before": "x"}) + "\n")
    assert main(["score", "scored", "--outputs", str(tmp_path), "--tests", str(tests)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"tracr score: {tests}:1: field 'after': is missing"


def test_unknown_job_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "nope", "--outputs", str(tmp_path)]) == 2
    assert "no job 'nope'" in capsys.readouterr().err
