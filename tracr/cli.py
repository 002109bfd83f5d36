"""The ``tracr`` command: run jobs, read the output tree, serve the built-in OCR model.

This is the one module of the package that reaches Prefect, and only inside
``tracr run``, so ``tracr list``/``show`` start instantly and work without it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from tracr.config import ConfigError, load_job_config
from tracr.layout import OutputLayout, default_outputs_root
from tracr.metadata import read_json
from tracr.report import failed_pages, format_table, list_jobs_text, run_rows, show_job_text

__all__ = ["main"]


def _outputs(value: str | None) -> Path:
    return Path(value).resolve() if value else default_outputs_root().resolve()


def _run(args: argparse.Namespace) -> int:
    try:
        loaded = load_job_config(args.config, job_id=args.job_id)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    outputs = _outputs(args.outputs)
    job_id = loaded.config.job_id
    layout = OutputLayout(outputs)
    before = {slug: (layout.run_numbers(job_id, slug) or [0])[-1] for slug in (m.slug for m in loaded.config.models)}

    # A temporary Prefect server (no PREFECT_API_URL set) would otherwise try to send telemetry.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows.ocr_job import ocr_job_flow  # Prefect is imported only when a job runs

    state = asyncio.run(ocr_job_flow(config=str(Path(args.config).resolve()), job_id=args.job_id, outputs=str(outputs), return_state=True))
    # The runs this invocation made are the ones numbered after what existed before.
    this_run = {}
    for slug, previous in before.items():
        numbers = [n for n in layout.run_numbers(job_id, slug) if n > previous]
        if numbers:
            this_run[slug] = numbers[-1]
    rows = run_rows(layout, job_id, this_run)
    print()
    print(format_table(rows))
    problems = []
    for row in rows:
        problems += [{"model": row["model"], **p} for p in failed_pages(layout, job_id, row["model"], row["run"], limit=5)]
    if problems:
        print("\nfailures (first few):")
        print(format_table(problems))
    print(f"\noutputs: {layout.job_dir(job_id)}")
    ok = state.is_completed() and rows and all(r["status"] == "completed" and r["failed"] == 0 for r in rows)
    if not state.is_completed() and not rows:
        print(f"job failed before any run started: {state.message}", file=sys.stderr)
    broken = [i["pdf_slug"] for i in (read_json(layout.job_metadata(job_id)) or {}).get("inputs", []) if i.get("error")]
    if broken:
        print(f"PDFs that could not be read: {', '.join(broken)}")
        ok = False
    return 0 if ok else 1


def _list(args: argparse.Namespace) -> int:
    print(list_jobs_text(OutputLayout(_outputs(args.outputs))))
    return 0


def _show(args: argparse.Namespace) -> int:
    layout = OutputLayout(_outputs(args.outputs))
    text = show_job_text(layout, args.job_id)
    print(text)
    return 0 if layout.job_metadata(args.job_id).is_file() else 1


def _index(args: argparse.Namespace) -> int:
    from tracr.output_index import index_path, refresh_index

    outputs = _outputs(args.outputs)
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


def _serve_ocr(args: argparse.Namespace) -> int:
    from tracr.servers.rapidocr_server import main as serve

    argv = ["--host", args.host, "--port", str(args.port), "--model-name", args.model_name]
    return serve(argv) or 0


def _review(args: argparse.Namespace) -> int:
    from dashboards.launch import launch

    return launch(_outputs(args.outputs), host=args.host, port=args.port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tracr", description="Benchmark OCR models over your PDFs, orchestrated by Prefect.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a job config")
    run.add_argument("config", help="job config YAML (see job_configs/example.yaml)")
    run.add_argument("--job-id", help="override the config's job_id")
    run.add_argument("--outputs", help="outputs root (default: $TRACR_OUTPUTS or ./outputs)")
    run.set_defaults(handler=_run)

    listing = sub.add_parser("list", help="list jobs in the outputs root")
    listing.add_argument("--outputs", help="outputs root (default: $TRACR_OUTPUTS or ./outputs)")
    listing.set_defaults(handler=_list)

    show = sub.add_parser("show", help="show a job's runs")
    show.add_argument("job_id")
    show.add_argument("--outputs", help="outputs root (default: $TRACR_OUTPUTS or ./outputs)")
    show.set_defaults(handler=_show)

    index = sub.add_parser("index", help="build or refresh the DuckDB index of the outputs root (docs/index.md)")
    index.add_argument("--outputs", help="outputs root (default: $TRACR_OUTPUTS or ./outputs)")
    index.add_argument("--rebuild", action="store_true", help="re-read every run instead of only the changed ones")
    index.set_defaults(handler=_index)

    serve = sub.add_parser("serve-ocr", help="run the built-in RapidOCR OpenAI-compatible server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8700)
    serve.add_argument("--model-name", default="tracr-ocr")
    serve.set_defaults(handler=_serve_ocr)

    review = sub.add_parser("review", help="open the web reviewer (browse, compare, blind arena, leaderboard)")
    review.add_argument("--outputs", help="outputs root (default: $TRACR_OUTPUTS or ./outputs)")
    review.add_argument("--host", default="127.0.0.1")
    review.add_argument("--port", type=int, default=8501)
    review.set_defaults(handler=_review)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
