"""PID files for local servers, so a server left behind by a killed flow is found and stopped.

Child processes outlive a flow process that is SIGKILLed (Prefect does not kill
them). Every server tracr starts is recorded in its host's folder,
``<outputs root>/.tracr/servers/<host>/<key>-<pid>-ns<pid namespace>.json``, with
its host, PID namespace, pid, process group, port, command line and the pid of
the tracr process that owns it; the file is removed when the server is stopped.
Workers in their own PID namespaces (containers, ``unshare``) over one outputs
root get the same small pids, so a pid alone names nothing: host and namespace
in the name keep one worker's record from overwriting (and, when its server
stops, deleting) another's.

Before starting a server, this host's records whose owner is gone are swept: the
recorded process is stopped, but only if it is still running the recorded command
line (a recycled pid is left alone). Records whose pids mean nothing here (another
host's, or another PID namespace's under the same host id) are never judged or
touched; their own host or namespace sweeps them.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tracr.outputs.files import write_json_atomic
from tracr.outputs.layout import OutputLayout
from tracr.serving.host import host_id, normalise_host, pid_namespace, pids_are_ours
from tracr.serving.process_group import group_alive, stop_group

__all__ = [
    "ServerRecord",
    "servers_dir",
    "record_path",
    "write_record",
    "remove_record",
    "sweep_stale_servers",
    "stop_servers_of_flow_run",
    "process_cmdline",
]


@dataclass
class ServerRecord:
    """One running server as written to its PID file."""

    key: str
    pid: int
    pgid: int
    port: int
    command: list[str]
    owner_pid: int
    owner_cmdline: list[str] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    container: str | None = None
    flow_run_id: str | None = None
    host: str = field(default_factory=host_id)  # "" in records from before host ids: treated as this host's
    pid_ns: str = field(default_factory=pid_namespace)  # "" in records from before: treated as this namespace's

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def servers_dir(outputs_root: Path) -> Path:
    return OutputLayout(Path(outputs_root)).servers_dir


def record_path(outputs_root: Path, record: ServerRecord) -> Path:
    """The record's own file: in its host's folder, named by key, pid and PID namespace (unique per server)."""
    folder = OutputLayout(Path(outputs_root)).host_servers_dir(normalise_host(record.host or host_id()))
    return folder / f"{record.key}-{record.pid}{f'-ns{record.pid_ns}' if record.pid_ns else ''}.json"


def _this_hosts_files(outputs_root: Path) -> list[Path]:
    """This host's records, then flat ones written before host folders (whichever host wrote them)."""
    layout = OutputLayout(Path(outputs_root))
    folders = (layout.host_servers_dir(host_id()), layout.servers_dir)
    return [path for folder in folders if folder.is_dir() for path in sorted(folder.glob("*.json"))]


def process_cmdline(pid: int) -> list[str] | None:
    """The command line of a live process (Linux ``/proc``); None when gone or unreadable."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part] or None


def write_record(outputs_root: Path, record: ServerRecord) -> Path:
    path = record_path(outputs_root, record)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, record.to_dict())
    return path


def remove_record(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)


def _same_command(actual: list[str] | None, recorded: list[str]) -> bool:
    """Whether a live process still runs what was recorded (shebang scripts run as ``sh script args``)."""
    if not actual or not recorded:
        return False
    tail = recorded[1:]
    return actual == recorded or (bool(tail) and actual[-len(tail) :] == tail)


def _reap(pid: int) -> None:
    """Collect the leader's exit status when this process is its parent (a zombie keeps its group alive)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _stop_group(pgid: int, grace_s: float) -> None:
    if stop_group(pgid, grace_s, lambda: _reap(pgid)):
        time.sleep(0.1)  # let the killed leader exit, then collect it
        _reap(pgid)


def _read_record(path: Path) -> ServerRecord | None:
    try:
        return ServerRecord(**{"host": "", "pid_ns": "", **json.loads(path.read_text(encoding="utf-8"))})
    except (OSError, ValueError, TypeError):
        return None


def sweep_stale_servers(outputs_root: Path, grace_s: float = 10.0) -> list[dict[str, Any]]:
    """Stop this host's servers whose owning tracr process is gone; returns what was found and done."""
    found: list[dict[str, Any]] = []
    for path in _this_hosts_files(outputs_root):
        record = _read_record(path)
        if record is None:
            if path.exists() and time.time() - path.stat().st_mtime > 60:
                path.unlink(missing_ok=True)  # unreadable for a minute: not a write in progress elsewhere
            continue
        if not pids_are_ours(record.host, record.pid_ns):
            continue  # another host's or PID namespace's: judged and swept there
        owner = process_cmdline(record.owner_pid)
        if owner is not None and (not record.owner_cmdline or owner == record.owner_cmdline):
            continue  # its tracr process is alive: not stale
        leader = process_cmdline(record.pid)
        if record.container:
            action = "container"  # removed by the docker runtime's sweep (by label)
        elif _same_command(leader, record.command):
            _stop_group(record.pgid, grace_s)
            action = "stopped"
        elif leader is None and group_alive(record.pgid):
            # The leader died but its children (vLLM's EngineCore) hold the group; a group id
            # is not reused while the group exists, so these are still the server's processes.
            _stop_group(record.pgid, grace_s)
            action = "stopped orphaned children"
        elif leader is not None:
            action = "pid reused by another program: left alone"
        else:
            action = "gone"
        found.append({"file": path.name, "pid": record.pid, "port": record.port, "action": action, "container": record.container})
        path.unlink(missing_ok=True)
    return found


def stop_servers_of_flow_run(outputs_root: Path, flow_run_id: str, grace_s: float = 8.0) -> list[int]:
    """Stop every server a given flow run started (a cancel/crash hook's backstop); returns their pids."""
    stopped = []
    for path in _this_hosts_files(outputs_root):
        record = _read_record(path)
        if record is None or record.flow_run_id != flow_run_id or record.container or not pids_are_ours(record.host, record.pid_ns):
            continue
        if _same_command(process_cmdline(record.pid), record.command) or (process_cmdline(record.pid) is None and group_alive(record.pgid)):
            _stop_group(record.pgid, grace_s)
            stopped.append(record.pid)
        path.unlink(missing_ok=True)
    return stopped
