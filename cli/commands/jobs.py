"""Running jobs: ``tracr run`` (here, with a progress display), ``tracr cancel`` and ``tracr submit`` (to a work pool).

``run`` answers ``--resume`` with nothing left from the output tree alone; otherwise
it connects to Prefect (``cli/prefect_server.py``) and runs the job's flow in a
worker thread (``cli/running.py``). Prefect and the flows are imported only then.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from cli.commands.common import OUTPUTS_HELP, Subparsers
from cli.gc_tuning import collector_paused
from cli.prefect_server import connect, has_active_flow_runs
from cli.progress import ProgressDisplay
from cli.running import EXIT_CODES, announce_flow_run, connect_quietly, run_flow
from tracr.config.job import ConfigError, LoadedJob, load_job_config
from tracr.outputs.inputs import iter_job_inputs
from tracr.outputs.layout import OutputLayout, outputs_root
from tracr.outputs.progress import NOT_RECORDED, UNENDED, RunTarget
from tracr.outputs.report import duplicate_of, duplicate_text, failed_pages, format_table, run_rows

__all__ = ["add_run_parser", "add_cancel_parser", "add_submit_parser"]

#: At most this many of a new run's first pages are rendered while ``tracr run`` starts (~50 get done on 2 cores).
RENDER_AHEAD_PAGES = 64


# ----------------------------------------------------------------------------- tracr run


def add_run_parser(sub: Subparsers) -> None:
    run = sub.add_parser("run", help="run a job config", description="Run every model of a job config over its PDFs.")
    run.add_argument("config", help="job config YAML (see job_configs/example.yaml)")
    run.add_argument("--job-id", help="job id to use instead of the config's job_id (default: the config's)")
    run.add_argument("--outputs", help=OUTPUTS_HELP)
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue each model's latest unfinished run, skipping pages already written (default: off, new runs)",
    )
    run.add_argument("--force", action="store_true", help="start new runs even if the same config is already running (default: off)")
    run.add_argument(
        "--ephemeral",
        action="store_true",
        help="use a throwaway Prefect server for this run only, not the local one tracr keeps (default: off; no UI after the run)",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="show Prefect's info log lines too (default: warnings only)")
    run.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress display (default: live lines on a terminal; otherwise a plain line when a run's state changes, "
        "and as its pages move on at most every $TRACR_PROGRESS_INTERVAL_S=10 s)",
    )
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        loaded = load_job_config(args.config, job_id=args.job_id)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    outputs = outputs_root(args.outputs)
    job_id = loaded.config.job_id
    layout = OutputLayout(outputs)
    slugs = [m.slug for m in loaded.config.models]
    targets, finished = _targets(layout, job_id, slugs, args.resume)
    if args.resume and not targets:  # answered from the output tree: no Prefect, no flow run, no old table
        print(
            f"nothing to resume: the latest run of every model of job {job_id} completed ({', '.join(finished)}); "
            f"`tracr show {job_id}` lists them, `tracr run {args.config}` starts new runs"
        )
        return 0
    if finished:
        print(f"nothing to resume for {', '.join(finished)} (latest run completed)", file=sys.stderr)

    api_url = connect_quietly(ephemeral=args.ephemeral, verbose=args.verbose)
    _start_rendering(loaded, args.resume)
    del loaded  # the job flow finds the PDFs again; this list of 20,000 paths need not live as long as the job
    with collector_paused():
        from flows.ocr_job import ocr_job_flow  # Prefect is imported only when a job runs
        from tracr.config.job_request import JobRequest

    request = JobRequest(
        config_path=str(Path(args.config).resolve()), job_id=args.job_id, outputs=str(outputs), resume=args.resume, force=args.force
    )
    job_flow = ocr_job_flow.with_options(on_running=[announce_flow_run(api_url)])
    display = ProgressDisplay(layout, job_id, targets).start() if not args.no_progress else None
    recorded = False
    try:
        end = run_flow(job_flow(request, return_state=True))
        state = end.state
        duplicate = duplicate_of(_completed_result(state))
        if duplicate is None:
            # The runs this invocation made: the first numbered after what existed before, or the one resumed in place.
            this_run = {t.model_slug: run for t in targets if (run := t.resolve(layout, job_id)) is not None}
            _settle_runs(layout, job_id, this_run, state, end.signal)
            recorded = True
    finally:
        if display is not None:
            display.stop(final=recorded)  # the last progress lines say how each run ended, as the table below does
    if duplicate is not None:
        print(duplicate_text(job_id, duplicate))
        return 0
    rows = run_rows(layout, job_id, this_run)
    for row in rows:  # only when its end could not be written: never shown as still running
        if row["status"] in UNENDED:
            row["status"] = NOT_RECORDED
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
    if end.signal is not None:
        print(_stopped_line(end.signal, state, args.config), file=sys.stderr)
        return EXIT_CODES[end.signal]
    if state.is_cancelled():
        print(f"job cancelled: {state.message}; `tracr run {args.config} --resume` continues it", file=sys.stderr)
    elif not state.is_completed() and not rows:
        print(f"job failed before any run started: {state.message}", file=sys.stderr)
    elif not state.is_completed():
        print(f"job {str(state.name).lower()}: {state.message}", file=sys.stderr)
    broken = [str(i.get("pdf_slug")) for i in iter_job_inputs(layout, job_id) if i.get("error")]
    if broken:
        print(f"PDFs that could not be read: {', '.join(broken)}")
        ok = False
    return 0 if ok else 1


def _targets(layout: OutputLayout, job_id: str, slugs: list[str], resume: bool) -> tuple[list[RunTarget], list[str]]:
    """Which run of each model this invocation makes or continues, and (with ``resume``) the models with nothing to resume.

    A resumed model continues its latest unfinished run; a model with no run yet
    starts run 1 (as the flow plans it); a model whose latest run completed is left alone.
    """
    from tracr.run.resume import resumable_run

    targets, finished = [], []
    for slug in slugs:
        latest = (layout.run_numbers(job_id, slug) or [0])[-1]
        if resume:
            number, status = resumable_run(layout, job_id, slug)
            if number is None and status is not None:
                finished.append(slug)
                continue
            targets.append(RunTarget(slug, run=number, after=latest))
        else:
            targets.append(RunTarget(slug, after=latest))
    return targets, finished


def _start_rendering(loaded: LoadedJob, resume: bool) -> None:
    """Render workers started, and a new run's first pages rendered, on the core Prefect's import leaves idle.

    The job's flow takes the pages rendered by then (``tasks/documents/render_ahead.py``);
    a resumed run may have them already, so it renders nothing ahead.
    """
    from tasks.documents.render_pool import shared_render_pool
    from tracr.config.models import TextLayerModel
    from tracr.documents.pdf import PdfError, inspect_pdf

    pool = shared_render_pool()
    pool.start()
    renders = next((spec for spec in loaded.config.models if not isinstance(spec, TextLayerModel)), None)
    if resume or renders is None or not loaded.pdfs:
        return
    try:
        page_count = inspect_pdf(Path(loaded.pdfs[0])).page_count
    except PdfError:
        return  # the job says what is wrong with it
    pages = loaded.config.page_selection.resolve(page_count)[:RENDER_AHEAD_PAGES]
    pool.render_ahead(loaded.pdfs[0], pages, loaded.config.render_for(renders))


def _stopped_line(signal_name: str, state: Any, config: str) -> str:
    """The one line a run stopped by a signal ends with."""
    what = "terminated" if signal_name == "SIGTERM" else "interrupted"
    ended = "run cancelled" if state.is_cancelled() else f"the job had already ended ({state.name})"
    return f"{what}: {ended}; finished pages are kept, resume with `tracr run {config} --resume`"


def _settle_runs(layout: OutputLayout, job_id: str, runs: dict[str, int], state: Any, signal_name: str | None) -> None:
    """No run of this invocation is left ``running`` once it returned: record how it really ended.

    A run's flow records its own end; this covers one that could not (its flow
    crashed, or was stopped before it started its pages).
    """
    from tracr.run.recorder import settle_unfinished_runs
    from tracr.run.state import RunStatus

    cancelled = signal_name is not None or state.is_cancelled()
    status = RunStatus.CANCELLED if cancelled else RunStatus.FAILED
    reason = f"the job ended {state.name} before this run recorded its end" + (f" ({signal_name})" if signal_name else "")
    entries = [{"model_slug": slug, "run": run} for slug, run in runs.items()]
    try:
        settle_unfinished_runs(layout, job_id, entries, status, reason)
    except OSError as exc:
        print(f"tracr: could not record the end of unfinished runs: {exc.strerror or exc}", file=sys.stderr)


def _completed_result(state: Any) -> Any:
    """A completed flow state's result, else ``None``."""
    if not state.is_completed():
        return None
    try:
        return state.result(raise_on_failure=False)
    except Exception:
        return None


# ----------------------------------------------------------------------------- tracr cancel


def add_cancel_parser(sub: Subparsers) -> None:
    cancel = sub.add_parser("cancel", help="cancel a job's running flow runs (finished pages are kept; resume with run --resume)")
    cancel.add_argument("job_id", help="the job id whose flow runs to cancel")
    cancel.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the runs to stop (default: 60)")
    cancel.add_argument("--outputs", help="outputs root, where a dead job's claim is found (default: $TRACR_OUTPUTS, else ./outputs)")
    cancel.set_defaults(handler=_cancel)


def _cancel(args: argparse.Namespace) -> int:
    """Exit 0 when the job has nothing running (it is stopped either way); 1 only when Prefect cannot be asked."""
    api_url = connect()
    nothing = f"nothing to cancel: job {args.job_id!r} has no active flow run (tag tracr-job:{args.job_id})"
    if api_url and has_active_flow_runs(api_url, f"tracr-job:{args.job_id}") is False:
        print(nothing, file=sys.stderr)  # answered without importing Prefect
        return 0
    from tasks.run.cancellation import cancel_job

    runs = asyncio.run(cancel_job(args.job_id, wait_s=args.wait, outputs_root=outputs_root(args.outputs)))
    if not runs:
        print(nothing, file=sys.stderr)
        return 0
    print(format_table(runs))
    return 0


# ----------------------------------------------------------------------------- tracr submit


def add_submit_parser(sub: Subparsers) -> None:
    submit = sub.add_parser("submit", help="run a job on a Prefect work pool, on a host whose GPUs can hold its local models")
    submit.add_argument("config", help="job config YAML, at the same path on every host")
    submit.add_argument("--job-id", help="override the config's job_id")
    submit.add_argument("--outputs", help="outputs root as the hosts see it (default: the worker's $TRACR_OUTPUTS)")
    submit.add_argument("--resume", action="store_true")
    submit.add_argument("--force", action="store_true")
    submit.add_argument("--deployment", default="ocr-job/process", help="deployment to run (default ocr-job/process)")
    submit.add_argument("--cpu-queue", default="default", help="work queue for jobs without local models (default: default)")
    submit.set_defaults(handler=_submit)


def _submit(args: argparse.Namespace) -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from tasks.serving.placement import submit_job
    from tracr.doctor import gpus_needed
    from tracr.serving.placement import NoHostFits

    try:
        loaded = load_job_config(args.config, job_id=args.job_id)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    needed, _ = gpus_needed(loaded.config)
    request = {
        "config_path": str(Path(args.config).resolve()),
        "job_id": args.job_id,
        "outputs": args.outputs,
        "resume": args.resume,
        "force": args.force,
    }
    try:
        queue, run_id = asyncio.run(submit_job(request, needed, deployment=args.deployment, cpu_queue=args.cpu_queue))
    except NoHostFits as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"submitted {loaded.config.job_id} to work queue {queue} ({needed} GPU(s) needed): flow run {run_id}")
    return 0
