"""Serve tracr's flows from this machine: ``python -m deployments.serve``.

The one-machine way to run tracr like the rest of a Prefect estate, with no work
pool and no worker: this process registers the deployments ``ocr-job/<name>``
and ``index-outputs/<name>`` with the Prefect server named by ``PREFECT_API_URL``
and runs every flow run triggered for them (from the UI, ``prefect deployment
run``, a schedule or an automation) as a subprocess, until it is stopped
(Ctrl-C / SIGTERM). For work pools (process or Docker, several machines) use
``deployments/prefect.yaml`` and ``prefect deploy`` instead; see
docs/deployments.md.

It serves ``ocr-job`` (with the example nightly schedule, paused) and ``index-outputs``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import cast

from prefect import serve
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron
from prefect.settings import get_current_settings

from flows.index_outputs import index_outputs_flow
from flows.ocr_job import ocr_job_flow

__all__ = ["build_deployments", "EXAMPLE_SCHEDULE_PARAMETERS", "main"]

#: What the example nightly schedule submits; it is created paused (``active: false``).
EXAMPLE_SCHEDULE_PARAMETERS = {"request": {"config_path": "job_configs/example.yaml", "job_id": "example-nightly"}}


def build_deployments(name: str = "serve", schedule_active: bool = False) -> list[RunnerDeployment]:
    """``ocr-job/<name>`` (with the example nightly schedule) and ``index-outputs/<name>``."""
    # Called outside an event loop, ``to_deployment`` returns the deployment itself, not a coroutine.
    deployments = [
        cast(
            RunnerDeployment,
            ocr_job_flow.to_deployment(
                name=name,
                description="Run a tracr job: give a config file path (config_path) or the config inline (config).",
                tags=["tracr"],
                schedules=[
                    Cron(
                        "0 2 * * *", timezone="UTC", parameters=EXAMPLE_SCHEDULE_PARAMETERS, active=schedule_active, slug="example-nightly"
                    )
                ],
            ),
        ),
        cast(
            RunnerDeployment,
            index_outputs_flow.to_deployment(name=name, description="Index tracr's output tree into DuckDB.", tags=["tracr"]),
        ),
    ]
    return deployments


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="serve", help="deployment name (ocr-job/<name>); default: serve")
    parser.add_argument("--limit", type=int, default=1, help="flow runs this machine executes at once (default 1: a job uses every core)")
    parser.add_argument("--schedule-active", action="store_true", help="turn the example nightly schedule on (created paused otherwise)")
    args = parser.parse_args(argv)
    # Flow runs are child processes that read this: a heartbeat every 30 s for crash detection.
    os.environ.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "30")
    if not get_current_settings().api.url:
        # Without a server, Prefect would serve against a temporary one that no UI, CLI or schedule can reach.
        print(
            "PREFECT_API_URL is not set: start a server (`prefect server start`) and point at it "
            "(`prefect config set PREFECT_API_URL=http://127.0.0.1:4200/api`); see docs/deployments.md",
            file=sys.stderr,
        )
        return 2
    deployments = build_deployments(args.name, args.schedule_active)
    print("serving: " + ", ".join(f"{d.flow_name}/{d.name}" for d in deployments), flush=True)
    serve(*deployments, limit=args.limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
