"""Plain-text leaderboards per collection (``tracr report JOB`` without a file)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tracr.config.collections import ALL
from tracr.outputs.report import format_table
from tracr.reporting.job_data import JobData
from tracr.reporting.rankings import CollectionBoard, unresolved_collections, winner_flips
from tracr.review.jury import agreement_with_others

__all__ = ["board_tables", "collections_text"]


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def board_tables(board: CollectionBoard) -> list[tuple[str, list[dict[str, Any]]]]:
    """``(title, rows)`` of each ranking a board has, in the order they are shown."""
    tables: list[tuple[str, list[dict[str, Any]]]] = []
    judge_title = "judge votes" if len(board.judges) < 2 else f"judge votes: jury of {len(board.judges)}, interval over judges and votes"
    for title, ratings, votes in (("human votes", board.human, board.human_votes), (judge_title, board.judge, board.judge_votes)):
        if ratings:
            rows = [
                {
                    "model": r.model,
                    "rating [95% CI]": f"{r.rating:.0f} [{r.ci_low:.0f}–{r.ci_high:.0f}]",
                    "W/L/T": f"{r.wins}/{r.losses}/{r.ties}",
                    "votes": r.votes,
                }
                for r in ratings
            ]
            tables.append((f"{title} (Bradley-Terry, {votes} votes)", rows))
    if board.judge_pairs:
        others = agreement_with_others(board.judge_pairs)
        rows = []
        for judge in board.judges:
            agreeing: dict[str, Any] = {"judge": judge}
            for other in board.judges:
                if other != judge:
                    pair = next((p for p in board.judge_pairs if {p.a, p.b} == {judge, other}), None)
                    agreeing[f"vs {other}"] = "-" if pair is None or pair.rate is None else f"{100 * pair.rate:.0f}% of {pair.pairs}"
            agreeing["vs other judges"] = "-" if others[judge].rate is None else f"{100 * (others[judge].rate or 0):.0f}%"
            people = board.judge_people.get(judge)
            agreeing["vs people"] = "-" if people is None or people.rate is None else f"{100 * people.rate:.0f}% of {people.pairs}"
            rows.append(agreeing)
        rows = [{k: r.get(k, "-") for k in dict.fromkeys(k for r in rows for k in r)} for r in rows]
        tables.append(("judge agreement (same winner on the pairs both judged)", rows))
    if board.tests:
        rows = [
            {"model": r.model, "tests passed [95% CI]": f"{_pct(r.estimate)} [{_pct(r.low)}–{_pct(r.high)}]", "tests": r.n}
            for r in board.tests
        ]
        tables.append((f"olmOCR-Bench tests ({board.n_tests} tests)", rows))
    if board.reference:
        rows = [
            {"model": r.model, "text similarity (1 - char NED) [95% CI]": f"{r.estimate:.3f} [{r.low:.3f}–{r.high:.3f}]", "pages": r.n}
            for r in board.reference
        ]
        tables.append(("reference pages", rows))
    if board.health:
        rows = []
        for r in board.health:
            row: dict[str, Any] = {
                "model": r.model,
                "failed or unhealthy [95% CI]": f"{_pct(r.estimate)} [{_pct(r.low)}–{_pct(r.high)}]",
                "pages": r.n,
            }
            speed, speed_ci = board.seconds_per_page.get(r.model), board.seconds_interval.get(r.model)
            row["s/page [95% CI]"] = f"{speed:.2f} [{speed_ci[0]:.2f}–{speed_ci[1]:.2f}]" if speed is not None and speed_ci else "-"
            cost, cost_ci = board.cost_per_1000.get(r.model), board.cost_interval.get(r.model)
            row["cost/1k pages [95% CI]"] = f"{cost:.2f} [{cost_ci[0]:.2f}–{cost_ci[1]:.2f}]" if cost is not None and cost_ci else "-"
            rows.append(row)
        tables.append(("page health, speed and cost", rows))
    return tables


def collections_text(data: JobData, boards: Sequence[CollectionBoard]) -> str:
    """Every board as tables, then the winner flips and the collections still unsettled."""
    lines = [f"job {data.job_id}: {len(data.page_keys())} page(s), collections from {data.collections.source}"]
    for board in boards:
        name = "whole job" if board.name == ALL else f"collection {board.name}"
        lines += ["", f"== {name}: {board.pages} page(s)"]
        tables = board_tables(board)
        if not tables:
            lines.append("(nothing to rank yet)")
        for title, rows in tables:
            lines += [f"{title}:", format_table(rows)]
    flips = winner_flips(boards)
    lines += ["", "winners by collection:"]
    lines += [f"  - {s}" for s in flips] or ["  - the same model leads every collection (or too little to say)"]
    unsettled = unresolved_collections(boards)
    if unsettled and (data.human_votes or data.judge_votes):
        lines.append(f"unsettled by votes (vote or judge there next): {', '.join(unsettled)}")
    return "\n".join(lines)
