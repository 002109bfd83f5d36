"""A jury of judges: per-judge votes, agreement between judges and with people, a ranking whose interval carries disagreement."""

from __future__ import annotations

import random
from pathlib import Path

from tracr.review.jury import agreement_with_others, by_judge, human_agreement, judge_agreement, jury_leaderboard
from tracr.review.votes import PageRef, Vote


def _votes(judge: str, better: str, worse: str, pages: int, flip: float = 0.0, seed: int = 0) -> list[Vote]:
    rng = random.Random(seed)
    out = []
    for page in range(1, pages + 1):
        left, right = (better, worse) if page % 2 else (worse, better)
        winner_is_better = rng.random() >= flip
        outcome = "left" if (left == better) == winner_is_better else "right"
        out.append(
            Vote(
                job_id="j",
                left=PageRef(model_slug=left, run=1, pdf_slug="doc", page=page),
                right=PageRef(model_slug=right, run=1, pdf_slug="doc", page=page),
                outcome=outcome,  # type: ignore[arg-type]
                voter=judge,
                created_at=f"2026-11-21T09:{page // 60:02d}:{page % 60:02d}Z",
            )
        )
    return out


def test_agreement_shows_the_biased_judge() -> None:
    votes = _votes("judge:a", "alpha", "beta", 30) + _votes("judge:b", "alpha", "beta", 30) + _votes("judge:biased", "beta", "alpha", 30)
    assert list(by_judge(votes)) == ["judge:a", "judge:b", "judge:biased"]
    pairs = {(p.a, p.b): p for p in judge_agreement(votes)}
    assert pairs[("judge:a", "judge:b")].rate == 1.0 and pairs[("judge:a", "judge:b")].pairs == 30
    assert pairs[("judge:a", "judge:biased")].rate == 0.0 and pairs[("judge:b", "judge:biased")].rate == 0.0
    others = agreement_with_others(judge_agreement(votes))
    assert others["judge:a"].rate == 0.5 and others["judge:biased"].rate == 0.0  # the odd one out


def test_human_agreement_per_judge() -> None:
    humans = [v.model_copy(update={"voter": "ann", "vote_id": f"h{k}"}) for k, v in enumerate(_votes("x", "alpha", "beta", 10))]
    votes = humans + _votes("judge:a", "alpha", "beta", 10) + _votes("judge:biased", "beta", "alpha", 10)
    found = human_agreement(votes)
    assert found["judge:a"].rate == 1.0 and found["judge:a"].pairs == 10 and found["judge:biased"].rate == 0.0
    assert human_agreement(_votes("judge:a", "alpha", "beta", 4)) == {}


def test_jury_interval_widens_with_disagreement() -> None:
    agreeing = _votes("judge:a", "alpha", "beta", 40, 0.2, 1) + _votes("judge:b", "alpha", "beta", 40, 0.2, 2)
    agreeing += _votes("judge:c", "alpha", "beta", 40, 0.2, 3)
    split = _votes("judge:a", "alpha", "beta", 40, 0.2, 1) + _votes("judge:b", "alpha", "beta", 40, 0.2, 2)
    split += _votes("judge:biased", "beta", "alpha", 40, 0.2, 3)
    calm = {r.model: r for r in jury_leaderboard(agreeing, rounds=400)}
    torn = {r.model: r for r in jury_leaderboard(split, rounds=400)}
    assert calm["alpha"].rating > calm["beta"].rating and torn["alpha"].rating > torn["beta"].rating
    assert calm["alpha"].ci_low > calm["beta"].ci_high  # three agreeing judges: settled
    width = lambda r: r.ci_high - r.ci_low  # noqa: E731
    assert width(torn["alpha"]) > 2 * width(calm["alpha"])  # one judge against the others: much less sure
    assert torn["alpha"].ci_low <= torn["beta"].ci_high  # and no longer settled
    assert calm["alpha"].votes == 120


# --- end to end: three stub judges (one local without a key, two "hosted"), one of them biased ---------------

PAGES = 8


def _judged_job(root: Path, inputs: Path, humans: int = 4) -> None:
    from tasks.scoring.importing import ensure_job, write_run
    from tests.conftest import make_pdf
    from tracr.outputs.layout import OutputLayout
    from tracr.review.votes import append_vote

    layout = OutputLayout(root)
    pdf = make_pdf(inputs / "doc.pdf", PAGES)
    ensure_job(layout, "judged", [pdf], page_counts={pdf: PAGES})
    write_run(layout, "judged", "sharp", {("doc", p): f"FAITHFUL page {p} text" for p in range(1, PAGES + 1)})
    write_run(layout, "judged", "blurry", {("doc", p): f"page {p} txet" for p in range(1, PAGES + 1)})
    for page in range(1, humans + 1):  # people prefer sharp
        left = PageRef(model_slug="sharp", run=1, pdf_slug="doc", page=page)
        right = PageRef(model_slug="blurry", run=1, pdf_slug="doc", page=page)
        append_vote(root, Vote(job_id="judged", left=left, right=right, outcome="left", voter="ann"))


def _jury_args(root: Path, judges: list[tuple[str, int, str | None]], *extra: str) -> list[str]:
    args = ["judge", "judged", "--outputs", str(root)]
    for model, port, env in judges:
        args += ["--judge", model, f"http://127.0.0.1:{port}/v1", *([env] if env else [])]
    return [*args, *extra]


def test_jury_of_three_with_one_biased_judge(tmp_path, stub_server, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from cli.main import main
    from tests.conftest import TEST_API_KEY
    from tracr.review.votes import read_votes

    monkeypatch.setenv("TRACR_JUDGE_KEY", TEST_API_KEY)
    local = stub_server(model="judge-local", api_key=None, judge={"prefer": "FAITHFUL"})
    hosted = stub_server(model="judge-hosted", judge={"prefer": "FAITHFUL"})
    biased = stub_server(model="judge-biased", judge={"prefer": "txet"})
    _judged_job(tmp_path, tmp_path / "in")
    judges = [
        ("judge-local", local.port, None),
        ("judge-hosted", hosted.port, "TRACR_JUDGE_KEY"),
        ("judge-biased", biased.port, "TRACR_JUDGE_KEY"),
    ]
    assert main(_jury_args(tmp_path, judges, "--budget", "96", "--no-early-stop")) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    record = json.loads((tmp_path / "judged" / "scores" / "jury.json").read_text())
    votes = read_votes(tmp_path, "judged")
    per_voter = {
        voter: [v for v in votes if v.voter == voter] for voter in ("judge:judge-local", "judge:judge-hosted", "judge:judge-biased")
    }
    assert all(len(vs) == PAGES for vs in per_voter.values())  # every judge, every pair, under its own name
    assert all((v.outcome == "left") == (v.left.model_slug == "sharp") for v in per_voter["judge:judge-hosted"])
    assert all((v.outcome == "left") == (v.left.model_slug == "blurry") for v in per_voter["judge:judge-biased"])
    assert record["calls"] == 3 * 2 * PAGES  # both orders, every judge
    rates = {(a["a"], a["b"]): a["rate"] for a in record["agreement"]}
    assert rates[("judge:judge-hosted", "judge:judge-local")] == 1.0
    assert rates[("judge:judge-biased", "judge:judge-hosted")] == 0.0 and rates[("judge:judge-biased", "judge:judge-local")] == 0.0
    judges_by = {j["voter"]: j for j in record["judges"]}
    assert (
        judges_by["judge:judge-biased"]["agreement_with_others"] == 0.0 and judges_by["judge:judge-local"]["agreement_with_others"] == 0.5
    )
    assert (
        judges_by["judge:judge-biased"]["agreement_with_people"] == 0.0 and judges_by["judge:judge-hosted"]["agreement_with_people"] == 1.0
    )
    assert judges_by["judge:judge-hosted"]["pairs_with_people"] == 4
    jury = {r["model"]: r for r in record["jury"]}
    assert jury["sharp"]["rating"] > jury["blurry"]["rating"]
    assert jury["sharp"]["ci_low"] <= jury["blurry"]["ci_high"]  # one judge in three disagrees: not settled
    assert "judge:judge-biased" in out and "agrees with other judges" in out and "jury ranking" in out
    for path in tmp_path.rglob("*"):  # the key is read from the environment and written nowhere
        assert not path.is_file() or TEST_API_KEY.encode() not in path.read_bytes()

    assert main(["report", "judged", "--outputs", str(tmp_path), "--rounds", "200"]) == 0
    report = capsys.readouterr().out
    assert "judge votes: jury of 3" in report and "judge agreement (same winner on the pairs both judged)" in report
    line = next(row for row in report.splitlines() if row.startswith("judge:judge-biased"))
    assert "0% of 8" in line and "0% of 4" in line  # against each judge, and against the 4 human votes


def test_jury_stops_early_as_a_whole(tmp_path, stub_server, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from cli.main import main

    a = stub_server(model="judge-a", api_key=None, judge={"prefer": "FAITHFUL"})
    b = stub_server(model="judge-b", api_key=None, judge={"prefer": "FAITHFUL"})
    c = stub_server(model="judge-c", api_key=None, judge={"prefer": "FAITHFUL"})
    _judged_job(tmp_path, tmp_path / "in", humans=0)
    judges = [("judge-a", a.port, None), ("judge-b", b.port, None), ("judge-c", c.port, None)]
    assert main(_jury_args(tmp_path, judges, "--budget", "96")) == 0, capsys.readouterr().err
    record = json.loads((tmp_path / "judged" / "scores" / "jury.json").read_text())
    assert record["stopped"] == "neighbouring intervals no longer overlap"
    assert record["calls"] < record["exhaustive_calls"] == 3 * 2 * PAGES and record["calls_saved"] > 0
    assert {j["votes"] for j in record["judges"]} == {record["judges"][0]["votes"]}  # the jury judges the same pairs


def test_jury_refuses_a_judge_named_twice_and_a_bad_judge_spec(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from cli.main import main

    _judged_job(tmp_path, tmp_path / "in", humans=0)
    assert main(_jury_args(tmp_path, [("same", 1, None), ("same", 2, None)])) == 2
    assert (
        capsys.readouterr().err.strip()
        == "tracr judge: a jury needs distinct judge models (each judge's votes are kept under its own name)"
    )
    assert main(["judge", "judged", "--outputs", str(tmp_path), "--judge", "only-a-model"]) == 2
    assert "--judge only-a-model: give MODEL BASE_URL" in capsys.readouterr().err
    assert main(["judge", "judged", "--outputs", str(tmp_path)]) == 2
    assert "name a judge" in capsys.readouterr().err


def test_judge_targets_one_collection(tmp_path, stub_server, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from cli.main import main
    from tracr.review.votes import read_votes
    from tracr.testing.collections_job import write_two_collection_job

    write_two_collection_job(tmp_path / "out", tmp_path / "in", "kinds", votes_per_collection=0)
    judge = stub_server(model="judge-a", api_key=None, judge={"prefer": "Form"})
    args = ["judge", "kinds", "--outputs", str(tmp_path / "out"), "--model", "judge-a", "--base-url", f"http://127.0.0.1:{judge.port}/v1"]
    assert main([*args, "--collection", "forms", "--budget", "40"]) == 0, capsys.readouterr().err
    assert "judging collection forms: 6 page(s)" in capsys.readouterr().out
    votes = read_votes(tmp_path / "out", "kinds")
    assert votes and all(v.left.pdf_slug.startswith("form-") for v in votes)
    assert json.loads((tmp_path / "out" / "kinds" / "scores" / "judge.json").read_text())["collection"] == "forms"
    assert main([*args, "--collection", "receipts"]) == 2
    assert "has no collection 'receipts'" in capsys.readouterr().err
