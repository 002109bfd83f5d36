"""Inspecting the output tree: ``tracr list``, ``show``, ``export`` and ``index``; none of them needs Prefect."""

from __future__ import annotations

import argparse
import sys

from cli.commands.common import OUTPUTS_HELP, Subparsers
from tracr.outputs.layout import OutputLayout, outputs_root
from tracr.outputs.report import job_exists, list_jobs_text, show_job_text

__all__ = ["add_list_parser", "add_show_parser", "add_export_parser", "add_index_parser"]


def add_list_parser(sub: Subparsers) -> None:
    listing = sub.add_parser("list", help="list jobs in the outputs root")
    listing.add_argument("--outputs", help=OUTPUTS_HELP)
    listing.set_defaults(handler=_list)


def _list(args: argparse.Namespace) -> int:
    print(list_jobs_text(OutputLayout(outputs_root(args.outputs))))
    return 0


def add_show_parser(sub: Subparsers) -> None:
    show = sub.add_parser("show", help="show a job's runs")
    show.add_argument("job_id", help="the job id to show")
    show.add_argument("--pdf", metavar="SLUG", help="one document's outcome in every run: status, pages, errors (default: the whole job)")
    show.add_argument("--outputs", help=OUTPUTS_HELP)
    show.set_defaults(handler=_show)


def _show_pdf(layout: OutputLayout, job_id: str, pdf_slug: str) -> int:
    from tracr.outputs.documents_report import document_rows
    from tracr.outputs.identifiers import InvalidIdentifier
    from tracr.outputs.report import format_table

    try:
        rows = document_rows(layout, job_id, pdf_slug)
    except InvalidIdentifier as exc:
        print(exc, file=sys.stderr)
        return 2
    if not rows:
        print(f"no document {pdf_slug!r} in any run of job {job_id} (PDF slugs are the folder names under each run)", file=sys.stderr)
        return 1
    print(f"job {job_id}, document {pdf_slug}\n\n{format_table(rows)}")
    return 0


def _show(args: argparse.Namespace) -> int:
    layout = OutputLayout(outputs_root(args.outputs))
    if args.pdf is not None and job_exists(layout, args.job_id):
        return _show_pdf(layout, args.job_id, args.pdf)
    text = show_job_text(layout, args.job_id)
    print(text)
    if not job_exists(layout, args.job_id):  # also covers an id that is no folder name
        return 1
    from tracr.outputs.cost_report import cost_text
    from tracr.scoring.report import scores_text  # health and pass rates, once `tracr score` ran

    if costs := cost_text(layout, args.job_id):
        print("\n" + costs)
    if scores := scores_text(layout, args.job_id):
        print("\n" + scores)
    if line := _collections_line(layout, args.job_id):
        print("\n" + line)
    return 0


def _collections_line(layout: OutputLayout, job_id: str) -> str:
    """The job's collections, when it has more than one, and where their rankings are (docs/collections.md)."""
    from tracr.reporting.job_data import load_collections

    try:
        collections = load_collections(layout.root, job_id)
    except Exception:  # metadata tracr cannot read: show says what it can
        return ""
    if len(collections.names) < 2:
        return ""
    pdfs: dict[str, set[str]] = {}
    for pdf, names in collections.by_pdf.items():
        for name in names:
            pdfs.setdefault(name, set()).add(pdf)
    for (pdf, _), names in collections.page_tags.items():  # a page tagged: its PDF is (partly) in the collection
        for name in names:
            pdfs.setdefault(name, set()).add(pdf)
    counts = {name: len(pdfs.get(name, ())) for name in collections.names}
    listed = ", ".join(f"{name} ({counts[name]} PDF{'s' if counts[name] != 1 else ''})" for name in collections.names)
    return f"collections (from {collections.source}): {listed}; `tracr report {job_id}` ranks each"


def add_export_parser(sub: Subparsers) -> None:
    export = sub.add_parser("export", help="write a job's per-page rows as CSV or Parquet")
    export.add_argument("job_id", help="the job id to export")
    export.add_argument("--format", choices=["csv", "parquet"], default="csv", help="file format (default: csv)")
    export.add_argument("--output", help="file to write (default: <job dir>/pages.<format>)")
    export.add_argument("--outputs", help=OUTPUTS_HELP)
    export.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    from tracr.outputs.export import ExportError, export_pages

    try:
        path, count = export_pages(OutputLayout(outputs_root(args.outputs)), args.job_id, args.format, args.output)
    except ExportError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"wrote {count} page row(s) to {path}")
    return 0


def add_index_parser(sub: Subparsers) -> None:
    index = sub.add_parser("index", help="build or refresh the DuckDB index of the outputs root (docs/index.md)")
    index.add_argument("--outputs", help=OUTPUTS_HELP)
    index.add_argument("--rebuild", action="store_true", help="re-read every run instead of only the changed ones (default: off)")
    index.set_defaults(handler=_index)


def _index(args: argparse.Namespace) -> int:
    from tracr.index.store import index_path, refresh_index

    outputs = outputs_root(args.outputs)
    try:
        stats = refresh_index(outputs, rebuild=args.rebuild)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. a read-only outputs root: the tree itself is untouched
        print(f"could not refresh the index: {exc}", file=sys.stderr)
        return 1
    print(f"{stats.summary()}\nindex: {index_path(outputs)}")
    return 0
