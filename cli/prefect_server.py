"""The tracr-managed local Prefect server: start it once, reuse it, replace it when stale, stop it.

Commands that need Prefect call :func:`connect` first. With ``PREFECT_API_URL``
set, that server is used as it is. Without it, the server named by the record
under this host's state folder (``tracr.local_prefect.LocalPrefectSettings``) is
reused when it is live, else a ``prefect server start`` is started in its own
session (so ``tracr server stop`` stops its whole process group) and waited for,
on the port this host used last when it is free (a fallback says who holds the
port). The check-or-start runs under an exclusive ``flock`` on a lock file, so
commands started at the same moment end up on one server. Every failure is a
:class:`~tracr.local_prefect.PrefectUnavailable` with one line to print.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx

from cli.listeners import command_of, listener_pid
from tracr.errors import ErrorClass
from tracr.local_prefect import (
    SHARED_STATE_NAMES,
    LocalPrefectSettings,
    PrefectUnavailable,
    Probe,
    ServerRecord,
    Verdict,
    candidate_ports,
    classify_start_log,
    judge_record,
    port_fallback_line,
    profile_api_url,
    read_port_memo,
    start_failure_hint,
)
from tracr.outputs.timestamps import utc_now
from tracr.serving.child_env import child_environment, host_pass_env
from tracr.serving.process_group import stop_group

__all__ = [
    "connect",
    "ensure_server",
    "stop_server",
    "server_state",
    "read_record",
    "probe_record",
    "as_prefect_failure",
    "has_active_flow_runs",
    "STATUS_HINT",
]

STATUS_HINT = "`tracr server status` shows the local server; `tracr server stop` then a new command restarts it"
_POLL_S = 0.25
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}  # servers this process started (reaped so they leave no zombie)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- the record


def read_record(settings: LocalPrefectSettings) -> ServerRecord | None:
    try:
        return ServerRecord.from_json(settings.record_path.read_text())
    except FileNotFoundError:
        return None


def _write_atomic(path: Path, text: str) -> None:
    """Written to a temporary file and renamed: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _write_record(settings: LocalPrefectSettings, record: ServerRecord) -> None:
    _write_atomic(settings.record_path, record.to_json())


def _remembered_port(settings: LocalPrefectSettings) -> int | None:
    try:
        return read_port_memo(settings.port_path.read_text())
    except OSError:
        return None


@contextlib.contextmanager
def _locked(settings: LocalPrefectSettings) -> Iterator[None]:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say("waiting for another tracr command that is starting or stopping the local Prefect server…")
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, and by the kernel if this process dies
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ----------------------------------------------------------------------------- probes


def _pid_alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited: its pid answers signals but it serves nothing
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _is_prefect_server(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return sys.platform != "linux"  # no /proc: trust the pid and the health probe
    joined = b" ".join(argv)
    return b"prefect" in joined and b"server" in joined and b"start" in joined


def _health(url: str, timeout: float = 2.0) -> tuple[bool, str | None]:
    """Whether ``<url>/health`` answers ``true``, and the version ``<url>/admin/version`` gives."""
    try:
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            health = client.get(f"{url}/health")
            if health.status_code != 200 or health.json() is not True:
                return False, None
            version = client.get(f"{url}/admin/version")
            return True, (version.json() if version.status_code == 200 and isinstance(version.json(), str) else None)
    except (httpx.HTTPError, ValueError):
        return False, None


def probe_record(record: ServerRecord) -> Probe:
    if not record.of_this_host:  # its pid and loopback URL are another machine's: nothing here can judge them
        return Probe(pid_alive=False, pid_is_prefect_server=False, health_ok=False, this_host=False)
    alive = _pid_alive(record.pid)
    prefect = alive and _is_prefect_server(record.pid)
    ok, version = _health(record.url) if prefect else (False, None)
    return Probe(pid_alive=alive, pid_is_prefect_server=prefect, health_ok=ok, version=version)


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _port_holder(host: str, port: int) -> str:
    """Who holds a port, in words: a Prefect server or another process, with its pid and command when visible."""
    ok, version = _health(f"http://{host}:{port}/api", timeout=1.0)
    what = ["another Prefect server", f"Prefect {version}"] if ok and version else ["another process"]
    pid = listener_pid(port)
    command = command_of(pid) if pid is not None else None
    details = [*what[1:], *([f"pid {pid}: {command}"] if command else [])]
    return f"{what[0]} ({'; '.join(details)})" if details else what[0]


# ----------------------------------------------------------------------------- start and stop


def _prefect_command(host: str, port: int) -> list[str]:
    """``prefect server start`` in this interpreter, through ``cli.prefect_server_process``: it gives the server
    SQLite transactions that wait for the write lock instead of logging ``database is locked`` (see that module)."""
    return [sys.executable, "-m", "cli.prefect_server_process", "server", "start", "--host", host, "--port", str(port)]


def _log_tail(path: Path, since: int = 0, limit: int = 20_000) -> str:
    """The log written after offset ``since`` (this start's output), at most its last ``limit`` bytes."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(since, path.stat().st_size - limit))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"


def _start(settings: LocalPrefectSettings) -> ServerRecord:
    """Start a server on the first free candidate port and wait for its health (the caller holds the lock)."""
    remembered = _remembered_port(settings)
    ports = candidate_ports(settings, remembered)
    port = next((p for p in ports if _port_free(settings.host, p)), None)
    if port is None:
        span = f"port {ports[0]}" if len(ports) == 1 else f"ports {ports[0]}–{ports[-1]}"
        raise PrefectUnavailable(
            f"cannot start the local Prefect server: {span} on {settings.host} are taken by other processes",
            error_class=ErrorClass.PORT_IN_USE,
            hint="free the port, or set TRACR_PREFECT_PORT (and TRACR_PREFECT_PORT_FALLBACKS) to others; " + STATUS_HINT,
        )
    if port != ports[0]:
        _say(port_fallback_line(ports[0], port, _port_holder(settings.host, ports[0]), remembered=ports[0] == remembered))
    (settings.state_dir / "home").mkdir(parents=True, exist_ok=True)
    _say(f"starting the local Prefect server on port {port}… (first start takes a while; log: {settings.log_path})")
    log_start = settings.log_path.stat().st_size if settings.log_path.exists() else 0
    with open(settings.log_path, "ab") as log:
        log.write(f"\n--- {utc_now()} tracr starts prefect server on port {port}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            _prefect_command(settings.host, port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop takes the uvicorn workers and services with it
            # Prefect's own settings and the runtime basics; no model keys (tracr/serving/child_env.py).
            env=child_environment(os.environ, wanted=("PREFECT_*", *host_pass_env(os.environ)), set_env=settings.server_env(port)),
            cwd=settings.state_dir,
        )
    _CHILDREN[proc.pid] = proc
    url = f"http://{settings.host}:{port}/api"
    started = time.monotonic()
    while True:
        if proc.poll() is not None:
            tail = _log_tail(settings.log_path, since=log_start)
            known = classify_start_log(tail, str(settings.db_path))
            what, todo = known if known else (f"it exited with code {proc.returncode} ({_last_line(tail)})", start_failure_hint(settings))
            raise PrefectUnavailable(
                f"the local Prefect server could not start: {what}",
                error_class=ErrorClass.SERVER_START,
                hint=f"{todo}; log: {settings.log_path}",
            )
        ok, version = _health(url)
        if ok and version:
            record = ServerRecord(
                pid=proc.pid,
                port=port,
                url=url,
                started_at=utc_now(),
                db_path=str(settings.db_path),
                version=version,
                host=settings.host_id or None,
            )
            _write_record(settings, record)
            _write_atomic(settings.port_path, f"{port}\n")  # the next start prefers it: links keep working
            _say(f"local Prefect server ready in {time.monotonic() - started:.0f} s: {record.ui}")
            return record
        if time.monotonic() - started > settings.start_timeout_s:
            stop_group(proc.pid, grace_s=10, reap=proc.poll)
            raise PrefectUnavailable(
                f"the local Prefect server did not answer {url}/health within {settings.start_timeout_s:.0f} s",
                error_class=ErrorClass.TIMEOUT,
                hint=f"a loaded machine starts it slowly: raise TRACR_PREFECT_START_TIMEOUT_S; see {settings.log_path}",
            )
        time.sleep(_POLL_S)


def _stop_pid(pid: int, grace_s: float = 15.0) -> None:
    child = _CHILDREN.pop(pid, None)
    stop_group(pid, grace_s=grace_s, reap=(child.poll if child else lambda: None))
    if child is not None:
        child.wait(timeout=5)


def _adopt_shared_state(settings: LocalPrefectSettings) -> None:
    """State written before host ids (in the home's shared folder) becomes the first host's that needs a server.

    A live server recorded there is adopted as it runs (its record moves; its
    database stays where it is open); otherwise, unless this host has a database
    of its own already, the database, log, port and Prefect home move into this
    host's folder, so the history is kept. The caller holds this host's lock; the
    shared folder's lock (which tracr before host ids takes) is held meanwhile.
    """
    shared = settings.shared()
    if shared is None or settings.record_path.exists():
        return
    if not shared.record_path.exists() and not shared.db_path.exists():
        return
    with _locked(shared):
        record = read_record(shared)
        verdict = judge_record(probe_record(record)) if record is not None else None
        if record is not None and verdict == Verdict.LIVE:
            _write_record(settings, replace(record, host=settings.host_id or None))
            _write_atomic(settings.port_path, f"{record.port}\n")
            shared.record_path.unlink(missing_ok=True)
            return
        if verdict in (Verdict.STARTING, Verdict.OTHER_HOST):
            return  # not ours to move now
        shared.record_path.unlink(missing_ok=True)  # stale
        if settings.db_path.exists():
            return
        moved = [name for name in SHARED_STATE_NAMES if (shared.state_dir / name).exists()]
        for name in moved:
            os.replace(shared.state_dir / name, settings.state_dir / name)
        if moved:
            _say(f"moved the local Prefect server's state from {shared.state_dir} to {settings.state_dir} (one folder per host)")


def _other_host(settings: LocalPrefectSettings, record: ServerRecord) -> PrefectUnavailable:
    return PrefectUnavailable(
        f"{settings.record_path} records a Prefect server of host {record.host}, not of this host ({settings.host_id or 'unnamed'}); "
        "tracr neither uses nor replaces it",
        error_class=ErrorClass.STATE,
        hint="two machines have the same host id: set TRACR_GPU_HOST to a name of this machine's own",
    )


def ensure_server(settings: LocalPrefectSettings | None = None) -> ServerRecord:
    """The live local server: the recorded one, or a new one when there is none or the record is stale."""
    settings = settings or LocalPrefectSettings.from_env()
    with _locked(settings):
        _adopt_shared_state(settings)
        record = read_record(settings)
        if record is not None:
            verdict = judge_record(probe_record(record))
            if verdict == Verdict.OTHER_HOST:
                raise _other_host(settings, record)
            if verdict == Verdict.STARTING:  # a Prefect server that stopped answering (or its starter died mid-start)
                deadline = time.monotonic() + min(30.0, settings.start_timeout_s)
                while verdict == Verdict.STARTING and time.monotonic() < deadline:
                    time.sleep(0.5)
                    verdict = judge_record(probe_record(record))
                if verdict == Verdict.STARTING:
                    _say(f"the local Prefect server (pid {record.pid}) does not answer; replacing it")
                    _stop_pid(record.pid)
            if verdict == Verdict.LIVE:
                return record
            if verdict in (Verdict.DEAD, Verdict.FOREIGN):
                _say(f"replacing a stale record of the local Prefect server ({verdict.value}: pid {record.pid}, port {record.port})")
            settings.record_path.unlink(missing_ok=True)
        return _start(settings)


def stop_server(settings: LocalPrefectSettings | None = None, grace_s: float = 15.0) -> str:
    """Stop the recorded server's process group and remove its record; returns what was done."""
    settings = settings or LocalPrefectSettings.from_env()
    with _locked(settings):
        _adopt_shared_state(settings)
        record = read_record(settings)
        if record is None:
            return "the local Prefect server is not running (no record)"
        if not record.of_this_host:
            raise _other_host(settings, record)
        if _pid_alive(record.pid) and _is_prefect_server(record.pid):
            _stop_pid(record.pid, grace_s)
            deadline = time.monotonic() + 10
            while not _port_free(settings.host, record.port) and time.monotonic() < deadline:
                time.sleep(0.1)
            done = f"stopped the local Prefect server (pid {record.pid}, port {record.port})"
        else:
            done = f"the local Prefect server was not running (stale record of pid {record.pid} removed)"
        settings.record_path.unlink(missing_ok=True)
        return done


def server_state(settings: LocalPrefectSettings | None = None) -> tuple[Verdict | None, ServerRecord | None]:
    """The record and what it is worth now (None, None: no record), without starting anything."""
    settings = settings or LocalPrefectSettings.from_env()
    shared = settings.shared()
    if shared is not None and not settings.record_path.exists() and (shared.record_path.exists() or shared.db_path.exists()):
        with _locked(settings):
            _adopt_shared_state(settings)
    record = read_record(settings)
    return (judge_record(probe_record(record)), record) if record else (None, None)


def connect(*, ephemeral: bool = False, settings: LocalPrefectSettings | None = None) -> str | None:
    """Point this process at a Prefect API before Prefect is imported; returns the API URL (None: ephemeral).

    ``PREFECT_API_URL`` already set (environment, else the active Prefect profile) wins;
    ``ephemeral`` keeps Prefect's throwaway server.
    """
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    if ephemeral:
        return None
    if configured := profile_api_url():  # `prefect config set PREFECT_API_URL=…`: Prefect reads it itself
        return configured
    record = ensure_server(settings)
    os.environ["PREFECT_API_URL"] = record.url
    return record.url


def has_active_flow_runs(api_url: str, tag: str, timeout: float = 10.0) -> bool | None:
    """Whether any active top-level flow run carries ``tag``, asked over plain HTTP (no Prefect import: ~0.1 s).

    None when the question could not be answered this way (then ask through Prefect's client).
    """
    body = {
        "flow_runs": {
            "tags": {"all_": [tag]},
            "state": {"type": {"any_": ["SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING"]}},
            "parent_task_run_id": {"is_null_": True},
        },
        "limit": 1,
    }
    headers = {"Authorization": f"Bearer {os.environ['PREFECT_API_KEY']}"} if os.environ.get("PREFECT_API_KEY") else {}
    try:
        response = httpx.post(f"{api_url.rstrip('/')}/flow_runs/filter", json=body, headers=headers, timeout=timeout, trust_env=False)
        return bool(response.json()) if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


# ----------------------------------------------------------------------------- failures to reach Prefect


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack += [e for e in (current.__cause__, current.__context__) if e is not None]
        stack += list(getattr(current, "exceptions", ()) or ())


def _hint_for(api_url: str | None) -> str:
    try:
        record = read_record(LocalPrefectSettings.from_env())
    except Exception:
        record = None
    if api_url and (record is None or record.url != api_url):
        return "check that PREFECT_API_URL (environment or Prefect profile) names a running server, or unset it to use tracr's local one"
    return STATUS_HINT


def as_prefect_failure(exc: BaseException, api_url: str | None) -> PrefectUnavailable | None:
    """The one-line error for an exception that means Prefect could not be reached; None for anything else."""
    for current in _chain(exc):
        if isinstance(current, PrefectUnavailable):
            return current
        text = str(current)
        if isinstance(current, RuntimeError) and "ephemeral Prefect API server" in text:
            return PrefectUnavailable(
                f"Prefect's temporary server did not start: {text}", hint="drop --ephemeral to use the local server tracr keeps running"
            )
        if isinstance(current, (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout, httpx.RemoteProtocolError)):
            request = getattr(current, "_request", None)
            target = str(request.url) if request is not None else ""
            if api_url and target and not target.startswith(api_url.rstrip("/")):
                continue  # a model endpoint, not Prefect
            return PrefectUnavailable(
                f"cannot reach the Prefect API at {api_url or '(ephemeral)'}: {type(current).__name__}: {text or 'no answer'}",
                hint=_hint_for(api_url),
            )
        if type(current).__name__ == "PrefectHTTPStatusError" and " 5" in text[:40]:
            return PrefectUnavailable(f"the Prefect API at {api_url} failed: {_last_line(text)}", hint=_hint_for(api_url))
    return None


def server_report(settings: LocalPrefectSettings | None = None) -> tuple[bool, str]:
    """``(ok, one line)`` about the local server for ``tracr server status`` and ``tracr doctor``."""
    settings = settings or LocalPrefectSettings.from_env()
    verdict, record = server_state(settings)
    if record is None:
        return False, f"not running (no record in {settings.state_dir}); the next tracr run starts it"
    if verdict == Verdict.LIVE:
        return (
            True,
            f"running: {record.ui} (pid {record.pid}, Prefect {record.version}, since {record.started_at}, database {record.db_path})",
        )
    if verdict == Verdict.STARTING:
        return False, f"starting or not answering: pid {record.pid}, {record.url}"
    if verdict == Verdict.OTHER_HOST:
        return False, _other_host(settings, record).one_line()
    return (
        False,
        f"not running: stale record ({verdict.value if verdict else 'unknown'}: pid {record.pid}, port {record.port}); the next tracr run replaces it",
    )
