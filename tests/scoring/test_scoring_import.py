"""``tracr import``: plain trees and olmOCR-Bench candidate folders become normal runs, scored with repeats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from tasks.scoring.score import score_job_now
from tests.conftest import make_pdf
from tests.scoring.job_tree import GOOD, JOB
from tracr.config.scoring import ScoreRequest
from tracr.outputs.files import read_json
from tracr.outputs.inputs import read_job_inputs
from tracr.outputs.journal import latest_entries
from tracr.outputs.layout import OutputLayout

TESTS = JOB / "tests.jsonl"


def test_olmocr_candidates_create_a_job_and_score_by_majority_of_repeats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs, cand, root = tmp_path / "pdfs", tmp_path / "cand", tmp_path / "out"
    make_pdf(inputs / "docs" / "report.pdf", 1)
    make_pdf(inputs / "letters" / "letter.pdf", 2)
    (cand / "docs").mkdir(parents=True)
    for repeat, text in ((1, GOOD), (2, GOOD), (3, "nothing here")):
        (cand / "docs" / f"report_pg1_repeat{repeat}.md").write_text(text)
    assert main(["import", "bench", str(cand), "--model", "Other/Model-X", "--inputs", str(inputs), "--outputs", str(root)]) == 0
    assert "imported 3 run(s) into job bench: other-model-x/run-1, other-model-x/run-2, other-model-x/run-3" in capsys.readouterr().out
    layout = OutputLayout(root)
    meta = read_json(layout.run("bench", "other-model-x", 3).run_metadata)
    assert (
        meta is not None
        and meta["imported"] is True
        and meta["import"]["repeat_runs"] == [1, 2, 3]
        and meta["import"]["layout"] == "olmocr-bench"
    )
    assert latest_entries(layout.run("bench", "other-model-x", 1).page_journal("report"))[1]["status"] == "done"
    job = read_json(layout.job_metadata("bench"))
    assert job is not None and job["inputs"] == {"file": "inputs.jsonl", "pdfs": 2, "broken": 0, "pages_selected": 3}
    assert [(i["pdf_slug"], i["page_count"]) for i in read_job_inputs(layout, "bench")] == [("report", 1), ("letter", 2)]

    tests = tmp_path / "t.jsonl"
    tests.write_text("\n".join(line for line in TESTS.read_text().splitlines() if '"docs/report.pdf"' in line) + "\n")
    summary = score_job_now(ScoreRequest(job_id="bench", outputs=str(root), tests=str(tests)))
    rows = [json.loads(x) for x in (root / "bench" / "scores" / "tests.jsonl").read_text().splitlines()]
    title = [r for r in rows if r["id"] == "title"]
    assert [(r["run"], r["passed"]) for r in title] == [(1, True), (2, True), (3, False)]
    entry = summary["models"]["other-model-x"]
    assert entry["runs"] == [1, 2, 3] and entry["tests"]["overall"]["estimate"] == 1.0  # 2 of 3 repeats pass every test


def test_plain_tree_into_an_existing_job_and_errors_name_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.scoring.job_tree import build_job

    build_job(tmp_path)
    plain = tmp_path / "plain"
    (plain / "letter").mkdir(parents=True)
    (plain / "letter" / "2.md").write_text("The quick brown fox jumps over the lazy dog.")
    assert main(["import", "scored", str(plain), "--model", "mine", "--outputs", str(tmp_path)]) == 0
    assert (tmp_path / "scored" / "mine" / "run-1" / "letter" / "2.md").is_file()
    assert "mine" in {m["model_slug"] for m in read_json(tmp_path / "scored" / "job_metadata.json")["models"]}  # type: ignore[index]
    capsys.readouterr()
    (plain / "letter" / "9.md").write_text("x")
    assert main(["import", "scored", str(plain), "--model", "mine", "--outputs", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"tracr import: {plain}/letter/9.md: page 9, but letter has 2 page(s)"
    assert main(["import", "nojob", str(plain), "--model", "m", "--outputs", str(tmp_path)]) == 2
    assert "pass --inputs DIR" in capsys.readouterr().err
