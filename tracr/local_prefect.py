"""The tracr-managed local Prefect server: where it lives, its record, and when a record is stale.

Pure decisions only (no processes, no sockets): ``cli/prefect_server.py`` does the
I/O and asks this module what it means. A record is the JSON file naming the
server tracr started (pid, port, url, when, which database, which host); the server
is reused while its record is *live* and replaced when it is *stale*.

A home folder may be shared by several machines (a cluster's NFS home), and each
machine's server listens on its own loopback with its own pids, so the state is
kept per host (``<home>/prefect/hosts/<host id>/``, the id of
:mod:`tracr.serving.host`): one host never reads, judges or replaces another's
record, and never opens another's SQLite database.
"""

from __future__ import annotations

import json
import os
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from tracr.errors import ErrorClass, TracrError
from tracr.serving.host import HOST_ENV, is_this_host, normalise_host

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_START_TIMEOUT_S",
    "DEFAULT_PORT_FALLBACKS",
    "LocalPrefectSettings",
    "ServerRecord",
    "Probe",
    "Verdict",
    "judge_record",
    "candidate_ports",
    "read_port_memo",
    "port_fallback_line",
    "ui_url",
    "flow_run_url",
    "PrefectUnavailable",
    "start_failure_hint",
    "classify_start_log",
    "profile_api_url",
]

DEFAULT_PORT = 4270
DEFAULT_PORT_FALLBACKS = 10
DEFAULT_START_TIMEOUT_S = 180.0
RECORD_NAME = "server.json"
LOCK_NAME = "server.lock"
LOG_NAME = "server.log"
DB_NAME = "prefect.db"
PORT_NAME = "server.port"  # the port this host's server last listened on, kept across stops (links stay valid)
HOSTS_DIR = "hosts"
#: What moves from a home's shared folder (state written before host ids) into the first host's folder.
SHARED_STATE_NAMES = (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", LOG_NAME, PORT_NAME, "home")


class PrefectUnavailable(TracrError):
    """Prefect could not be reached or started: one line, with what to do."""

    default_class = ErrorClass.PREFECT


@dataclass(frozen=True)
class LocalPrefectSettings:
    """Where this host's local server keeps its state and how it is started (all from the environment).

    ``state_dir`` is this host's own folder; ``shared_dir`` the home's folder above
    it, where tracr kept the state before host ids (moved into the first host's
    folder that starts a server; None: nothing to move).
    """

    state_dir: Path
    port: int = DEFAULT_PORT
    port_fallbacks: int = DEFAULT_PORT_FALLBACKS
    start_timeout_s: float = DEFAULT_START_TIMEOUT_S
    host: str = "127.0.0.1"
    host_id: str = ""  # this host's id (tracr.serving.host); "" when the settings were made by hand
    shared_dir: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LocalPrefectSettings:
        """``TRACR_HOME`` (state under ``$TRACR_HOME/prefect/hosts/<host id>``), else ``$XDG_STATE_HOME/tracr/prefect/…``
        or ``~/.local/state/tracr/prefect/…``; the host id is ``TRACR_GPU_HOST`` or the hostname;
        ``TRACR_PREFECT_PORT`` (default 4270), ``TRACR_PREFECT_PORT_FALLBACKS`` (further ports tried
        when it is taken, default 10; 0 = none), ``TRACR_PREFECT_START_TIMEOUT_S`` (default 180)."""
        env = os.environ if env is None else env
        if env.get("TRACR_HOME"):
            shared = Path(env["TRACR_HOME"]).expanduser() / "prefect"
        else:
            base = Path(env["XDG_STATE_HOME"]).expanduser() if env.get("XDG_STATE_HOME") else Path.home() / ".local" / "state"
            shared = base / "tracr" / "prefect"
        host_id = normalise_host(env.get(HOST_ENV) or socket.gethostname())
        return cls(
            state_dir=shared / HOSTS_DIR / host_id,
            host_id=host_id,
            shared_dir=shared,
            port=_number(env, "TRACR_PREFECT_PORT", DEFAULT_PORT, int),
            port_fallbacks=max(0, _number(env, "TRACR_PREFECT_PORT_FALLBACKS", DEFAULT_PORT_FALLBACKS, int)),
            start_timeout_s=_number(env, "TRACR_PREFECT_START_TIMEOUT_S", DEFAULT_START_TIMEOUT_S, float),
        )

    @property
    def record_path(self) -> Path:
        return self.state_dir / RECORD_NAME

    @property
    def lock_path(self) -> Path:
        return self.state_dir / LOCK_NAME

    @property
    def log_path(self) -> Path:
        return self.state_dir / LOG_NAME

    @property
    def db_path(self) -> Path:
        return self.state_dir / DB_NAME

    @property
    def port_path(self) -> Path:
        return self.state_dir / PORT_NAME

    def shared(self) -> LocalPrefectSettings | None:
        """The settings of the home's shared folder (where the state lived before host ids), or None."""
        return None if self.shared_dir is None else LocalPrefectSettings(state_dir=self.shared_dir, host=self.host)

    def server_env(self, port: int) -> dict[str, str]:
        """The environment the server process gets on top of ours: its database, home, port, no telemetry."""
        return {
            "PREFECT_HOME": str(self.state_dir / "home"),
            "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{self.db_path}",
            "PREFECT_SERVER_API_HOST": self.host,
            "PREFECT_SERVER_API_PORT": str(port),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_API_URL": "",  # the server itself is no client of another
        }


def _number(env: Mapping[str, str], name: str, default: Any, kind: type) -> Any:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return kind(raw)
    except ValueError:
        raise PrefectUnavailable(
            f"{name}={raw!r} is not a number", error_class=ErrorClass.CONFIG, hint=f"unset it or give a number (default {default})"
        ) from None


@dataclass(frozen=True)
class ServerRecord:
    """What ``server.json`` says about the server tracr started."""

    pid: int
    port: int
    url: str  # the API URL, ``http://127.0.0.1:<port>/api``
    started_at: str
    db_path: str
    version: str | None = None
    host: str | None = None  # the host id that started it; None in records written before host ids (count as local)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ServerRecord | None:
        """The record, or None when the file is not one (half-written by a crash, edited by hand)."""
        try:
            data = json.loads(text)
            return cls(
                pid=int(data["pid"]),
                port=int(data["port"]),
                url=str(data["url"]),
                started_at=str(data["started_at"]),
                db_path=str(data["db_path"]),
                version=data.get("version"),
                host=data.get("host") or None,
            )
        except (ValueError, KeyError, TypeError):
            return None

    @property
    def ui(self) -> str:
        return ui_url(self.url)

    @property
    def of_this_host(self) -> bool:
        """Whether its pid and loopback URL mean anything here (another host's record is never judged by them)."""
        return is_this_host(self.host)


@dataclass(frozen=True)
class Probe:
    """What was seen of a recorded server: is the pid alive and a Prefect server, and does its URL answer as one."""

    pid_alive: bool
    pid_is_prefect_server: bool  # its command line is ``prefect server start``
    health_ok: bool  # ``GET <url>/health`` answered ``true``
    version: str | None = None  # ``GET <url>/admin/version``; None when it did not answer as Prefect
    this_host: bool = True  # False: the record is another host's, nothing of it was probed


class Verdict(StrEnum):
    LIVE = "live"  # reuse it
    STARTING = "starting"  # its process is a Prefect server that does not answer yet (another command is starting it)
    DEAD = "dead"  # the pid is gone: replace the record
    FOREIGN = "foreign"  # the pid is alive but is no Prefect server (pid reused), or the port answers as something else
    OTHER_HOST = "another host's"  # started on another host: neither reused nor replaced from here


def judge_record(probe: Probe) -> Verdict:
    """Whether a recorded server can be reused (``LIVE``) or its record replaced."""
    if not probe.this_host:
        return Verdict.OTHER_HOST
    if not probe.pid_alive:
        return Verdict.DEAD
    if not probe.pid_is_prefect_server:
        return Verdict.FOREIGN
    if probe.health_ok and probe.version:
        return Verdict.LIVE
    if probe.health_ok and not probe.version:
        return Verdict.FOREIGN  # something answers /health but is not a Prefect API
    return Verdict.STARTING


def candidate_ports(settings: LocalPrefectSettings, remembered: int | None = None) -> list[int]:
    """The default port, then the fallbacks after it, in order; the port this home used last first, when it is one of them.

    Remembering the port keeps a home on one port across restarts, so earlier
    "watch this job" links keep working after a fallback; a port outside the
    configured range (``TRACR_PREFECT_PORT`` changed since) is not used.
    """
    ports = [settings.port + i for i in range(settings.port_fallbacks + 1) if settings.port + i <= 65535]
    if remembered in ports:
        ports.remove(remembered)
        ports.insert(0, remembered)
    return ports


def read_port_memo(text: str) -> int | None:
    """The port in a ``server.port`` file, or None when it holds none."""
    try:
        port = int(text.strip())
    except ValueError:
        return None
    return port if 0 < port <= 65535 else None


def port_fallback_line(wanted: int, used: int, holder: str, *, remembered: bool) -> str:
    """The line said when the server cannot start on the port it would use: which, why, and that the new one is kept."""
    if remembered:  # leaving the port earlier links name
        return (
            f"port {wanted}, this home's Prefect port, is taken by {holder}; the local Prefect server starts on port {used} "
            f"instead and keeps it from now on (links to port {wanted} no longer answer; TRACR_PREFECT_PORT picks the port)"
        )
    return (
        f"port {wanted} is taken by {holder}; the local Prefect server starts on port {used} instead "
        f"and this home keeps port {used} from now on (TRACR_PREFECT_PORT picks the port)"
    )


def ui_url(api_url: str) -> str:
    """The UI's address for an API URL (Prefect serves its UI at the API's root)."""
    url = api_url.rstrip("/")
    return url[: -len("/api")] if url.endswith("/api") else url


def flow_run_url(api_url: str, flow_run_id: str) -> str:
    return f"{ui_url(api_url)}/runs/flow-run/{flow_run_id}"


def start_failure_hint(settings: LocalPrefectSettings) -> str:
    return (
        f"see {settings.log_path}; `tracr server status` shows the server, TRACR_PREFECT_START_TIMEOUT_S "
        f"(now {settings.start_timeout_s:.0f}) gives it longer, or set PREFECT_API_URL to use another server"
    )


#: Known causes in the server's log, first match wins: (substring, what it means, what to do).
_LOG_CAUSES: tuple[tuple[str, str, str], ...] = (
    ("file is not a database", "its database {db} is not a SQLite database", "move the file away (tracr creates a new one) or restore it"),
    ("database disk image is malformed", "its database {db} is corrupt", "move the file away (tracr creates a new one) or restore it"),
    ("unable to open database file", "its database {db} cannot be opened", "check the folder's permissions and free disk"),
    ("address already in use", "its port was taken by another process", "free the port or set TRACR_PREFECT_PORT"),
    ("readonly database", "its database {db} is read-only", "check the file's permissions"),
)


def classify_start_log(log_tail: str, db_path: str) -> tuple[str, str] | None:
    """``(what happened, what to do)`` for a server that exited during start-up, when its log says why."""
    lowered = log_tail.lower()
    for needle, what, todo in _LOG_CAUSES:
        if needle in lowered:
            return what.format(db=db_path), todo
    return None


def profile_api_url(env: Mapping[str, str] | None = None) -> str | None:
    """``PREFECT_API_URL`` from the active Prefect profile (``prefect config set …``), read without importing Prefect.

    A profile that names a server wins over tracr's local one, as the environment variable does.
    """
    env = os.environ if env is None else env
    home = Path(env.get("PREFECT_HOME") or "~/.prefect").expanduser()
    path = Path(env.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    active = env.get("PREFECT_PROFILE") or data.get("active") or "ephemeral"
    profile = (data.get("profiles") or {}).get(active) or {}
    url = profile.get("PREFECT_API_URL") if isinstance(profile, dict) else None
    return str(url) if url else None
