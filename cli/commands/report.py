"""``tracr report``: a job's rankings per collection, and the report to share (docs/collections.md, docs/report.md).

Reads the output tree only (votes, scores, journals): no Prefect, no index, so it
starts at once and works on a copy of the outputs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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
    report.add_argument("--html", metavar="FILE", help="write one self-contained HTML report (no request to any server when opened)")
    report.add_argument("--markdown", metavar="FILE", help="write the report as Markdown, page images in <FILE stem>_files/ beside it")
    report.add_argument("--pages", type=int, default=4, help="pages where the models disagree most to show side by side (default: 4)")
    report.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from tracr.reporting.content import build_content
    from tracr.reporting.files import write_html_report, write_markdown_report
    from tracr.reporting.job_data import load_job_data
    from tracr.reporting.text import collections_text

    if args.rounds < 0 or args.pages < 0:
        print("tracr report: --rounds and --pages must be 0 or more", file=sys.stderr)
        return 2
    root = outputs_root(args.outputs)
    try:
        data = load_job_data(root, args.job_id)
        for option, value in (("--html", args.html), ("--markdown", args.markdown)):
            if value and not Path(value).resolve().parent.is_dir():
                print(f"tracr report: {option} {value}: folder {Path(value).resolve().parent} does not exist", file=sys.stderr)
                return 2
        content = build_content(root, data, rounds=args.rounds, seed=args.seed, pages=args.pages if (args.html or args.markdown) else 0)
    except TracrError as exc:
        print(f"tracr report: {exc.one_line()}", file=sys.stderr)
        return 2
    print(collections_text(data, content.boards))
    try:
        if args.html:
            print(f"\nHTML report: {write_html_report(Path(args.html), content)}")
        if args.markdown:
            print(f"Markdown report: {write_markdown_report(Path(args.markdown), content)}")
    except OSError as exc:
        print(f"tracr report: cannot write the report: {exc.strerror or exc} ({exc.filename or ''})", file=sys.stderr)
        return 2
    return 0
