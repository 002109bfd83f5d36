"""``tracr cancel`` (cli/commands/jobs.py) against the suite's Prefect server: nothing to cancel is no failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cli.commands.jobs
from cli.main import main

pytestmark = pytest.mark.usefixtures("prefect_server")
REPO = Path(__file__).resolve().parents[2]


def test_cancel_with_nothing_running_says_so_and_exits_0(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "cancel", "nothing-runs-here", "--outputs", str(tmp_path)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == "nothing to cancel: job 'nothing-runs-here' has no active flow run (tag tracr-job:nothing-runs-here)\n"
    assert done.stdout == ""


def test_cancel_asked_through_prefect_with_nothing_running_exits_0(tmp_path, monkeypatch, capsys) -> None:
    """When the plain HTTP question gets no answer, Prefect's client is asked; it finds nothing either."""
    monkeypatch.setattr(cli.commands.jobs, "has_active_flow_runs", lambda api_url, tag: None)
    assert main(["cancel", "nothing-runs-here-either", "--wait", "1", "--outputs", str(tmp_path)]) == 0
    assert "nothing to cancel: job 'nothing-runs-here-either' has no active flow run" in capsys.readouterr().err
