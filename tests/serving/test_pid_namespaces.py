"""Two workers in their own PID namespaces over one outputs root: their servers get the same pid.

Each host is ``unshare -u -p -f -m --mount-proc`` with ``tools/multihost/reaper.py``
as its pid 1 and ``tests/serving/namespaced_host.py`` as its worker (pid 2), so the
same steps give the same pids on both. The hosts either have ids of their own
(two machines, two ``unshare``-d workers) or share one (the flow-run containers of
one Docker host, which share ``TRACR_GPU_HOST`` and its GPUs). Servers are the
stand-in vLLM, on loopback ports both hosts reach. Needs root (``unshare``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from tracr.testing.fake_vllm import PASS_ENV, install_fake_vllm

REPO = Path(__file__).resolve().parents[2]
REAPER = REPO / "tools" / "multihost" / "reaper.py"


def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-u", "-p", "-f", "-m", "--mount-proc", "true"], capture_output=True)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(not _can_unshare(), reason="needs `unshare -u -p -f -m --mount-proc` (run as root)")


class Host:
    """One stand-in machine: a PID namespace whose worker answers commands (see namespaced_host.py)."""

    def __init__(self, name: str, host_id: str, outputs: Path, env: dict[str, str], log: Path) -> None:
        self.name = name
        self._log = open(log, "wb")
        self.log = log
        worker = [sys.executable, "-m", "tests.serving.namespaced_host", str(outputs)]
        self.proc = subprocess.Popen(
            ["unshare", "-u", "-p", "-f", "-m", "--mount-proc", sys.executable, str(REAPER), "--hostname", name, "--", *worker],
            env=env | {"TRACR_GPU_HOST": host_id},
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            start_new_session=True,
        )

    def call(self, *words: str) -> Any:
        stdin: IO[str] = self.proc.stdin  # type: ignore[assignment]
        stdout: IO[str] = self.proc.stdout  # type: ignore[assignment]
        stdin.write(" ".join(words) + "\n")
        stdin.flush()
        for line in stdout:
            if line.startswith("REPLY "):
                return json.loads(line[len("REPLY ") :])
        raise AssertionError(f"host {self.name} stopped answering: {self.log.read_text()[-3000:]}")

    def power_off(self) -> None:
        """SIGKILL to unshare and the namespace's pid 1: the kernel kills everything in the namespace."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self._log.close()


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[Any]:
    bin_dir = tmp_path / "bin"
    install_fake_vllm(bin_dir)
    outputs = tmp_path / "out"
    outputs.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACR_", "FAKE_VLLM_"))}
    env |= {"PATH": f"{bin_dir}{os.pathsep}{env['PATH']}", "TRACR_PASS_ENV": PASS_ENV, "PYTHONPATH": str(REPO)}
    started: list[Host] = []

    def start(name: str, host_id: str) -> Host:
        host = Host(name, host_id, outputs, env, tmp_path / f"{name}.log")
        started.append(host)
        return host

    start.outputs = outputs  # type: ignore[attr-defined]
    try:
        yield start
    finally:
        for host in started:
            host.power_off()


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _records(outputs: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((outputs / ".tracr" / "servers").rglob("*.json"))]


@pytest.mark.parametrize("cleanup", ["sweep", "crash-hook"])
@pytest.mark.parametrize("ids", [("node-a", "node-b"), ("node-a", "node-a")], ids=["two-host-ids", "one-host-id"])
def test_servers_with_the_same_pid_on_two_hosts_keep_their_own_records(hosts, ids, cleanup):
    a, b = hosts("node-a", ids[0]), hosts("node-b", ids[1])
    # A's server outlives its owner (a killed flow); B's owner lives. Same model, same steps.
    on_a = a.call("start", "org-m", "run-a", "gone")
    on_b = b.call("start", "org-m", "run-b", "self")
    assert on_a["pid"] == on_b["pid"], "the two namespaces did not give their servers the same pid: the test proves nothing"
    records = _records(hosts.outputs)
    assert sorted((r["host"], r["port"]) for r in records) == sorted([(ids[0], on_a["port"]), (ids[1], on_b["port"])])

    # B's sweep judges only records whose pids mean something in B: A's owner pid is dead in A, not in B.
    assert b.call("sweep") == []
    assert _answers(on_a["port"]) and _answers(on_b["port"]) and len(_records(hosts.outputs)) == 2

    # B's flow ends: it stops its own server and removes its own record, not A's.
    assert b.call("stop") == {"stopped": True}
    assert not _answers(on_b["port"])
    assert [r["port"] for r in _records(hosts.outputs)] == [on_a["port"]]
    assert _answers(on_a["port"])

    # A's clean-up still finds A's server by its record, and stops it.
    if cleanup == "sweep":
        assert [(r["pid"], r["action"]) for r in a.call("sweep")] == [(on_a["pid"], "stopped")]
    else:
        assert a.call("crash-hook", "run-a") == [on_a["pid"]]
    assert not _answers(on_a["port"])
    assert _records(hosts.outputs) == []


def test_a_claim_from_another_pid_namespace_of_this_host_is_not_taken_over(hosts):
    """Flow-run containers of one Docker host share its host id; a claim's pid from one means nothing in another."""
    a = hosts("node-a", "gpu-box")
    mine = a.call("claim", "digest-1")
    assert mine["acquired"] and mine["holder"]["pid"] == 2  # the worker, right after the namespace's pid 1
    b = hosts("node-b", "gpu-box")  # its pid 2 is alive too, and started later: by pid it looks like a dead owner's reuse
    theirs = b.call("claim", "digest-1")
    assert not theirs["acquired"] and theirs["holder"]["token"] == mine["holder"]["token"]
    assert a.call("claim", "digest-1")["holder"]["token"] == mine["holder"]["token"]  # A's own claim stands
