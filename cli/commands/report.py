"""``tracr report``: a job's rankings per collection, and the report to share (docs/collections.md, docs/report.md).

Reads the output tree only (votes, scores, journals): no Prefect, no index, so it
starts at once and works on a copy of the outputs.
"""

from __future__ import annotations

import argparse
import sys

from cli.commands.common import OUTPUTS_HELP, Subparsers
from tracr.errors import TracrError
from tracr.outputs.layout import outputs_root

__all__ = ["add_report_parser"]


def add_report_parser(sub: Subparsers) -> None:
    report = sub.add_parser("report", help="rankings per collection (votes, judge, tests, health, cost, speed); --html/--markdown to share")
    report.add_argument("job_id")
    report.add_argument("--outputs", help=OUTPUTS_HELP)
    report.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds for the intervals (default: 1000)")
    report.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    report.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from tracr.reporting.job_data import load_job_data
    from tracr.reporting.rankings import collection_boards
    from tracr.reporting.text import collections_text

    if args.rounds < 0:
        print("tracr report: --rounds must be 0 or more", file=sys.stderr)
        return 2
    try:
        data = load_job_data(outputs_root(args.outputs), args.job_id)
    except TracrError as exc:
        print(f"tracr report: {exc.one_line()}", file=sys.stderr)
        return 2
    boards = collection_boards(data, rounds=args.rounds, seed=args.seed)
    print(collections_text(data, boards))
    return 0
