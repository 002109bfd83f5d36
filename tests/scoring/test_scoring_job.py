"""Scoring a whole job: scores/ files from the output tree, matching tests to PDFs, errors naming the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.scoring.score import plan_scoring, score_job_now
from tests.scoring.job_tree import JOB, build_job
from tracr.config.scoring import ModelPrice, ScoreRequest
from tracr.outputs.files import read_json
from tracr.scoring.job import JobPdf, ScoringInputError, match_pdf


def request(root: Path, **kw: object) -> ScoreRequest:
    return ScoreRequest(job_id="scored", outputs=str(root), **kw)  # type: ignore[arg-type]


def outcomes(root: Path) -> dict[tuple[str, str], bool]:
    lines = (root / "scored" / "scores" / "tests.jsonl").read_text().splitlines()
    return {(r["id"], r["model_slug"]): r["passed"] for r in map(json.loads, lines)}


def test_scores_files_from_the_output_tree(tmp_path: Path) -> None:
    build_job(tmp_path)
    summary = score_job_now(request(tmp_path, tests=str(JOB / "tests.jsonl"), references=str(JOB / "refs")))
    scores = tmp_path / "scored" / "scores"
    assert sorted(p.name for p in scores.iterdir()) == ["health.jsonl", "summary.json", "tests.jsonl"]

    health = [json.loads(line) for line in (scores / "health.jsonl").read_text().splitlines()]
    loopy = [r for r in health if r["model_slug"] == "loopy" and r["pdf_slug"] == "report"]
    assert {i["kind"] for i in loopy[0]["issues"]} >= {"repetition", "cut_off"}
    assert not [r for r in health if r["model_slug"] == "good"]

    got = outcomes(tmp_path)
    assert len(got) == 6 * 3  # one line per (test, model, run)
    assert all(got[(t, "good")] for t in ("title", "no_draft", "intro_first", "volume_cell", "sane", "fox"))
    assert got[("fox", "loopy")] is False  # the page failed: a missing output fails the test
    assert got[("fox", "bad")] is True and got[("title", "bad")] is False  # olmOCR-Bench's rule: "The" passes a present test (issue 461)
    line = next(json.loads(x) for x in (scores / "tests.jsonl").read_text().splitlines() if '"fox"' in x and '"loopy"' in x)
    assert line["run"] == 1 and line["type"] == "present" and "failed" in line["explanation"]

    good = summary["models"]["good"]
    assert good["tests"]["overall"]["estimate"] == 1.0 and good["tests"]["n_tests"] == 6
    assert set(good["tests"]["categories"]) == {"present", "absent", "order", "table", "baseline"}
    assert good["reference"]["char_ned"] == 0.0 and good["reference"]["teds"] == 1.0
    assert summary["models"]["loopy"]["health"]["by_kind"]["repetition"] == pytest.approx(1 / 2)
    assert summary["models"]["loopy"]["pages_failed"] == 1
    assert summary["models"]["bad"]["reference"]["char_ned"] > 0.9
    pairs = {(p["a"], p["b"]): p for p in summary["paired"]}
    assert pairs[("bad", "good")]["difference"] < 0
    assert read_json(scores / "summary.json") == json.loads(json.dumps(summary))


def test_strict_present_fixes_the_near_empty_flaw(tmp_path: Path) -> None:
    build_job(tmp_path)
    score_job_now(request(tmp_path, tests=str(JOB / "tests.jsonl"), strict_present=True))
    got = outcomes(tmp_path)
    assert got[("fox", "bad")] is False and got[("fox", "good")] is True


def test_rescoring_rebuilds_and_drops_stale_tests(tmp_path: Path) -> None:
    build_job(tmp_path)
    score_job_now(request(tmp_path, tests=str(JOB / "tests.jsonl")))
    first = (tmp_path / "scored" / "scores" / "health.jsonl").read_text()
    score_job_now(request(tmp_path))
    assert (tmp_path / "scored" / "scores" / "health.jsonl").read_text() == first
    assert not (tmp_path / "scored" / "scores" / "tests.jsonl").exists()
    assert "tests" not in read_json(tmp_path / "scored" / "scores" / "summary.json")["models"]["good"]


def test_cost_per_1000_pages_from_tokens(tmp_path: Path) -> None:
    build_job(tmp_path)
    summary = score_job_now(request(tmp_path, prices={"good": ModelPrice(input_per_million=1.0, output_per_million=2.0)}))
    cost = summary["models"]["good"]["cost"]
    # 3 pages, 3000 input and 540 output tokens: (3000 * 1 + 540 * 2) / 1e6 / 3 * 1000
    assert cost["cost_per_1000_pages"] == pytest.approx((3000 + 1080) / 1e6 / 3 * 1000)


def test_pdf_matching_by_relative_path_then_unique_name() -> None:
    pdfs = [JobPdf("a-x", "/in/a/x.pdf"), JobPdf("b-x", "/in/b/x.pdf"), JobPdf("y", "/in/b/y.pdf")]
    assert match_pdf("a/x.pdf", pdfs).pdf_slug == "a-x"  # type: ignore[union-attr]
    assert match_pdf("y.pdf", pdfs).pdf_slug == "y"  # type: ignore[union-attr]
    assert match_pdf("other/y.pdf", pdfs).pdf_slug == "y"  # type: ignore[union-attr]
    assert match_pdf("x.pdf", pdfs) is None  # two PDFs named x.pdf


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ('{"pdf": "docs/report.pdf", "page": 1, "id": "x", "type": "present"}', ":2: field 'text': is missing"),
        ("{not json", ":2: not valid JSON"),
        (
            '{"pdf": "nowhere.pdf", "page": 1, "id": "x", "type": "baseline"}',
            ":2: test 'x' names PDF 'nowhere.pdf', which is not in job scored",
        ),
        (
            '{"pdf": "letter.pdf", "page": 7, "id": "x", "type": "baseline"}',
            ":2: test 'x' is about page 7 of 'letter.pdf', which job scored did not process (pages: 1-2)",
        ),
    ],
)
def test_bad_tests_name_the_line(tmp_path: Path, line: str, fragment: str) -> None:
    build_job(tmp_path)
    tests = tmp_path / "t.jsonl"
    tests.write_text('{"pdf": "letter.pdf", "page": 1, "id": "ok", "type": "baseline"}\n' + line + "\n")
    with pytest.raises(ScoringInputError) as caught:
        plan_scoring(request(tmp_path, tests=str(tests)))
    assert fragment in caught.value.one_line()
    assert str(tests) in str(caught.value)


def test_bad_references_name_the_file(tmp_path: Path) -> None:
    build_job(tmp_path)
    refs = tmp_path / "refs"
    (refs / "letter").mkdir(parents=True)
    (refs / "letter" / "9.md").write_text("x")
    with pytest.raises(ScoringInputError, match=r"letter/9.md: reference for page 9 of 'letter', which job scored did not process"):
        plan_scoring(request(tmp_path, references=str(refs)))
    (refs / "letter" / "9.md").unlink()
    (refs / "nope").mkdir()
    (refs / "nope" / "1.md").write_text("x")
    with pytest.raises(ScoringInputError, match="reference for PDF 'nope', which is not in the job"):
        plan_scoring(request(tmp_path, references=str(refs)))


def test_reference_for_a_page_that_failed_everywhere(tmp_path: Path) -> None:
    from tasks.scoring.importing import write_run
    from tracr.outputs.layout import OutputLayout

    build_job(tmp_path)
    layout = OutputLayout(tmp_path)
    for slug in ("good", "bad"):  # a newer run of each model where letter page 2 failed
        write_run(layout, "scored", slug, {("letter", 2): None})
    refs = tmp_path / "refs"
    (refs / "letter").mkdir(parents=True)
    (refs / "letter" / "2.md").write_text("x")
    with pytest.raises(ScoringInputError, match=r"2.md: reference for page 2 of 'letter', which failed in every scored run"):
        plan_scoring(request(tmp_path, references=str(refs)))
