"""The ``tracr`` command: run jobs, read the output tree, serve the built-in OCR model.

This is the one module of the package that reaches Prefect, and only in the
commands that need it (run, cancel, doctor, server), so ``tracr list``/``show``
start instantly and work without it. Those commands use ``PREFECT_API_URL`` when
it is set, else the local server tracr keeps running (``cli/prefect_server.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from cli.gc_tuning import collector_paused, skip_final_collection
from cli.prefect_server import as_prefect_failure, connect, ensure_server, has_active_flow_runs, server_report, stop_server
from cli.progress import ProgressDisplay
from cli.running import EXIT_CODES, run_flow
from tracr.config.job import ConfigError, LoadedJob, load_job_config
from tracr.errors import TracrError
from tracr.local_prefect import LocalPrefectSettings, flow_run_url
from tracr.outputs.files import read_json
from tracr.outputs.layout import OutputLayout, outputs_root
from tracr.outputs.progress import RunTarget
from tracr.outputs.report import (
    duplicate_of,
    duplicate_text,
    failed_pages,
    format_table,
    job_exists,
    list_jobs_text,
    run_rows,
    show_job_text,
)

__all__ = ["main"]

#: At most this many of a new run's first pages are rendered while ``tracr run`` starts (~50 get done on 2 cores).
RENDER_AHEAD_PAGES = 64


def _outputs(value: str | None) -> Path:
    return outputs_root(value)


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


def _announce_flow_run(api_url: str | None) -> Callable[..., None]:
    def hook(flow: Any, flow_run: Any, state: Any) -> None:
        if api_url:
            print(f"watch this job: {flow_run_url(api_url, str(flow_run.id))}", file=sys.stderr, flush=True)
        else:
            print(f"flow run {flow_run.id} (ephemeral Prefect server: no UI after the job ends)", file=sys.stderr, flush=True)

    return hook


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
        page_count = inspect_pdf(loaded.pdfs[0]).page_count
    except PdfError:
        return  # the job says what is wrong with it
    pages = loaded.config.page_selection.resolve(page_count)[:RENDER_AHEAD_PAGES]
    pool.render_ahead(str(loaded.pdfs[0]), pages, loaded.config.render_for(renders))


def _quiet_prefect_console(verbose: bool) -> None:
    """Prefect's console lines kept to warnings (the progress display says the rest); the API still gets every log."""
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")


def _run(args: argparse.Namespace) -> int:
    try:
        loaded = load_job_config(args.config, job_id=args.job_id)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    outputs = _outputs(args.outputs)
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

    api_url = connect(ephemeral=args.ephemeral)
    _quiet_prefect_console(args.verbose)
    _start_rendering(loaded, args.resume)
    with collector_paused():
        from flows.ocr_job import ocr_job_flow  # Prefect is imported only when a job runs
        from tracr.config.job_request import JobRequest

    request = JobRequest(
        config_path=str(Path(args.config).resolve()), job_id=args.job_id, outputs=str(outputs), resume=args.resume, force=args.force
    )
    job_flow = ocr_job_flow.with_options(on_running=[_announce_flow_run(api_url)])
    display = ProgressDisplay(layout, job_id, targets).start() if not args.no_progress else None
    try:
        end = run_flow(job_flow(request, return_state=True))
    finally:
        if display is not None:
            display.stop()
    state = end.state
    duplicate = duplicate_of(_completed_result(state))
    if duplicate is not None:
        print(duplicate_text(job_id, duplicate))
        return 0
    # The runs this invocation made: the first numbered after what existed before, or the one resumed in place.
    this_run = {t.model_slug: run for t in targets if (run := t.resolve(layout, job_id)) is not None}
    _settle_runs(layout, job_id, this_run, state, end.signal)
    rows = run_rows(layout, job_id, this_run)
    for row in rows:  # only when its end could not be written: never shown as still running
        if row["status"] in {"queued", "waiting_resources", "starting", "running"}:
            row["status"] = "crashed (not recorded)"
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
    broken = [i["pdf_slug"] for i in (read_json(layout.job_metadata(job_id)) or {}).get("inputs", []) if i.get("error")]
    if broken:
        print(f"PDFs that could not be read: {', '.join(broken)}")
        ok = False
    return 0 if ok else 1


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


def _cancel(args: argparse.Namespace) -> int:
    api_url = connect()
    nothing = f"nothing to cancel: job {args.job_id!r} has no active flow run (tag tracr-job:{args.job_id})"
    if api_url and has_active_flow_runs(api_url, f"tracr-job:{args.job_id}") is False:
        print(nothing, file=sys.stderr)  # answered without importing Prefect
        return 1
    from tasks.run.cancellation import cancel_job

    runs = asyncio.run(cancel_job(args.job_id, wait_s=args.wait, outputs_root=_outputs(args.outputs)))
    if not runs:
        print(nothing, file=sys.stderr)
        return 1
    print(format_table(runs))
    return 0


def _server(args: argparse.Namespace) -> int:
    settings = LocalPrefectSettings.from_env()
    if args.action == "stop":
        print(stop_server(settings))
        return 0
    if args.action == "status":
        if os.environ.get("PREFECT_API_URL"):
            print(f"PREFECT_API_URL is set ({os.environ['PREFECT_API_URL']}): tracr uses that server, not its local one")
        ok, line = server_report(settings)
        print(f"local Prefect server: {line}")
        return 0 if ok else 1
    record = ensure_server(settings)  # start and ui: start it when it is not running
    print(record.ui if args.action == "ui" else f"local Prefect server: {record.ui} (pid {record.pid}; `tracr server stop` stops it)")
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
    if not job_exists(layout, args.job_id):  # also covers an id that is no folder name
        return 1
    from tracr.scoring.report import scores_text  # health and pass rates, once `tracr score` ran

    if scores := scores_text(layout, args.job_id):
        print("\n" + scores)
    return 0


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
    serve(argv)
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from tracr.doctor import Check, Level, exit_code, format_report

    local: list[Check] = []
    if not os.environ.get("PREFECT_API_URL"):
        try:
            connect()
            local.append(Check(Level.OK, "local prefect server", server_report()[1]))
        except TracrError as exc:
            local.append(Check(Level.FAIL, "local prefect server", exc.one_line()))
            os.environ["PREFECT_API_URL"] = "http://127.0.0.1:1/api"  # the checks below fail at once, no throwaway server
    from tasks.doctor_probes import run_doctor  # probes import Prefect only where they need it

    checks = local + run_doctor(args.config, _outputs(args.outputs))
    if local and local[0].level is Level.FAIL:
        checks = [
            Check(Level.FAIL, c.name, "not checked: the local Prefect server did not start") if c.name == "prefect api" else c
            for c in checks
        ]
    print(format_report(checks))
    return exit_code(checks)


def _gpus(args: argparse.Namespace) -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from tasks.serving.placement import publish_gpus, read_hosts

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


def _review(args: argparse.Namespace) -> int:
    from dashboards.launch import launch

    return launch(_outputs(args.outputs), host=args.host, port=args.port)


_OUTPUTS_HELP = "outputs root (default: $TRACR_OUTPUTS, else ./outputs)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracr",
        description="Benchmark OCR models over your PDFs, orchestrated by Prefect.",
        epilog="Commands that need Prefect (run, cancel, doctor, server) use PREFECT_API_URL when it is set, else a local "
        "Prefect server tracr starts once and keeps running (tracr server --help).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a job config", description="Run every model of a job config over its PDFs.")
    run.add_argument("config", help="job config YAML (see job_configs/example.yaml)")
    run.add_argument("--job-id", help="job id to use instead of the config's job_id (default: the config's)")
    run.add_argument("--outputs", help=_OUTPUTS_HELP)
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
        help="no progress display (default: live lines on a terminal, plain lines every $TRACR_PROGRESS_INTERVAL_S=10 s otherwise)",
    )
    run.set_defaults(handler=_run)

    cancel = sub.add_parser("cancel", help="cancel a job's running flow runs (finished pages are kept; resume with run --resume)")
    cancel.add_argument("job_id", help="the job id whose flow runs to cancel")
    cancel.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the runs to stop (default: 60)")
    cancel.add_argument("--outputs", help="outputs root, where a dead job's claim is found (default: $TRACR_OUTPUTS, else ./outputs)")
    cancel.set_defaults(handler=_cancel)

    export = sub.add_parser("export", help="write a job's per-page rows as CSV or Parquet")
    export.add_argument("job_id", help="the job id to export")
    export.add_argument("--format", choices=["csv", "parquet"], default="csv", help="file format (default: csv)")
    export.add_argument("--output", help="file to write (default: <job dir>/pages.<format>)")
    export.add_argument("--outputs", help=_OUTPUTS_HELP)
    export.set_defaults(handler=_export)

    listing = sub.add_parser("list", help="list jobs in the outputs root")
    listing.add_argument("--outputs", help=_OUTPUTS_HELP)
    listing.set_defaults(handler=_list)

    show = sub.add_parser("show", help="show a job's runs")
    show.add_argument("job_id", help="the job id to show")
    show.add_argument("--outputs", help=_OUTPUTS_HELP)
    show.set_defaults(handler=_show)

    doctor = sub.add_parser("doctor", help="check this machine (and a job config's models) before running: OK / WARN / FAIL")
    doctor.add_argument("config", nargs="?", help="job config YAML whose models to preflight (default: none, machine checks only)")
    doctor.add_argument("--outputs", help=_OUTPUTS_HELP)
    doctor.set_defaults(handler=_doctor)

    index = sub.add_parser("index", help="build or refresh the DuckDB index of the outputs root (docs/index.md)")
    index.add_argument("--outputs", help=_OUTPUTS_HELP)
    index.add_argument("--rebuild", action="store_true", help="re-read every run instead of only the changed ones (default: off)")
    index.set_defaults(handler=_index)

    serve = sub.add_parser("serve-ocr", help="run the built-in RapidOCR OpenAI-compatible server")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8700, help="port to listen on (default: 8700)")
    serve.add_argument("--model-name", default="tracr-ocr", help="model id the server lists and answers to (default: tracr-ocr)")
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
    review.add_argument("--outputs", help=_OUTPUTS_HELP)
    review.add_argument("--host", default="127.0.0.1", help="address the reviewer listens on (default: 127.0.0.1)")
    review.add_argument("--port", type=int, default=8501, help="port the reviewer listens on (default: 8501)")
    review.set_defaults(handler=_review)

    server = sub.add_parser(
        "server",
        help="start, stop or inspect the local Prefect server tracr keeps running",
        description="The local Prefect server (used when PREFECT_API_URL is not set): SQLite under $TRACR_HOME/prefect "
        "(default: ~/.local/state/tracr/prefect), port $TRACR_PREFECT_PORT (default: 4270, then up to "
        "$TRACR_PREFECT_PORT_FALLBACKS=10 further ports when taken), start-up timeout $TRACR_PREFECT_START_TIMEOUT_S "
        "(default: 180 s). Any command that needs Prefect starts it.",
    )
    server.add_argument(
        "action",
        choices=["start", "stop", "status", "ui"],
        help="start: start it (or say where it runs); stop: stop it and every process it started; "
        "status: whether it runs, where, since when (exit 1 when it does not); ui: print the UI's URL (starting it if needed)",
    )
    server.set_defaults(handler=_server)

    from cli.score import register as register_scoring  # score, judge, import (cli/score.py)

    register_scoring(sub)
    return parser


_RESUME_HINT = "finished pages are kept; `tracr run CONFIG --resume` continues"


class _Terminated(BaseException):
    """SIGTERM while no job flow takes it (``cli.running`` does while one runs): a stop, like Ctrl-C's KeyboardInterrupt."""


def _on_sigterm(number: int, frame: FrameType | None) -> None:
    raise _Terminated


def main(argv: list[str] | None = None) -> int:
    # Before Prefect is imported: a heartbeat every 30 s, so a killed job's flow runs are marked Crashed
    # after 90 s (tasks/run/crash_detection.py) rather than staying Running.
    os.environ.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "30")
    args = build_parser().parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    try:
        return _handle(args)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _handle(args: argparse.Namespace) -> int:
    """The command's handler, with every condition tracr can name said in one line."""
    try:
        return int(args.handler(args))
    except TracrError as exc:
        print(f"tracr: {exc.one_line()}", file=sys.stderr)
        return 1
    except Exception as exc:
        failure = as_prefect_failure(exc, os.environ.get("PREFECT_API_URL"))
        if failure is None:
            raise  # a bug: keep its traceback
        print(f"tracr: {failure.one_line()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # Ctrl-C: the flows have already stopped their servers and recorded the runs as cancelled.
        print(f"\ninterrupted: {_RESUME_HINT}", file=sys.stderr)
        return 130
    except _Terminated:  # before the job's flow started (or after it ended): nothing of it is left running
        print(f"\nterminated: {_RESUME_HINT if args.command == 'run' else f'tracr {args.command} stopped'}", file=sys.stderr)
        return EXIT_CODES["SIGTERM"]


def run() -> NoReturn:
    """The ``tracr`` command: :func:`main`, then an exit without the interpreter's last full collection (``cli.gc_tuning``)."""
    code = main()
    skip_final_collection()
    sys.exit(code)


if __name__ == "__main__":
    run()
