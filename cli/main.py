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
from typing import Any

from tracr.config.job import ConfigError, load_job_config
from tracr.outputs.layout import OutputLayout, default_outputs_root
from tracr.outputs.files import read_json
from tracr.outputs.report import duplicate_of, duplicate_text, failed_pages, format_table, list_jobs_text, run_rows, show_job_text

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

    from tracr.config.job_request import JobRequest

    request = JobRequest(config_path=str(Path(args.config).resolve()), job_id=args.job_id, outputs=str(outputs), resume=args.resume, force=args.force)
    state = asyncio.run(ocr_job_flow(request, return_state=True))
    duplicate = duplicate_of(_completed_result(state))
    if duplicate is not None:
        print(duplicate_text(job_id, duplicate))
        return 0
    # The runs this invocation made are the ones numbered after what existed before (or resumed in place).
    this_run = {}
    for slug, previous in before.items():
        numbers = [n for n in layout.run_numbers(job_id, slug) if n > previous or (args.resume and n == previous)]
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
    if state.is_cancelled():
        print(f"job cancelled: {state.message}; `tracr run {args.config} --resume` continues it", file=sys.stderr)
    elif not state.is_completed() and not rows:
        print(f"job failed before any run started: {state.message}", file=sys.stderr)
    broken = [i["pdf_slug"] for i in (read_json(layout.job_metadata(job_id)) or {}).get("inputs", []) if i.get("error")]
    if broken:
        print(f"PDFs that could not be read: {', '.join(broken)}")
        ok = False
    return 0 if ok else 1


def _completed_result(state: Any) -> Any:
    """A completed flow state's result, else ``None``."""
    if not state.is_completed():
        return None
    try:
        return state.result(raise_on_failure=False)
    except Exception:
        return None


def _cancel(args: argparse.Namespace) -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from tasks.cancellation import cancel_job

    runs = asyncio.run(cancel_job(args.job_id, wait_s=args.wait, outputs_root=_outputs(args.outputs)))
    if not runs:
        print(f"no active flow run of job {args.job_id!r} (tag tracr-job:{args.job_id})", file=sys.stderr)
        return 1
    print(format_table(runs))
    return 0


def _export(args: argparse.Namespace) -> int:
    from tracr.outputs.export import ExportError, export_pages

    try:
        path, count = export_pages(OutputLayout(_outputs(args.outputs)), args.job_id, args.format, args.output)
    except ExportError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"wrote {count} page row(s) to {path}")
    return 0


def _list(args: argparse.Namespace) -> int:
    print(list_jobs_text(OutputLayout(_outputs(args.outputs))))
    return 0


def _show(args: argparse.Namespace) -> int:
    layout = OutputLayout(_outputs(args.outputs))
    text = show_job_text(layout, args.job_id)
    print(text)
    return 0 if layout.job_metadata(args.job_id).is_file() else 1


def _index(args: argparse.Namespace) -> int:
    from tracr.index.store import index_path, refresh_index

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


def _doctor(args: argparse.Namespace) -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from tasks.preflight import run_doctor  # probes import Prefect only where they need it
    from tracr.doctor import exit_code, format_report

    checks = run_doctor(args.config, _outputs(args.outputs))
    print(format_report(checks))
    return exit_code(checks)


def _gpus(args: argparse.Namespace) -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from tasks.placement import publish_gpus, read_hosts

    if args.action == "publish":
        host, names = asyncio.run(publish_gpus())
        print(f"{host}: {len(names)} GPU limit(s) published{': ' + ', '.join(names) if names else ''}")
        return 0
    hosts = asyncio.run(read_hosts())
    for h in hosts.values():
        print(f"{h.host}\t{h.count} GPU(s)\t{h.busy} busy")
    if not hosts:
        print("no host has published GPUs (run `tracr gpus publish` on each GPU host)")
    return 0


def _submit(args: argparse.Namespace) -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from tasks.placement import submit_job
    from tracr.doctor import gpus_needed
    from tracr.serving.placement import NoHostFits

    try:
        loaded = load_job_config(args.config, job_id=args.job_id)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    needed, _ = gpus_needed(loaded.config)
    request = {"config_path": str(Path(args.config).resolve()), "job_id": args.job_id, "outputs": args.outputs, "resume": args.resume, "force": args.force}
    try:
        queue, run_id = asyncio.run(submit_job(request, needed, deployment=args.deployment, cpu_queue=args.cpu_queue))
    except NoHostFits as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"submitted {loaded.config.job_id} to work queue {queue} ({needed} GPU(s) needed): flow run {run_id}")
    return 0


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
    run.add_argument("--resume", action="store_true", help="continue each model's latest unfinished run, skipping pages already written")
    run.add_argument("--force", action="store_true", help="start new runs even if the same config is already running")
    run.set_defaults(handler=_run)

    cancel = sub.add_parser("cancel", help="cancel a job's running flow runs (finished pages are kept; resume with run --resume)")
    cancel.add_argument("job_id")
    cancel.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the runs to stop (default 60)")
    cancel.add_argument("--outputs", help="outputs root, where a dead job's claim is found (default: $TRACR_OUTPUTS or ./outputs)")
    cancel.set_defaults(handler=_cancel)

    export = sub.add_parser("export", help="write a job's per-page rows as CSV or Parquet")
    export.add_argument("job_id")
    export.add_argument("--format", choices=["csv", "parquet"], default="csv")
    export.add_argument("--output", help="file to write (default: <job dir>/pages.<format>)")
    export.add_argument("--outputs", help="outputs root (default: $TRACR_OUTPUTS or ./outputs)")
    export.set_defaults(handler=_export)

    listing = sub.add_parser("list", help="list jobs in the outputs root")
    listing.add_argument("--outputs", help="outputs root (default: $TRACR_OUTPUTS or ./outputs)")
    listing.set_defaults(handler=_list)

    show = sub.add_parser("show", help="show a job's runs")
    show.add_argument("job_id")
    show.add_argument("--outputs", help="outputs root (default: $TRACR_OUTPUTS or ./outputs)")
    show.set_defaults(handler=_show)

    doctor = sub.add_parser("doctor", help="check this machine (and a job config's models) before running: OK / WARN / FAIL")
    doctor.add_argument("config", nargs="?", help="job config YAML whose models to preflight")
    doctor.add_argument("--outputs", help="outputs root (default: $TRACR_OUTPUTS or ./outputs)")
    doctor.set_defaults(handler=_doctor)

    index = sub.add_parser("index", help="build or refresh the DuckDB index of the outputs root (docs/index.md)")
    index.add_argument("--outputs", help="outputs root (default: $TRACR_OUTPUTS or ./outputs)")
    index.add_argument("--rebuild", action="store_true", help="re-read every run instead of only the changed ones")
    index.set_defaults(handler=_index)

    serve = sub.add_parser("serve-ocr", help="run the built-in RapidOCR OpenAI-compatible server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8700)
    serve.add_argument("--model-name", default="tracr-ocr")
    serve.set_defaults(handler=_serve_ocr)

    gpus = sub.add_parser("gpus", help="GPU hosts on the Prefect server (publish: create this host's per-GPU limits)")
    gpus.add_argument("action", nargs="?", choices=["list", "publish"], default="list")
    gpus.set_defaults(handler=_gpus)

    submit = sub.add_parser("submit", help="run a job on a Prefect work pool, on a host whose GPUs can hold its local models")
    submit.add_argument("config", help="job config YAML, at the same path on every host")
    submit.add_argument("--job-id", help="override the config's job_id")
    submit.add_argument("--outputs", help="outputs root as the hosts see it (default: the worker's $TRACR_OUTPUTS)")
    submit.add_argument("--resume", action="store_true")
    submit.add_argument("--force", action="store_true")
    submit.add_argument("--deployment", default="ocr-job/process", help="deployment to run (default ocr-job/process)")
    submit.add_argument("--cpu-queue", default="default", help="work queue for jobs without local models (default: default)")
    submit.set_defaults(handler=_submit)

    review = sub.add_parser("review", help="open the web reviewer (browse, compare, blind arena, leaderboard)")
    review.add_argument("--outputs", help="outputs root (default: $TRACR_OUTPUTS or ./outputs)")
    review.add_argument("--host", default="127.0.0.1")
    review.add_argument("--port", type=int, default=8501)
    review.set_defaults(handler=_review)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        # Ctrl-C: the flows have already stopped their servers and recorded the runs as cancelled.
        print("\ninterrupted: finished pages are kept; `tracr run CONFIG --resume` continues", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
