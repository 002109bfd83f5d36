"""Collections: from folders, from the config, from reviewer tags; rankings per collection recover a winner that flips."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import main
from tasks.scoring.score import score_job_now
from tracr.config.collections import ALL, UNASSIGNED, CollectionSpec, assign_collections, folder_collections
from tracr.config.job import check_job_config
from tracr.config.scoring import score_request
from tracr.reporting.job_data import load_job_data
from tracr.reporting.rankings import collection_boards, unresolved_collections, wilson, winner_flips
from tracr.review.tags import Tag, TagRefused, append_tag, read_tags, tags_in_effect
from tracr.testing.collections_job import write_two_collection_job

JOB = "kinds"


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("collections")
    paths = write_two_collection_job(base / "outputs", base / "inputs", JOB, votes_per_collection=80)
    score_job_now(score_request(base / "outputs", JOB, tests=str(paths["tests"]), references=str(paths["references"])))
    return {"root": base / "outputs", **paths}


def test_default_collections_are_the_input_folders() -> None:
    pdfs = {"a": "/data/in/invoices/a.pdf", "b": "/data/in/forms/2024/b.pdf", "c": "/data/in/c.pdf"}
    assert folder_collections(pdfs) == {"a": "invoices", "b": "forms/2024", "c": "in"}
    assert folder_collections({"x": "/data/scans/x.pdf", "y": "/data/scans/y.pdf"}) == {"x": "scans", "y": "scans"}


def test_config_collections_by_folder_glob_and_list() -> None:
    pdfs = {"a": "/d/in/invoices/a.pdf", "b": "/d/in/forms/b.pdf", "c": "/d/in/misc/c.pdf", "hand": "/d/in/forms/hand.pdf"}
    specs = [
        CollectionSpec(name="invoices", folders=["invoices"]),
        CollectionSpec(name="scanned forms", globs=["forms/*.pdf"]),
        CollectionSpec(name="handwritten", pdfs=["hand.pdf"]),
    ]
    found = assign_collections(pdfs, specs)
    assert found.source == "config"
    assert found.of("a", 1) == ("invoices",)
    assert found.of("hand", 3) == ("scanned forms", "handwritten")
    assert found.of("c", 1) == (UNASSIGNED,)
    assert found.names == ["handwritten", "invoices", "scanned forms", UNASSIGNED]


def test_job_config_validates_collections(tmp_path: Path) -> None:
    for kind in ("invoices", "forms"):
        (tmp_path / "in" / kind).mkdir(parents=True)
        (tmp_path / "in" / kind / f"{kind}.pdf").write_bytes(b"%PDF-1.4\n")
    base = {"job_id": "j", "input_path": str(tmp_path / "in"), "models": [{"model": "m", "mode": "local", "provider": "pdf-text"}]}
    ok = check_job_config({**base, "collections": [{"name": "invoices", "folders": ["invoices"]}]}, env={})
    assert ok.problems == []
    assert ok.config is not None and ok.config.public_dict()["collections"][0]["name"] == "invoices"
    assert "collections" not in check_job_config(base, env={}).config.public_dict()  # type: ignore[union-attr]  # older digests kept
    bad = check_job_config(
        {
            **base,
            "collections": [
                {"name": "typo", "folders": ["invoice"]},
                {"name": "all", "pdfs": ["x.pdf"]},
                {"name": "empty"},
            ],
        },
        env={},
    )
    text = "\n".join(bad.problems)
    assert "'all' is the whole job" in text and "collection 'empty': give folders, globs or pdfs" in text
    dup = check_job_config({**base, "collections": [{"name": "a", "folders": ["forms"]}, {"name": "a", "folders": ["invoices"]}]}, env={})
    assert any("'a' is defined twice" in p for p in dup.problems)
    typo = check_job_config({**base, "collections": [{"name": "typo", "folders": ["invoice"]}]}, env={})
    assert typo.problems == ["collections: 'typo' matches no input PDF (check its folders, globs and pdfs)"]


def test_per_collection_rankings_recover_both_winners(job: dict[str, Path]) -> None:
    data = load_job_data(job["root"], JOB)
    assert data.collections.source == "folders" and data.collections.names == ["forms", "invoices"]
    boards = {b.name: b for b in collection_boards(data, rounds=300)}
    assert list(boards) == [ALL, "forms", "invoices"]
    assert [r.model for r in boards["invoices"].human] == ["alpha", "gamma", "beta"]
    assert [r.model for r in boards["forms"].human] == ["beta", "gamma", "alpha"]
    for name, best in (("invoices", "alpha"), ("forms", "beta")):
        board = boards[name]
        assert board.human_votes == 80 and board.pages == 6
        top, second = board.human[0], board.human[1]
        assert top.model == best and top.ci_low > boards[name].human[2].ci_high  # the winner is clear of the loser
        assert sum(r.votes for r in board.human) == 160  # each vote counts for two models
        assert board.tests[0].model == best and board.tests[0].estimate == 1.0 and board.tests[0].n == 6
        assert second.model == "gamma"
        assert board.reference[0].model == best and board.reference[0].n == 6 and board.reference[0].low > board.reference[-1].high
    # gamma failed one form page: its health rate there is 1 of 6, with a Wilson interval
    gamma = next(r for r in boards["forms"].health if r.model == "gamma")
    assert (gamma.n, round(gamma.estimate, 4)) == (6, round(1 / 6, 4)) and gamma.low > 0 and gamma.high < 0.65
    invoices = boards["invoices"]
    assert invoices.seconds_interval["gamma"][1] < invoices.seconds_interval["alpha"][0]  # gamma is faster, clearly
    for model in ("alpha", "beta"):  # alpha has token prices, beta a GPU-hour price
        low, high = invoices.cost_interval[model]
        assert low <= invoices.cost_per_1000[model] <= high and invoices.cost_per_1000[model] > 0
    flips = winner_flips(list(boards.values()))
    assert any(
        s.startswith("human votes: the winner differs") and "on invoices alpha wins" in s and "on forms beta wins" in s for s in flips
    )
    assert any(s.startswith("tests:") for s in flips) and any(s.startswith("reference:") for s in flips)


def test_unresolved_collections_name_the_one_short_of_votes(tmp_path: Path) -> None:
    write_two_collection_job(tmp_path / "out", tmp_path / "in", "few", votes_per_collection=4)
    boards = collection_boards(load_job_data(tmp_path / "out", "few"), rounds=200)
    assert set(unresolved_collections(boards)) == {"forms", "invoices"}


def test_reviewer_tags_add_and_remove_collections(tmp_path: Path) -> None:
    write_two_collection_job(tmp_path / "out", tmp_path / "in", "tagged", votes_per_collection=2)
    root = tmp_path / "out"
    append_tag(root, Tag(job_id="tagged", pdf_slug="inv-1", page=2, collection="handwritten", by="ann"))
    append_tag(root, Tag(job_id="tagged", pdf_slug="form-1", collection="handwritten", by="ann"))
    append_tag(root, Tag(job_id="tagged", pdf_slug="form-2", collection="stamped", by="ann"))
    append_tag(root, Tag(job_id="tagged", pdf_slug="form-2", collection="stamped", action="remove", by="bob"))
    assert [t.collection for t in read_tags(root, "tagged")] == ["handwritten", "handwritten", "stamped", "stamped"]
    assert ("form-2", None, "stamped") not in tags_in_effect(read_tags(root, "tagged"))
    data = load_job_data(root, "tagged")
    assert data.collections.of("inv-1", 2) == ("invoices", "handwritten")
    assert data.collections.of("inv-1", 1) == ("invoices",)
    assert data.collections.of("form-1", 1) == ("forms", "handwritten")
    boards = {b.name: b for b in collection_boards(data, rounds=50)}
    assert boards["handwritten"].pages == 3 and "stamped" not in boards
    with pytest.raises(TagRefused, match="job 'tagged' has no PDF 'inv-9'"):
        append_tag(root, Tag(job_id="tagged", pdf_slug="inv-9", collection="x"))
    with pytest.raises(TagRefused, match="no job 'nope'"):
        append_tag(root, Tag(job_id="nope", pdf_slug="inv-1", collection="x"))
    with pytest.raises(ValueError, match="collection name"):
        Tag(job_id="tagged", pdf_slug="inv-1", collection="<script>")


def test_wilson_interval() -> None:
    assert wilson(0, 0) == (0.0, 0.0, 0.0)
    rate, low, high = wilson(0, 20)
    assert rate == 0 and low == 0 and 0.1 < high < 0.2  # never a zero-width interval at 0%


def test_report_command_prints_boards_and_the_flip(job: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", JOB, "--outputs", str(job["root"]), "--rounds", "100"]) == 0
    out = capsys.readouterr().out
    assert "== collection invoices: 6 page(s)" in out and "== collection forms: 6 page(s)" in out
    assert "human votes (Bradley-Terry, 80 votes)" in out and "olmOCR-Bench tests (6 tests)" in out
    assert "human votes: the winner differs between collections" in out and "reference pages:" in out
    assert main(["show", JOB, "--outputs", str(job["root"])]) == 0
    shown = capsys.readouterr().out
    assert "collections (from folders): forms (3 PDFs), invoices (3 PDFs); `tracr report kinds` ranks each" in shown
    assert main(["report", "nope", "--outputs", str(job["root"])]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tracr report: no job 'nope' under") and "\n" not in err


def test_pairing_and_judge_focus_on_the_unsettled_collection(tmp_path: Path) -> None:
    import random

    from tracr.reporting.focus import collection_pages, focus_pages
    from tracr.reporting.job_data import ReportInputError
    from tracr.review.pairing import PairCandidate, next_pair
    from tracr.review.votes import PageRef

    def ref(model: str, pdf: str, page: int) -> PageRef:
        return PageRef(model_slug=model, run=1, pdf_slug=pdf, page=page)

    from tracr.review.votes import Vote, append_vote

    # forms gets 30 votes, invoices none: "unsettled" must pick invoices (not the alphabetical first)
    write_two_collection_job(tmp_path / "out", tmp_path / "in", "focus", votes_per_collection=0)
    for k in range(30):
        pdf, page = f"form-{1 + k % 3}", 1
        vote = Vote(job_id="focus", left=ref("beta", pdf, page), right=ref("gamma", pdf, page), outcome="left", voter="ann")
        append_vote(tmp_path / "out", vote)
    data = load_job_data(tmp_path / "out", "focus")
    forms = collection_pages(data, "forms")
    assert forms == {(f"form-{n}", p) for n in (1, 2, 3) for p in (1, 2)}
    name, pages = focus_pages(data, "unsettled", rounds=50)
    assert name == "invoices" and pages == collection_pages(data, "invoices")
    with pytest.raises(ReportInputError, match="has no collection 'receipts' \\(its collections: forms, invoices"):
        focus_pages(data, "receipts")

    candidates = [
        PairCandidate("focus", pdf, page, ref("alpha", pdf, page), ref("beta", pdf, page)) for pdf, page in sorted(data.page_keys())
    ]
    rng = random.Random(0)
    picks = {(c.pdf_slug, c.page) for c in (next_pair(candidates, [], rng, pages=forms) for _ in range(40)) if c is not None}
    assert picks and picks <= forms
    assert next_pair(candidates, [], rng, pages=set()) is None


def test_one_folder_job_is_ranked_once(tmp_path: Path) -> None:
    from tracr.testing.output_tree import ModelProfile, TreeSpec, generate_tree

    spec = TreeSpec(job_id="flat", models=(ModelProfile("a"), ModelProfile("b")), pdfs=3, pages_per_pdf=2, chars_per_page=200)
    generate_tree(tmp_path, spec)
    data = load_job_data(tmp_path, "flat")
    assert data.collections.names == ["pdfs"]
    assert [b.name for b in collection_boards(data, rounds=20)] == [ALL]
    spread = TreeSpec(job_id="spread", models=spec.models, pdfs=4, pages_per_pdf=2, chars_per_page=200, folders=2)
    generate_tree(tmp_path, spread)
    boards = collection_boards(load_job_data(tmp_path, "spread"), rounds=20)
    assert [(b.name, b.pages) for b in boards] == [(ALL, 8), ("kind-0", 4), ("kind-1", 4)]
