"""The tracr-managed local Prefect server: where it lives, its record, and when a record is stale.

Pure decisions only (no processes, no sockets): ``cli/prefect_server.py`` does the
I/O and asks this module what it means. A record is the JSON file naming the
server tracr started (pid, port, url, when, which database); the server is reused
while its record is *live* and replaced when it is *stale*.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from tracr.errors import ErrorClass, TracrError

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


class PrefectUnavailable(TracrError):
    """Prefect could not be reached or started: one line, with what to do."""

    default_class = ErrorClass.PREFECT


@dataclass(frozen=True)
class LocalPrefectSettings:
    """Where the local server keeps its state and how it is started (all from the environment)."""

    state_dir: Path
    port: int = DEFAULT_PORT
    port_fallbacks: int = DEFAULT_PORT_FALLBACKS
    start_timeout_s: float = DEFAULT_START_TIMEOUT_S
    host: str = "127.0.0.1"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LocalPrefectSettings:
        """``TRACR_HOME`` (state under ``$TRACR_HOME/prefect``), else ``$XDG_STATE_HOME/tracr/prefect``
        or ``~/.local/state/tracr/prefect``; ``TRACR_PREFECT_PORT`` (default 4270),
        ``TRACR_PREFECT_PORT_FALLBACKS`` (further ports tried when it is taken, default 10; 0 = none),
        ``TRACR_PREFECT_START_TIMEOUT_S`` (default 180)."""
        env = os.environ if env is None else env
        if env.get("TRACR_HOME"):
            state = Path(env["TRACR_HOME"]).expanduser() / "prefect"
        else:
            base = Path(env["XDG_STATE_HOME"]).expanduser() if env.get("XDG_STATE_HOME") else Path.home() / ".local" / "state"
            state = base / "tracr" / "prefect"
        return cls(
            state_dir=state,
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
            )
        except (ValueError, KeyError, TypeError):
            return None

    @property
    def ui(self) -> str:
        return ui_url(self.url)


@dataclass(frozen=True)
class Probe:
    """What was seen of a recorded server: is the pid alive and a Prefect server, and does its URL answer as one."""

    pid_alive: bool
    pid_is_prefect_server: bool  # its command line is ``prefect server start``
    health_ok: bool  # ``GET <url>/health`` answered ``true``
    version: str | None = None  # ``GET <url>/admin/version``; None when it did not answer as Prefect


class Verdict(StrEnum):
    LIVE = "live"  # reuse it
    STARTING = "starting"  # its process is a Prefect server that does not answer yet (another command is starting it)
    DEAD = "dead"  # the pid is gone: replace the record
    FOREIGN = "foreign"  # the pid is alive but is no Prefect server (pid reused), or the port answers as something else


def judge_record(probe: Probe) -> Verdict:
    """Whether a recorded server can be reused (``LIVE``) or its record replaced."""
    if not probe.pid_alive:
        return Verdict.DEAD
    if not probe.pid_is_prefect_server:
        return Verdict.FOREIGN
    if probe.health_ok and probe.version:
        return Verdict.LIVE
    if probe.health_ok and not probe.version:
        return Verdict.FOREIGN  # something answers /health but is not a Prefect API
    return Verdict.STARTING


def candidate_ports(settings: LocalPrefectSettings) -> list[int]:
    """The default port, then the fallbacks after it, in order."""
    return [settings.port + i for i in range(settings.port_fallbacks + 1) if settings.port + i <= 65535]


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
