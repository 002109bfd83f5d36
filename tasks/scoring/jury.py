"""A jury of LLM judges over a job's pages: every judge on every chosen pair, early stopping on the jury's ranking.

Each judge is an OpenAI-compatible vision model (local or hosted) with its own endpoint
and key variable; each judges every pair it is given in both orders
(:func:`tasks.scoring.judge.judge_once`) and its votes are recorded under its own voter
``judge:<model>``. Pairs are taken round by round from the model pairs still in doubt,
as for one judge; after each round the jury ranking (:func:`tracr.review.jury.jury_leaderboard`:
the judges' votes pooled, intervals from the judges-then-votes bootstrap, so they carry
the judges' disagreement) decides, with :func:`tracr.scoring.judge.should_stop`, whether
to stop. ``scores/jury.json`` records each judge's calls and cost, the agreement between
judges and with people, and why judging stopped.
"""

from __future__ import annotations

import random
from dataclasses import replace
from itertools import combinations
from pathlib import Path
from typing import Any

from tasks.scoring.judge import JudgeError, JudgeSettings, job_pages, judge_client, judge_once, new_totals, pair_of
from tracr.outputs.files import write_json_atomic
from tracr.outputs.layout import OutputLayout
from tracr.outputs.timestamps import utc_now
from tracr.review.judged import judge_voter, pair_key
from tracr.review.jury import agreement_with_others, human_agreement, judge_agreement, jury_leaderboard
from tracr.review.votes import Vote, read_votes
from tracr.scoring.judge import same_output, should_stop

__all__ = ["JURY_FILE", "judge_with_jury", "jury_settings"]

JURY_FILE = "jury.json"


def _on_pages(votes: list[Vote], pages: frozenset[tuple[str, int]] | None) -> list[Vote]:
    return [v for v in votes if pages is None or (v.left.pdf_slug, v.left.page) in pages]


async def judge_with_jury(
    outputs: Path,
    job_id: str,
    judges: list[JudgeSettings],
    *,
    budget: int = 600,
    early_stop: bool = True,
    min_votes_per_pair: int = 2,
    bootstrap_rounds: int = 200,
    seed: int = 0,
    collection: str | None = None,
    pages: frozenset[tuple[str, int]] | None = None,
) -> dict[str, Any]:
    """Judge with every judge until the jury's ranking is settled or ``budget`` calls (all judges together) are spent."""
    voters = [judge_voter(j.model) for j in judges]
    if len(set(voters)) != len(voters):
        raise JudgeError("a jury needs distinct judge models (each judge's votes are kept under its own name)")
    layout = OutputLayout(outputs)
    job = job_pages(outputs, job_id)
    if pages is not None:
        job.pages = {key: outs for key, outs in job.pages.items() if key in pages}
    models = sorted({m for outs in job.pages.values() for m in outs})
    if len(models) < 2:
        raise JudgeError(f"job {job_id} has fewer than two models with finished pages: nothing to judge")
    every = read_votes(outputs, job_id)
    votes = {voter: _on_pages([v for v in every if v.voter == voter], pages) for voter in voters}
    done = {voter: {pair_key(v) for v in vs} for voter, vs in votes.items()}
    rng = random.Random(seed)
    queues: dict[tuple[str, str], list[tuple[str, int]]] = {}
    exhaustive_calls = 0
    for a, b in combinations(models, 2):
        keys = [k for k in sorted(job.pages) if a in job.pages[k] and b in job.pages[k]]
        rng.shuffle(keys)
        queues[(a, b)] = keys
        exhaustive_calls += len(judges) * sum(2 for k in keys if not same_output(job.pages[k][a][1], job.pages[k][b][1]))
    clients = {voter: judge_client(settings) for voter, settings in zip(voters, judges, strict=True)}
    totals = {voter: new_totals() for voter in voters}

    def calls() -> int:
        return sum(t["calls"] for t in totals.values())

    def jury_votes() -> list[Vote]:
        return [v for vs in votes.values() for v in vs]

    decision = None
    exhausted = False
    try:
        wanted = list(queues)
        while True:
            progressed = False
            for a, b in wanted:
                queue = queues[(a, b)]
                while queue and calls() < budget:
                    key = queue.pop()
                    todo = [
                        (voter, s) for voter, s in zip(voters, judges, strict=True) if pair_of(job_id, job, a, b, key) not in done[voter]
                    ]
                    if not todo:
                        continue
                    for voter, settings in todo:
                        vote = await judge_once(outputs, job_id, job, a, b, key, clients[voter], settings, voter, totals[voter])
                        if vote is not None:
                            votes[voter].append(vote)
                    progressed = True
                    break
            pooled = jury_votes()
            per_pair = min((sum(1 for v in pooled if {v.left.model_slug, v.right.model_slug} == {a, b}) for a, b in queues), default=0)
            spent = calls() >= budget
            if early_stop and (per_pair >= min_votes_per_pair * len(judges) or not progressed or spent):
                board = jury_leaderboard(pooled, rounds=bootstrap_rounds, seed=seed)
                decision = should_stop({r.model: (r.ci_low, r.ci_high) for r in board}, calls(), budget)
                if decision.stop:
                    break
                if decision.overlapping:
                    wanted = [tuple(sorted(p)) for p in decision.overlapping if tuple(sorted(p)) in queues]  # type: ignore[misc]
            elif spent:
                decision = should_stop({}, calls(), budget)
                break
            if not progressed and not any(queues[p] for p in wanted):
                exhausted = True
                break
    finally:
        for client in clients.values():
            await client.aclose()
    pooled = jury_votes()
    pairs = judge_agreement(pooled)
    with_people = human_agreement([*_on_pages([v for v in every if not v.voter.startswith("judge:")], pages), *pooled])
    others = agreement_with_others(pairs)
    per_judge: list[dict[str, Any]] = []
    for voter, settings in zip(voters, judges, strict=True):
        t = totals[voter]
        cost = (t["input_tokens"] * settings.input_per_million + t["output_tokens"] * settings.output_per_million) / 1e6
        per_judge.append(
            {
                "voter": voter,
                "model": settings.model,
                "base_url": settings.base_url,
                **t,
                "votes": len(votes[voter]),
                "cost": round(cost, 6),
                "agreement_with_others": others[voter].rate if voter in others else None,
                "agreement_with_people": with_people[voter].rate if voter in with_people else None,
                "pairs_with_people": with_people[voter].pairs if voter in with_people else 0,
            }
        )
    record: dict[str, Any] = {
        "job_id": job_id,
        "collection": collection,
        "judges": per_judge,
        "agreement": [{"a": p.a, "b": p.b, "pairs": p.pairs, "agreed": p.agreed, "rate": p.rate} for p in pairs],
        "jury": [r.to_dict() for r in jury_leaderboard(pooled, rounds=bootstrap_rounds, seed=seed)],
        "budget": budget,
        "calls": calls(),
        "exhaustive_calls": exhaustive_calls,
        "calls_saved": max(0, exhaustive_calls - calls()),
        "early_stop": early_stop,
        "stopped": "nothing left to judge" if exhausted or decision is None else decision.reason,
        "overlapping": [list(p) for p in decision.overlapping] if decision is not None else [],
        "cost": round(sum(float(j["cost"]) for j in per_judge), 6),
        "finished_at": utc_now(),
    }
    layout.scores_dir(job_id).mkdir(parents=True, exist_ok=True)
    write_json_atomic(layout.scores_dir(job_id) / JURY_FILE, record)
    return record


def jury_settings(base: JudgeSettings, judges: list[tuple[str, str, str]]) -> list[JudgeSettings]:
    """One settings per ``(model, base_url, api_key)``, the rest (prices, sizes) from ``base``."""
    return [replace(base, model=model, base_url=url, api_key=key) for model, url, key in judges]
