"""``tracr score``: score a job's outputs (page health, olmOCR-Bench tests, reference pages); docs/scoring.md.

Ground truth is checked before Prefect starts, so bad input is one line naming the
file and line, never a traceback; then the ``score-job`` flow does the work.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from tracr.config.scoring import score_request
from tracr.errors import TracrError
from tracr.outputs.layout import OutputLayout, default_outputs_root
from tracr.outputs.report import format_table
from tracr.scoring.report import score_rows, scores_text

__all__ = ["register"]


def _outputs(value: str | None) -> Path:
    return Path(value).resolve() if value else default_outputs_root().resolve()


def _score(args: argparse.Namespace) -> int:
    from tasks.scoring import plan_scoring

    outputs = _outputs(args.outputs)
    try:
        request = score_request(outputs, args.job_id, tests=args.tests, references=args.references, strict_present=args.strict_present or None)
        plan_scoring(request)  # bad ground truth fails here, before Prefect starts
    except TracrError as exc:
        print(f"tracr score: {exc.one_line()}", file=sys.stderr)
        return 2
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows.score_job import score_job_flow

    state = asyncio.run(score_job_flow(request, return_state=True))
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


def register(sub: Any) -> None:
    """Add ``score`` (and the other scoring commands) to the ``tracr`` parser."""
    score = sub.add_parser("score", help="score a job: page health, olmOCR-Bench tests, reference pages (docs/scoring.md)")
    score.add_argument("job_id")
    score.add_argument("--tests", help="olmOCR-Bench tests: a JSONL file, or a folder of them (default: the job config's references.tests)")
    score.add_argument("--references", help="reference pages <pdf_slug>/<page>.md (default: the job config's references.markdown)")
    score.add_argument("--outputs", help="outputs root (default: $TRACR_OUTPUTS or ./outputs)")
    score.add_argument(
        "--strict-present", action="store_true", help="a near-empty output cannot pass a present test (fixes olmOCR-Bench issue 461)"
    )
    score.set_defaults(handler=_score)
