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
    judge.add_argument("--model", required=True, help="the judge model name")
    judge.add_argument("--base-url", required=True, help="OpenAI-compatible endpoint, e.g. https://api.openai.com/v1")
    judge.add_argument("--api-key-env", help="environment variable holding the API key (never stored)")
    judge.add_argument("--budget", type=int, default=200, help="most judge calls (each pair costs two: both orders)")
    judge.add_argument("--input-price", type=float, default=0.0, help="price per million input tokens")
    judge.add_argument("--output-price", type=float, default=0.0, help="price per million output tokens")
    judge.add_argument("--seed", type=int, default=0)
    judge.add_argument(
        "--no-early-stop", action="store_true", help="judge every pair until the budget is spent, even once the ranking is settled"
    )
    judge.add_argument("--outputs", help="outputs root (default: $TRACR_OUTPUTS or ./outputs)")
    judge.set_defaults(handler=_judge)


def _judge(args: argparse.Namespace) -> int:
    from tasks.scoring.judge import JudgeSettings, judge_job

    key = os.environ.get(args.api_key_env or "", "") if args.api_key_env else "none"
    if not key:
        print(f"tracr judge: environment variable {args.api_key_env} is not set (export the judge's API key there)", file=sys.stderr)
        return 2
    settings = JudgeSettings(
        model=args.model,
        base_url=args.base_url,
        api_key=key,
        budget=args.budget,
        input_per_million=args.input_price,
        output_per_million=args.output_price,
        seed=args.seed,
        early_stop=not args.no_early_stop,
    )
    try:
        record = asyncio.run(judge_job(outputs_root(args.outputs), args.job_id, settings))
    except TracrError as exc:
        print(f"tracr judge: {exc.one_line()}", file=sys.stderr)
        return 2
    print(
        f"judge {args.model}: {record['pairs_judged']} pair(s) judged with {record['calls']} call(s) "
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
