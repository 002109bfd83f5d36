"""Several stand-in GPU hosts on one machine, sharing one Prefect server on PostgreSQL.

What it starts (and stops again, in reverse order):

* PostgreSQL 15 (Debian's cluster ``15 main``, started with ``pg_ctlcluster`` only
  if it is down, and stopped at the end only then), a role and a database of its
  own (dropped at the end);
* a Prefect server on it (``PREFECT_SERVER_DATABASE_CONNECTION_URL=postgresql+asyncpg://…``),
  on a free loopback port, with a private ``PREFECT_HOME``;
* per host, ``unshare -u -p -f -m --mount-proc`` + ``reaper.py`` (pid 1, hostname
  set inside) running ``prefect worker start --pool … --work-queue <host>``, with
  ``TRACR_GPU_HOST=<host>``, ``TRACR_GPUS`` (declared GPUs), one shared outputs
  root, and the stand-in ``vllm`` first on PATH.

Used by ``tests/multihost/test_several_hosts.py``; also runnable by hand::

    python tools/multihost/cluster.py --hosts node-a:2 node-b:1 --keep   # prints the API URL, Ctrl-C stops
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
REAPER = Path(__file__).with_name("reaper.py")
PG_VERSION, PG_CLUSTER = "15", "main"
POOL = "tracr-process"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _psql(sql: str, db: str = "postgres") -> str:
    out = subprocess.run(
        ["su", "postgres", "-c", f"psql -v ON_ERROR_STOP=1 -qtAX -d {db} -c {json.dumps(sql)}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if out.returncode != 0:
        raise RuntimeError(f"psql failed ({sql}): {out.stderr.strip()}")
    return out.stdout.strip()


def postgres_status() -> str | None:
    """``online`` / ``down`` for cluster 15 main, None when PostgreSQL 15 is not installed."""
    if not shutil.which("pg_lsclusters"):
        return None
    out = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        parts = line.split()
        if parts[:2] == [PG_VERSION, PG_CLUSTER]:
            return parts[3]
    return None


@dataclass
class Postgres:
    """A role and database of our own on the local cluster; ``started`` when we started the cluster."""

    role: str = field(default_factory=lambda: f"tracr_mh_{uuid.uuid4().hex[:8]}")
    password: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: bool = False
    port: int = 5432

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{self.role}:{self.password}@127.0.0.1:{self.port}/{self.role}"

    def start(self) -> None:
        status = postgres_status()
        if status is None:
            raise RuntimeError("PostgreSQL 15 is not installed (apt-get install -y postgresql)")
        if status != "online":
            subprocess.run(["pg_ctlcluster", PG_VERSION, PG_CLUSTER, "start"], check=True, timeout=120)
            self.started = True
        self.port = int(_psql("SHOW port"))
        _psql(f"CREATE ROLE {self.role} LOGIN PASSWORD '{self.password}'")
        _psql(f"CREATE DATABASE {self.role} OWNER {self.role}")
        _psql("CREATE EXTENSION IF NOT EXISTS pg_trgm", db=self.role)

    def stop(self) -> None:
        try:
            _psql(f"DROP DATABASE IF EXISTS {self.role} WITH (FORCE)")
            _psql(f"DROP ROLE IF EXISTS {self.role}")
        finally:
            if self.started:
                subprocess.run(["pg_ctlcluster", PG_VERSION, PG_CLUSTER, "stop"], timeout=120)


def _stop_group(proc: subprocess.Popen[bytes], grace_s: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)


@dataclass
class Host:
    """One stand-in machine: its namespace's pid 1 (the reaper) as seen from outside."""

    name: str
    gpus: int
    proc: subprocess.Popen[bytes]
    log: Path

    def reaper_pid(self) -> int | None:
        """The host's pid 1 as seen from outside (``unshare -f`` forks it)."""
        inner = _children(self.proc.pid)
        return inner[0] if inner else None

    def pids(self) -> list[int]:
        """Every live process of this host's PID namespace (outside pids), the reaper included."""
        reaper = self.reaper_pid()
        try:
            ns = os.readlink(f"/proc/{reaper}/ns/pid") if reaper else None
        except OSError:
            ns = None
        if ns is None:
            return []
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.readlink(entry / "ns/pid") == ns and (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(entry.name))
            except (OSError, IndexError):
                continue
        return sorted(found)

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM the worker (through the reaper), then power the host off (SIGKILL to all inside)."""
        reaper = self.reaper_pid()
        for _ in range(2):
            if self.proc.poll() is not None or reaper is None:
                break
            try:
                os.kill(reaper, signal.SIGTERM)  # 1st: to the command; once it is gone: power off
            except ProcessLookupError:
                break
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                continue
        if self.proc.poll() is None:
            if reaper is not None:
                try:
                    os.kill(reaper, signal.SIGKILL)  # pid 1 gone: the kernel kills the namespace
                except ProcessLookupError:
                    pass
            self.proc.kill()
            self.proc.wait(10)

    def processes(self) -> list[tuple[int, str]]:
        out = []
        for pid in self.pids():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                continue
            out.append((pid, cmd))
        return out


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def process_env(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(part.decode(errors="replace").split("=", 1) for part in raw.split(b"\0") if b"=" in part)


@dataclass
class Cluster:
    """PostgreSQL + a Prefect server + hosts; ``env`` is what clients (submitters) use."""

    work: Path
    outputs: Path
    bin_dir: Path
    records: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    postgres: Postgres = field(default_factory=Postgres)
    server: subprocess.Popen[bytes] | None = None
    api_url: str = ""
    hosts: dict[str, Host] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TRACR_", "FAKE_VLLM_"))}
        env.update(
            PREFECT_HOME=str(self.work / "prefect-home"),
            PREFECT_API_URL=self.api_url,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            DO_NOT_TRACK="1",
            PREFECT_LOGGING_LEVEL="INFO",
            TRACR_OUTPUTS=str(self.outputs),
            PATH=f"{self.bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            FAKE_VLLM_RECORD=str(self.records),
            TRACR_PASS_ENV="FAKE_VLLM_*,TRACR_GPU_HOST",  # servers get an allow list; the fake is scripted by these
            PYTHONPATH=str(REPO),
        )
        env.update(self.extra_env)
        return env

    def start_server(self, timeout_s: float = 120.0) -> None:
        self.postgres.start()
        port = _free_port()
        self.api_url = f"http://127.0.0.1:{port}/api"
        env = self.env | {
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": self.postgres.url,
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_SERVER_API_PORT": str(port),
        }
        log = open(self.work / "prefect-server.log", "wb")
        self.server = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.work,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(f"prefect server exited: {(self.work / 'prefect-server.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError("prefect server did not answer in time")

    def prefect(self, *args: str, timeout_s: float = 180.0, cwd: Path = REPO) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "prefect", *args], env=self.env, cwd=cwd, capture_output=True, text=True, timeout=timeout_s
        )
        if out.returncode != 0:
            raise RuntimeError(f"prefect {' '.join(args)} failed: {out.stdout[-2000:]} {out.stderr[-3000:]}")
        return out.stdout

    def deploy(self) -> None:
        """The operator's steps: the process pool, then ``prefect deploy`` of ``ocr-job/process`` from the checkout."""
        self.prefect("work-pool", "create", POOL, "--type", "process")
        self.prefect("deploy", "--prefect-file", "deployments/prefect.yaml", "--name", "process")

    def start_host(self, name: str, gpus: int, *, limit: int = 2, env: dict[str, str] | None = None, private_outputs: bool = False) -> Host:
        """A worker in its own hostname/PID/mount namespaces, polling work queue ``name``.

        ``private_outputs``: mount a tmpfs over the outputs path inside this host only (a machine
        that forgot to mount the shared root: same path, another filesystem).
        """
        records = self.records / name  # pids are per namespace: one records folder per host
        records.mkdir(parents=True, exist_ok=True)
        host_env = self.env | {"TRACR_GPU_HOST": name, "TRACR_GPUS": f"{gpus}x80GB", "FAKE_VLLM_RECORD": str(records)} | (env or {})
        log_path = self.work / f"host-{name}.log"
        log = open(log_path, "wb")
        worker = [
            sys.executable,
            "-m",
            "prefect",
            "worker",
            "start",
            "--pool",
            POOL,
            "--work-queue",
            name,
            "--limit",
            str(limit),
            "--name",
            f"worker-{name}",
        ]
        # Publish this host's GPUs (its limits) first, so placement can see it, then become the worker.
        script = f"{Path(sys.executable).parent / 'tracr'} gpus publish && exec {' '.join(worker)}"
        if private_outputs:
            script = f"mount -t tmpfs tracr-private {self.outputs} && {script}"
        proc = subprocess.Popen(
            ["unshare", "-u", "-p", "-f", "-m", "--mount-proc", sys.executable, str(REAPER), "--hostname", name, "--", "sh", "-c", script],
            env=host_env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        host = Host(name, gpus, proc, log_path)
        self.hosts[name] = host
        return host

    def retire(self, name: str) -> None:
        """Power a host off for good (after a test killed it): later waits no longer expect its worker."""
        self.hosts.pop(name).stop()

    def wait_workers(self, timeout_s: float = 120.0) -> None:
        """Until every host's worker has polled the server (its queue exists and is ready)."""
        deadline = time.monotonic() + timeout_s
        names = set(self.hosts)
        while time.monotonic() < deadline:
            for host in self.hosts.values():
                if host.proc.poll() is not None:
                    raise RuntimeError(f"host {host.name} exited: {host.log.read_text()[-3000:]}")
            r = httpx.post(f"{self.api_url}/work_pools/{POOL}/workers/filter", json={}, timeout=10)
            seen = {w["name"].removeprefix("worker-") for w in r.json()} if r.status_code == 200 else set()
            if names <= seen:
                return
            time.sleep(1)
        raise RuntimeError(f"workers did not start: {names - seen}")

    def stop(self) -> None:
        for host in self.hosts.values():
            host.stop()
        if self.server is not None:
            _stop_group(self.server)
        self.postgres.stop()


def main() -> int:  # pragma: no cover - by hand
    import argparse
    import tempfile

    from tracr.testing.fake_vllm import install_fake_vllm

    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", nargs="+", default=["node-a:2", "node-b:1"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tracr-multihost-"))
    cluster = Cluster(work=work, outputs=work / "outputs", bin_dir=work / "bin", records=work / "records")
    install_fake_vllm(cluster.bin_dir)
    cluster.records.mkdir()
    try:
        cluster.start_server()
        cluster.deploy()
        for spec in args.hosts:
            name, gpus = spec.split(":")
            cluster.start_host(name, int(gpus))
        cluster.wait_workers()
        print(f"PREFECT_API_URL={cluster.api_url} TRACR_OUTPUTS={cluster.outputs} (work folder {work}); Ctrl-C stops", flush=True)
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
