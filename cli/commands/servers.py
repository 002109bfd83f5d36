"""The local servers: ``tracr serve-ocr`` (the built-in RapidOCR model) and ``tracr server`` (the local Prefect server).

How the local Prefect server is started, reused and stopped is ``cli/prefect_server.py``.
"""

from __future__ import annotations

import argparse
import os

from cli.commands.common import Subparsers
from cli.prefect_server import ensure_server, server_report, stop_server
from tracr.local_prefect import LocalPrefectSettings

__all__ = ["add_serve_ocr_parser", "add_server_parser"]


def add_serve_ocr_parser(sub: Subparsers) -> None:
    serve = sub.add_parser("serve-ocr", help="run the built-in RapidOCR OpenAI-compatible server")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8700, help="port to listen on (default: 8700)")
    serve.add_argument("--model-name", default="tracr-ocr", help="model id the server lists and answers to (default: tracr-ocr)")
    serve.set_defaults(handler=_serve_ocr)


def _serve_ocr(args: argparse.Namespace) -> int:
    from tracr.servers.rapidocr_server import main as serve

    argv = ["--host", args.host, "--port", str(args.port), "--model-name", args.model_name]
    serve(argv)
    return 0


def add_server_parser(sub: Subparsers) -> None:
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
