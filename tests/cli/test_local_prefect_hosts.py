"""Two machines over one home folder: each keeps its own local Prefect server, record and database.

On a cluster the home folder is shared, and a pid or a loopback URL means
something only on the machine that wrote it. The two hosts here are real
namespaces (``unshare``: own hostname, PID space and ``/proc``; the filesystem and
the loopback network are shared), made as ``tools/multihost`` makes them, and the
real CLI runs inside each through ``nsenter``. Needs root (skipped otherwise).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_local_prefect_server import _env, _free_ports, _server_processes
from tracr.local_prefect import ServerRecord

REPO = Path(__file__).resolve().parents[2]
REAPER = REPO / "tools" / "multihost" / "reaper.py"
pytestmark = pytest.mark.timeout(600)


def _namespaces_allowed() -> bool:
    try:
        return subprocess.run(["unshare", "-u", "-p", "-f", "-m", "--mount-proc", "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_namespaces = pytest.mark.skipif(
    not _namespaces_allowed(), reason="needs unshare/nsenter with PID, UTS and mount namespaces (run as root)"
)


class Host:
    """A stand-in machine: ``tools/multihost/reaper.py`` as pid 1 of its own namespaces, kept up by a ``sleep``."""

    def __init__(self, name: str, work: Path) -> None:
        self.name = name
        info = work / f"{name}.json"
        self.proc = subprocess.Popen(
            ["unshare", "-u", "-p", "-f", "-m", "--mount-proc", sys.executable, str(REAPER), "--hostname", name, "--info", str(info)]
            + ["--", "sleep", "infinity"],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while not info.exists():
            assert self.proc.poll() is None and time.monotonic() < deadline, f"host {name} did not come up"
            time.sleep(0.1)
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        self.init_pid = int(children[0])  # the reaper, as seen from outside

    def tracr(self, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        """The CLI run inside this host's namespaces (what a login on that machine would run)."""
        enter = ["nsenter", "-t", str(self.init_pid), "-u", "-p", "-m", f"--wd={REPO}", "--"]
        return subprocess.run(
            [*enter, sys.executable, "-m", "cli.main", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=400
        )

    def stop(self) -> None:
        """SIGTERM to pid 1 (the ``sleep`` ends); a second one powers off whatever is left inside."""
        for _ in range(2):
            if self.proc.poll() is not None:
                return
            try:
                os.kill(self.init_pid, 15)
                self.proc.wait(20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def two_hosts(tmp_path: Path) -> Iterator[tuple[Host, Host]]:
    hosts = (Host("node-a", tmp_path), Host("node-b", tmp_path))
    try:
        yield hosts
    finally:
        for host in hosts:
            host.stop()


def _record(path: Path) -> ServerRecord:
    record = ServerRecord.from_json(path.read_text())
    assert record is not None, path
    return record


@needs_namespaces
def test_two_hosts_over_one_home_keep_their_own_servers(tmp_path: Path, two_hosts: tuple[Host, Host]) -> None:
    node_a, node_b = two_hosts
    home, port = tmp_path / "home", _free_ports(4)
    env = _env(home, port, TRACR_PREFECT_PORT_FALLBACKS="3")
    env.pop("TRACR_GPU_HOST", None)  # each host is named by its own hostname
    hosts_dir = home / "prefect" / "hosts"
    try:
        started_a = node_a.tracr(["server", "start"], env)
        assert started_a.returncode == 0, started_a.stdout + started_a.stderr
        record_a = _record(hosts_dir / "node-a" / "server.json")
        assert record_a.port == port and record_a.host == "node-a"

        started_b = node_b.tracr(["server", "start"], env)
        assert started_b.returncode == 0, started_b.stdout + started_b.stderr
        assert "stale record" not in started_b.stderr, started_b.stderr  # node-a's record is not judged by node-b's pids
        assert f"port {port} is taken by another Prefect server" in started_b.stderr, started_b.stderr  # the shared loopback
        record_b = _record(hosts_dir / "node-b" / "server.json")
        assert record_b.port == port + 1 and record_b.host == "node-b"
        assert Path(record_a.db_path).parent == hosts_dir / "node-a" and Path(record_b.db_path).parent == hosts_dir / "node-b"

        for host, record in ((node_a, record_a), (node_b, record_b)):
            status = host.tracr(["server", "status"], env)
            assert status.returncode == 0, status.stdout + status.stderr
            assert f"running: {record.ui} (pid {record.pid}," in status.stdout, status.stdout
        assert _record(hosts_dir / "node-a" / "server.json") == record_a  # untouched by node-b
        assert not (home / "prefect" / "server.json").exists()

        for host, record in ((node_b, record_b), (node_a, record_a)):
            stopped = host.tracr(["server", "stop"], env)
            assert stopped.returncode == 0 and f"stopped the local Prefect server (pid {record.pid}" in stopped.stdout, stopped.stdout
    finally:
        for p in _server_processes(port) + _server_processes(port + 1):  # a failed test leaves no server behind
            try:
                os.killpg(p, 9)
            except (ProcessLookupError, PermissionError):
                pass
    assert not _server_processes(port) and not _server_processes(port + 1)
    assert sorted(os.listdir(hosts_dir)) == ["node-a", "node-b"]
