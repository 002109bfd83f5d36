"""An LLM judge over a job's pages: OpenAI-compatible vision model, both orders, votes, early stop, cost.

The call path is the OCR models' own (:class:`tasks.ocr.request.OcrClient` over
``openai.AsyncOpenAI``, retries included); the key comes from an environment variable
named on the command line and is never written anywhere. Each pair of outputs of a page
is judged with :func:`tracr.scoring.judge.judge_pair` (both orders, a win only when both
agree, identical outputs tie without a call); the verdict is appended to the job's
``elo/votes.jsonl`` with the voter ``judge:<model>`` (:mod:`tracr.review.votes`), so the
same Bradley–Terry code rates it. After each round over the model pairs still in doubt,
:func:`tracr.scoring.judge.should_stop` decides: stop when neighbouring intervals no
longer overlap or the call budget is spent. ``scores/judge.json`` records calls, tokens,
cost and why judging stopped.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from tasks.ocr.request import OcrClient
from tasks.scoring.score import load_markdown, plan_scoring
from tracr.config.scoring import ScoreRequest
from tracr.documents.pdf import render_page_data_url
from tracr.errors import ErrorClass, TracrError
from tracr.outputs.files import read_json, write_json_atomic
from tracr.outputs.layout import OutputLayout
from tracr.outputs.timestamps import utc_now
from tracr.review.judged import judge_voter, pair_key
from tracr.review.ratings import leaderboard
from tracr.review.votes import PageRef, Vote, append_vote, new_vote, read_votes
from tracr.run.retry import RetryPolicy
from tracr.scoring.judge import JudgeVerdictError, judge_pair, same_output, should_stop

__all__ = ["JudgeSettings", "JudgeError", "judge_job", "judge_once", "judge_client", "new_totals", "job_pages"]


class JudgeError(TracrError):
    default_class = ErrorClass.INPUT


@dataclass(frozen=True)
class JudgeSettings:
    model: str
    base_url: str
    api_key: str = field(repr=False)  # read from the environment by the caller; never stored
    budget: int = 200  # calls
    input_per_million: float = 0.0
    output_per_million: float = 0.0
    max_tokens: int = 512
    timeout_s: float = 120.0
    min_votes_per_pair: int = 2  # judged pairs per model pair before the first stopping check
    early_stop: bool = True  # False: judge every pair until the budget is spent (a baseline to compare against)
    bootstrap_rounds: int = 200
    seed: int = 0
    longest_side_px: int = 1288
    collection: str | None = None  # judge only this collection's pages (docs/collections.md)
    pages: frozenset[tuple[str, int]] | None = None  # that collection's (pdf_slug, page)


@dataclass
class _Job:
    pages: dict[tuple[str, int], dict[str, tuple[int, str]]]  # (pdf, page) -> model -> (run, markdown)
    sources: dict[str, str]  # pdf slug -> source PDF


def job_pages(outputs: Path, job_id: str) -> _Job:
    plan = plan_scoring(ScoreRequest(job_id=job_id, outputs=str(outputs)))
    pages: dict[tuple[str, int], dict[str, tuple[int, str]]] = {}
    for m in load_markdown(plan):
        run = m.runs[-1]
        for (r, pdf_slug, page), out in m.pages.items():
            if r == run and out.markdown is not None:
                pages.setdefault((pdf_slug, page), {})[m.model_slug] = (run, out.markdown)
    return _Job(pages, {p.pdf_slug: p.path for p in plan.pdfs})


def pair_of(job_id: str, job: _Job, a: str, b: str, key: tuple[str, int]) -> object:
    """The :func:`tracr.review.judged.pair_key` of judging models ``a`` and ``b`` on page ``key``."""
    refs = [PageRef(model_slug=m, run=job.pages[key][m][0], pdf_slug=key[0], page=key[1]) for m in (a, b)]
    return pair_key(Vote(job_id=job_id, left=refs[0], right=refs[1], outcome="tie", voter="x"))


def _intervals(votes: list[Vote], rounds: int, seed: int) -> dict[str, tuple[float, float]]:
    return {r.model: (r.ci_low, r.ci_high) for r in leaderboard(votes, rounds=rounds, seed=seed)}


def new_totals() -> dict[str, int]:
    """A judge's running counts, as ``judge.json`` records them."""
    return {"calls": 0, "input_tokens": 0, "output_tokens": 0, "ties_without_call": 0, "pairs_judged": 0, "unparsable": 0}


def judge_client(settings: JudgeSettings) -> OcrClient:
    """The judge's client: the OCR models' call path, retries included."""
    return OcrClient(
        base_url=settings.base_url,
        api_key=settings.api_key,
        model=settings.model,
        max_concurrent_requests=4,
        timeout_s=settings.timeout_s,
        policy=RetryPolicy(retries=2),
    )


async def judge_once(
    outputs: Path,
    job_id: str,
    job: _Job,
    a: str,
    b: str,
    key: tuple[str, int],
    client: OcrClient,
    settings: JudgeSettings,
    voter: str,
    totals: dict[str, int],
) -> Vote | None:
    """Judge models ``a`` and ``b`` on page ``key`` (both orders), append the vote; None when the verdict was unreadable."""
    loop = asyncio.get_running_loop()
    (run_a, text_a), (run_b, text_b) = job.pages[key][a], job.pages[key][b]
    image = await asyncio.to_thread(render_page_data_url, job.sources[key[0]], key[1], settings.longest_side_px)

    def ask(prompt: str) -> str:
        result = asyncio.run_coroutine_threadsafe(
            client.ocr(image, prompt=prompt, max_tokens=settings.max_tokens, temperature=0.0), loop
        ).result()
        totals["calls"] += 1
        totals["input_tokens"] += result.input_tokens or 0
        totals["output_tokens"] += result.output_tokens or 0
        if result.text is None:
            raise JudgeError(f"judge {settings.model}: {result.error}", error_class=result.error_class)
        return result.text

    left, right = (
        PageRef(model_slug=a, run=run_a, pdf_slug=key[0], page=key[1]),
        PageRef(model_slug=b, run=run_b, pdf_slug=key[0], page=key[1]),
    )
    try:
        decision = await asyncio.to_thread(judge_pair, text_a, text_b, ask)
    except JudgeVerdictError:
        totals["unparsable"] += 1
        return None
    if not decision.verdicts:
        totals["ties_without_call"] += 1
    outcome = {"A": "left", "B": "right", "tie": "tie"}[decision.winner]
    vote = new_vote(job_id, left, right, outcome, voter)  # type: ignore[arg-type]
    append_vote(outputs, vote)
    totals["pairs_judged"] += 1
    return vote


async def judge_job(outputs: Path, job_id: str, settings: JudgeSettings) -> dict[str, Any]:
    """Judge pairs of the job's latest runs until the ranking is settled or the budget is spent; returns ``judge.json``."""
    layout = OutputLayout(outputs)
    job = job_pages(outputs, job_id)
    if settings.pages is not None:  # one collection: its pages, and only its votes decide when to stop
        job.pages = {key: outs for key, outs in job.pages.items() if key in settings.pages}
    models = sorted({m for outs in job.pages.values() for m in outs})
    if len(models) < 2:
        raise JudgeError(f"job {job_id} has fewer than two models with finished pages: nothing to judge")
    voter = judge_voter(settings.model)
    earlier = [
        v
        for v in read_votes(outputs, job_id)
        if v.voter == voter and (settings.pages is None or (v.left.pdf_slug, v.left.page) in settings.pages)
    ]
    done = {pair_key(v) for v in earlier}
    rng = random.Random(settings.seed)
    # Per model pair, the pages both did, in a random order: what is left to judge.
    queues: dict[tuple[str, str], list[tuple[str, int]]] = {}
    exhaustive_calls = 0
    for a, b in combinations(models, 2):
        keys = [k for k in sorted(job.pages) if a in job.pages[k] and b in job.pages[k]]
        rng.shuffle(keys)
        queues[(a, b)] = keys
        exhaustive_calls += sum(2 for k in keys if not same_output(job.pages[k][a][1], job.pages[k][b][1]))
    client = judge_client(settings)
    totals = new_totals()
    votes = list(earlier)
    decision = None
    exhausted = False

    async def judge_one(a: str, b: str, key: tuple[str, int]) -> None:
        vote = await judge_once(outputs, job_id, job, a, b, key, client, settings, voter, totals)
        if vote is not None:
            votes.append(vote)

    try:
        wanted = list(queues)
        while True:
            progressed = False
            for a, b in wanted:
                queue = queues[(a, b)]
                while queue and totals["calls"] < settings.budget:
                    key = queue.pop()
                    if pair_of(job_id, job, a, b, key) in done:
                        continue
                    await judge_one(a, b, key)
                    progressed = True
                    break
            per_pair = min((sum(1 for v in votes if {v.left.model_slug, v.right.model_slug} == {a, b}) for a, b in queues), default=0)
            budget_spent = totals["calls"] >= settings.budget
            if settings.early_stop and (per_pair >= settings.min_votes_per_pair or not progressed or budget_spent):
                decision = should_stop(_intervals(votes, settings.bootstrap_rounds, settings.seed), totals["calls"], settings.budget)
                if decision.stop:
                    break
                if decision.overlapping:
                    wanted = [tuple(sorted(p)) for p in decision.overlapping if tuple(sorted(p)) in queues]  # type: ignore[misc]
            elif budget_spent:
                decision = should_stop({}, totals["calls"], settings.budget)
                break
            if not progressed and not any(queues[p] for p in wanted):
                exhausted = True  # every pair still in doubt has been judged
                break
    finally:
        await client.aclose()
    cost = (totals["input_tokens"] * settings.input_per_million + totals["output_tokens"] * settings.output_per_million) / 1e6
    record: dict[str, Any] = {
        "job_id": job_id,
        "judge": {"model": settings.model, "base_url": settings.base_url, "voter": voter},
        "collection": settings.collection,
        "budget": settings.budget,
        **totals,
        "exhaustive_calls": exhaustive_calls,
        "calls_saved": max(0, exhaustive_calls - totals["calls"]),
        "early_stop": settings.early_stop,
        "stopped": "nothing left to judge" if exhausted or decision is None else decision.reason,
        "overlapping": [list(p) for p in decision.overlapping] if decision is not None else [],
        "cost": round(cost, 6),
        "prices": {"input_per_million": settings.input_per_million, "output_per_million": settings.output_per_million},
        "finished_at": utc_now(),
    }
    previous = read_json(layout.scores_judge(job_id))
    record["earlier"] = {k: previous.get(k) for k in ("calls", "cost", "finished_at", "stopped")} if previous is not None else None
    layout.scores_dir(job_id).mkdir(parents=True, exist_ok=True)
    write_json_atomic(layout.scores_judge(job_id), record)
    return record
