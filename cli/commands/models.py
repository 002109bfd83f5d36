"""The model registry and re-reading replies: ``tracr models`` and ``tracr reparse``; neither needs Prefect."""

from __future__ import annotations

import argparse
import json
import sys

from cli.commands.common import OUTPUTS_HELP, Subparsers

__all__ = ["add_models_parser", "add_reparse_parser"]


def add_models_parser(sub: Subparsers) -> None:
    models = sub.add_parser(
        "models",
        help="list the model registry: how each OCR model family is asked and read (docs/supported-models.md)",
        description="Each family's matching model ids, request, reply parser, dropped furniture, serve flags and sources. "
        "A config picks an entry by model id, or names one with `adapter: NAME` (`adapter: none` for the generic prompt).",
    )
    models.add_argument("name", nargs="?", help="one entry in full: prompt, settings and where each comes from")
    models.add_argument("--json", action="store_true", help="print the entries as JSON")
    models.set_defaults(handler=_models)


def _models(args: argparse.Namespace) -> int:
    from tracr.adapters.listing import adapter_detail_text, registry_table_text
    from tracr.adapters.registry import ADAPTERS, GENERIC, adapter_by_name

    if args.name:
        try:
            adapter = adapter_by_name(args.name)
        except KeyError as exc:
            print(exc.args[0], file=sys.stderr)
            return 2
        print(json.dumps({"sources": dict(adapter.sources), **adapter.settings()}, indent=2) if args.json else adapter_detail_text(adapter))
        return 0
    if args.json:
        print(json.dumps([{"match": a.match, "sources": dict(a.sources), **a.settings()} for a in (*ADAPTERS, GENERIC)], indent=2))
        return 0
    print(registry_table_text([*ADAPTERS, GENERIC]))
    return 0


def add_reparse_parser(sub: Subparsers) -> None:
    reparse = sub.add_parser(
        "reparse",
        help="re-read a finished run's kept replies with its adapter's parser (or another), without asking the model again",
        description="Pages are replaced in place, each atomically, with a new journal line; a reply that no longer parses "
        "becomes a failed page (unparseable_reply) with its reply kept. Covers the latest run of each model unless told otherwise.",
    )
    reparse.add_argument("job_id", help="the job id")
    reparse.add_argument("--model", help="one model's folder name (default: every model of the job)")
    reparse.add_argument("--run", type=int, help="this run number (default: each model's latest run)")
    reparse.add_argument("--adapter", help="read with this registry entry instead of the one the run recorded")
    furniture = reparse.add_mutually_exclusive_group()
    furniture.add_argument(
        "--keep-furniture", dest="keep_furniture", action="store_true", default=None, help="keep headers, footers and page numbers"
    )
    furniture.add_argument("--drop-furniture", dest="keep_furniture", action="store_false", help="drop them (the default of most families)")
    reparse.add_argument("--outputs", help=OUTPUTS_HELP)
    reparse.set_defaults(handler=_reparse)


def _reparse(args: argparse.Namespace) -> int:
    from tracr.outputs.layout import outputs_root
    from tracr.run.reparse import reparse_run, run_locations

    locations = run_locations(outputs_root(args.outputs), args.job_id, args.model, args.run)
    if not locations:
        print(f"no run to re-parse for job {args.job_id!r}" + (f" model {args.model!r}" if args.model else ""), file=sys.stderr)
        return 1
    if args.adapter:
        from tracr.adapters.registry import adapter_by_name

        try:
            adapter_by_name(args.adapter)
        except KeyError as exc:
            print(exc.args[0], file=sys.stderr)
            return 2
    for location in locations:
        report = reparse_run(location, args.adapter, args.keep_furniture)
        print(
            f"{location.model_slug} run-{location.run}: read {report.pages_read} page(s) with {report.adapter}, "
            f"changed {report.pages_changed} ({report.now_done} now done, {report.now_failed} now failed), "
            f"{report.skipped} failed page(s) had no reply kept"
        )
    return 0
