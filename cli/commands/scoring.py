"""Scoring and judging: ``tracr score``, ``tracr judge`` and ``tracr import`` (outputs made elsewhere); docs/scoring.md.

``score`` checks ground truth before Prefect starts, so bad input is one line naming
the file and line, never a traceback; then the ``score-job`` flow does the work, on
the Prefect server ``tracr run`` uses and with its quiet console (``cli/running.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from cli.commands.common import Subparsers
from cli.running import announce_flow_run, connect_quietly, run_flow
from tracr.config.scoring import score_request
from tracr.errors import TracrError
from tracr.outputs.layout import OutputLayout, outputs_root
from tracr.outputs.report import format_table

__all__ = ["add_score_parser", "add_judge_parser", "add_import_parser"]


def add_score_parser(sub: Subparsers) -> None:
    score = sub.add_parser("score", help="score a job: page health, olmOCR-Bench tests, reference pages (docs/scoring.md)")
    score.add_argument("job_id")
    score.add_argument("--tests", help="olmOCR-Bench tests: a JSONL file, or a folder of them (default: the job config's references.tests)")
    score.add_argument("--references", help="reference pages <pdf_slug>/<page>.md (default: the job config's references.markdown)")
    score.add_argument("--outputs", help="outputs root (default: $TRACR_OUTPUTS or ./outputs)")
    score.add_argument(
        "--strict-present", action="store_true", help="a near-empty output cannot pass a present test (fixes olmOCR-Bench issue 461)"
    )
    score.add_argument(
        "--ephemeral",
        action="store_true",
        help="use a throwaway Prefect server for this scoring only, not the local one tracr keeps (default: off; no UI after it)",
    )
    score.add_argument("-v", "--verbose", action="store_true", help="show Prefect's info log lines too (default: warnings only)")
    score.set_defaults(handler=_score)


def _score(args: argparse.Namespace) -> int:
    from tasks.scoring.plan import plan_scoring  # no Prefect: it is imported once the server is chosen
    from tracr.scoring.report import score_rows, scores_text

    outputs = outputs_root(args.outputs)
    try:
        request = score_request(
            outputs, args.job_id, tests=args.tests, references=args.references, strict_present=args.strict_present or None
        )
        plan_scoring(request)  # bad ground truth fails here, before Prefect starts
    except TracrError as exc:
        print(f"tracr score: {exc.one_line()}", file=sys.stderr)
        return 2
    api_url = connect_quietly(ephemeral=args.ephemeral, verbose=args.verbose)
    from flows.score_job import score_job_flow

    flow = score_job_flow.with_options(on_running=[announce_flow_run(api_url, "scoring")])
    state = run_flow(flow(request, return_state=True), cancel_on_signal=False).state
    result: Any = state.result(raise_on_failure=False) if state.is_completed() or state.is_failed() else None
    if isinstance(result, TracrError):
        print(f"tracr score: {result.one_line()}", file=sys.stderr)
        return 2
    if not state.is_completed() or not isinstance(result, dict):
        print(f"tracr score: scoring failed: {state.message}", file=sys.stderr)
        return 1
    print(format_table(score_rows(result["summary"])))
    text = scores_text(OutputLayout(outputs), args.job_id)
    extra = text.split("\n\n", 1)[1] if "\n\n" in text else ""
    if extra:
        print("\n" + extra)
    print(f"\nscores: {Path(result['written']['summary']).parent}")
    return 0


def add_judge_parser(sub: Subparsers) -> None:
    judge = sub.add_parser("judge", help="let an OpenAI-compatible vision LLM judge pairs of outputs (votes as judge:<model>)")
    judge.add_argument("job_id")
    judge.add_argument("--model", help="the judge model name (or give --judge, once per judge of a jury)")
    judge.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. https://api.openai.com/v1")
    judge.add_argument("--api-key-env", help="environment variable holding the API key (never stored)")
    judge.add_argument(
        "--judge",
        nargs="+",
        action="append",
        metavar="MODEL BASE_URL [KEY_ENV]",
        help="a judge of a jury: its model, endpoint and (hosted) key variable; repeat for each judge (docs/scoring.md#a-jury-of-judges)",
    )
    judge.add_argument("--budget", type=int, default=200, help="most judge calls (each pair costs two: both orders)")
    judge.add_argument("--input-price", type=float, default=0.0, help="price per million input tokens")
    judge.add_argument("--output-price", type=float, default=0.0, help="price per million output tokens")
    judge.add_argument("--seed", type=int, default=0)
    judge.add_argument(
        "--no-early-stop", action="store_true", help="judge every pair until the budget is spent, even once the ranking is settled"
    )
    judge.add_argument(
        "--collection",
        help="judge only this collection's pages, or 'unsettled': the collection whose judge ranking is least settled (docs/collections.md)",
    )
    judge.add_argument("--outputs", help="outputs root (default: $TRACR_OUTPUTS or ./outputs)")
    judge.set_defaults(handler=_judge)


def _judges(args: argparse.Namespace) -> list[tuple[str, str, str]] | str:
    """``(model, base_url, key)`` of each judge named, or the one-line problem."""
    named: list[tuple[str, str, str | None]] = []
    if args.model or args.base_url:
        if not (args.model and args.base_url):
            return "give both --model and --base-url (or --judge MODEL BASE_URL [KEY_ENV])"
        named.append((args.model, args.base_url, args.api_key_env))
    for values in args.judge or []:
        if len(values) not in (2, 3):
            return f"--judge {' '.join(values)}: give MODEL BASE_URL and, for a hosted judge, KEY_ENV"
        named.append((values[0], values[1], values[2] if len(values) == 3 else None))
    if not named:
        return "name a judge: --model M --base-url URL, or --judge MODEL BASE_URL [KEY_ENV] (repeat for a jury)"
    found = []
    for model, url, env in named:
        key = os.environ.get(env, "") if env else "none"
        if not key:
            whose = "the judge's" if len(named) == 1 else f"judge {model}'s"
            return f"environment variable {env} is not set (export {whose} API key there)"
        found.append((model, url, key))
    return found


def _judge(args: argparse.Namespace) -> int:
    from tasks.scoring.judge import JudgeSettings, judge_job

    judges = _judges(args)
    if isinstance(judges, str):
        print(f"tracr judge: {judges}", file=sys.stderr)
        return 2
    model, base_url, key = judges[0]
    collection, pages = None, None
    if args.collection:
        from tracr.reporting.focus import focus_pages
        from tracr.reporting.job_data import load_job_data

        try:
            collection, found = focus_pages(load_job_data(outputs_root(args.outputs), args.job_id), args.collection, metric="judge votes")
        except TracrError as exc:
            print(f"tracr judge: {exc.one_line()}", file=sys.stderr)
            return 2
        pages = frozenset(found)
        print(f"judging collection {collection}: {len(pages)} page(s)")
    settings = JudgeSettings(
        model=model,
        base_url=base_url,
        api_key=key,
        budget=args.budget,
        input_per_million=args.input_price,
        output_per_million=args.output_price,
        seed=args.seed,
        early_stop=not args.no_early_stop,
        collection=collection,
        pages=pages,
    )
    if len(judges) > 1:
        return _jury(args, settings, judges, collection, pages)
    try:
        record = asyncio.run(judge_job(outputs_root(args.outputs), args.job_id, settings))
    except TracrError as exc:
        print(f"tracr judge: {exc.one_line()}", file=sys.stderr)
        return 2
    print(
        f"judge {model}: {record['pairs_judged']} pair(s) judged with {record['calls']} call(s) "
        f"({record['ties_without_call']} identical, no call); stopped: {record['stopped']}; "
        f"{record['calls_saved']} of {record['exhaustive_calls']} calls saved; cost {record['cost']:.4f}"
    )
    print(
        f"votes: {OutputLayout(outputs_root(args.outputs)).votes(args.job_id)} (voter {record['judge']['voter']}); record: scores/judge.json"
    )
    return 0


def add_import_parser(sub: Subparsers) -> None:
    imp = sub.add_parser(
        "import", help="add a run of outputs made elsewhere: <pdf_slug>/<page>.md or olmOCR-Bench <stem>_pg<p>_repeat<r>.md"
    )
    imp.add_argument("job_id")
    imp.add_argument("dir", help="folder of markdown outputs")
    imp.add_argument("--model", required=True, help="name of the model that made them (its folder is the slug)")
    imp.add_argument("--inputs", help="PDF folder: creates the job when it does not exist")
    imp.add_argument("--outputs", help="outputs root (default: $TRACR_OUTPUTS or ./outputs)")
    imp.set_defaults(handler=_import)


def _import(args: argparse.Namespace) -> int:
    from tasks.scoring.importing import import_outputs

    outputs = outputs_root(args.outputs)
    try:
        runs = import_outputs(
            outputs, args.job_id, args.model, Path(args.dir).resolve(), inputs=Path(args.inputs).resolve() if args.inputs else None
        )
    except TracrError as exc:
        print(f"tracr import: {exc.one_line()}", file=sys.stderr)
        return 2
    names = ", ".join(f"{loc.model_slug}/run-{loc.run}" for loc in runs)
    print(f"imported {len(runs)} run(s) into job {args.job_id}: {names} (marked imported: true)")
    print(f"next: `tracr index` to review them, `tracr score {args.job_id}` to score them")
    return 0


def _jury(
    args: argparse.Namespace,
    base: Any,
    judges: list[tuple[str, str, str]],
    collection: str | None,
    pages: frozenset[tuple[str, int]] | None,
) -> int:
    from tasks.scoring.jury import judge_with_jury, jury_settings

    try:
        record = asyncio.run(
            judge_with_jury(
                outputs_root(args.outputs),
                args.job_id,
                jury_settings(base, judges),
                budget=args.budget,
                early_stop=not args.no_early_stop,
                seed=args.seed,
                collection=collection,
                pages=pages,
            )
        )
    except TracrError as exc:
        print(f"tracr judge: {exc.one_line()}", file=sys.stderr)
        return 2
    print(
        f"jury of {len(judges)}: {record['calls']} call(s); stopped: {record['stopped']}; "
        f"{record['calls_saved']} of {record['exhaustive_calls']} calls saved; cost {record['cost']:.4f}"
    )

    def rate(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.0f}%"

    print(
        format_table(
            [
                {
                    "judge": j["voter"],
                    "votes": j["votes"],
                    "calls": j["calls"],
                    "agrees with other judges": rate(j["agreement_with_others"]),
                    "agrees with people": f"{rate(j['agreement_with_people'])} ({j['pairs_with_people']} pairs)",
                    "cost": f"{j['cost']:.4f}",
                }
                for j in record["judges"]
            ]
        )
    )
    print("\njury ranking (judges pooled; interval from resampling judges, then votes):")
    print(
        format_table(
            [
                {"model": r["model"], "rating [95% CI]": f"{r['rating']:.0f} [{r['ci_low']:.0f}–{r['ci_high']:.0f}]", "votes": r["votes"]}
                for r in record["jury"]
            ]
        )
    )
    print("record: scores/jury.json; each judge's votes under its own name in elo/")
    return 0
