"""The ``tracr`` command's entry point: the top parser, each command group's parsers, and the dispatch.

The commands live in ``cli/commands/`` (one module per group); this module only
builds the parser from them, parses, and runs the chosen handler with every
condition tracr can name said in one line. Prefect is imported only by the
commands that need it (run, cancel, doctor, server, …), so ``tracr list``/``show``
start instantly and work without it. Those commands use ``PREFECT_API_URL`` when
it is set, else the local server tracr keeps running (``cli/prefect_server.py``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import NoReturn

from cli.commands import jobs, machine, models, outputs, report, review, scoring, servers
from cli.commands.common import Subparsers
from cli.gc_tuning import skip_final_collection
from cli.prefect_server import as_prefect_failure
from cli.running import EXIT_CODES
from tracr.errors import TracrError
from tracr.serving.inherited_env import confine_inherited_environment

__all__ = ["main", "run", "build_parser"]

#: Every command's parser, in the order ``tracr --help`` lists them.
COMMAND_PARSERS: tuple[Callable[[Subparsers], None], ...] = (
    jobs.add_run_parser,
    jobs.add_cancel_parser,
    outputs.add_export_parser,
    outputs.add_list_parser,
    outputs.add_show_parser,
    machine.add_doctor_parser,
    machine.add_storage_parser,
    outputs.add_index_parser,
    servers.add_serve_ocr_parser,
    machine.add_gpus_parser,
    jobs.add_submit_parser,
    review.add_review_parser,
    servers.add_server_parser,
    scoring.add_score_parser,
    scoring.add_judge_parser,
    scoring.add_import_parser,
    report.add_report_parser,
    models.add_models_parser,
    models.add_reparse_parser,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracr",
        description="Benchmark OCR models over your PDFs, orchestrated by Prefect.",
        epilog="Commands that need Prefect (run, score, cancel, doctor, server) use PREFECT_API_URL when it is set, else a local "
        "Prefect server tracr starts once and keeps running (tracr server --help).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_parser in COMMAND_PARSERS:
        add_parser(sub)
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
    """The ``tracr`` command: :func:`main`, then an exit without the interpreter's last full collection (``cli.gc_tuning``).

    Before anything starts a thread, the environment that helper processes inherit is
    cut to the allow list (``tracr.serving.inherited_env``); ``os.environ`` keeps the keys.
    """
    confine_inherited_environment()
    code = main()
    skip_final_collection()
    sys.exit(code)


if __name__ == "__main__":
    run()
