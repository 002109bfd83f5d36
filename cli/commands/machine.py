"""Machine checks and GPUs: ``tracr doctor`` (OK / WARN / FAIL before running), ``tracr storage`` (the outputs root's
published id: its check, and its reset after a deliberate move) and ``tracr gpus`` (GPU hosts on Prefect)."""

from __future__ import annotations

import argparse
import asyncio
import os

from cli.commands.common import OUTPUTS_HELP, Subparsers
from cli.prefect_server import connect, server_report
from tracr.errors import TracrError
from tracr.outputs.layout import outputs_root

__all__ = ["add_doctor_parser", "add_storage_parser", "add_gpus_parser"]


def add_doctor_parser(sub: Subparsers) -> None:
    doctor = sub.add_parser("doctor", help="check this machine (and a job config's models) before running: OK / WARN / FAIL")
    doctor.add_argument("config", nargs="?", help="job config YAML whose models to preflight (default: none, machine checks only)")
    doctor.add_argument("--job-id", help="job id `tracr run --job-id` would use instead of the config's (checked the same way)")
    doctor.add_argument("--outputs", help=OUTPUTS_HELP)
    doctor.set_defaults(handler=_doctor)


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

    checks = local + run_doctor(args.config, outputs_root(args.outputs), job_id=args.job_id)
    if local and local[0].level is Level.FAIL:
        checks = [
            Check(Level.FAIL, c.name, "not checked: the local Prefect server did not start") if c.name == "prefect api" else c
            for c in checks
        ]
    print(format_report(checks))
    return exit_code(checks)


def add_storage_parser(sub: Subparsers) -> None:
    storage = sub.add_parser(
        "storage",
        help="the outputs root's id as the hosts share it: check it (as doctor and run do), or reset it after a deliberate move",
        description="status (default): this host's view of the outputs root against the id published for its path, "
        "as `tracr doctor` and `tracr run` judge it. reset: make the root this host sees the published one, after the "
        "outputs root was moved to another filesystem on purpose (hosts that see another one are then refused).",
    )
    storage.add_argument("action", nargs="?", choices=["status", "reset"], default="status")
    storage.add_argument("--outputs", help=OUTPUTS_HELP)
    storage.set_defaults(handler=_storage)


def _storage(args: argparse.Namespace) -> int:
    from tracr.doctor import exit_code, format_report

    root = outputs_root(args.outputs)
    connect()
    if args.action == "status":
        from tasks.doctor_probes import storage_check

        check = storage_check(root)
        print(format_report([check]))
        return exit_code([check])
    from tasks.outputs.storage_check import reset_root

    _, old, new = asyncio.run(reset_root(root))
    replaced = f"; it replaces id {old.root_id}, published by {old.origin()}" if old is not None and new.replaces else ""
    print(f"{root.resolve()}: id {new.root_id}, as host {new.host} sees it, is now the one published for this path{replaced}")
    return 0


def add_gpus_parser(sub: Subparsers) -> None:
    gpus = sub.add_parser("gpus", help="GPU hosts on the Prefect server (publish: create this host's per-GPU limits)")
    gpus.add_argument("action", nargs="?", choices=["list", "publish"], default="list")
    gpus.set_defaults(handler=_gpus)


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
