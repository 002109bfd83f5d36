"""Idempotent submission: one active job per config digest under an outputs root.

A run is identified by a digest of its normalised public config (no secrets,
sorted-key JSON, sha256). Starting a job creates ``<root>/.tracr/claims/<digest>.json``
with ``O_EXCL``, holding the owner's host id, PID namespace, pid and (once known)
flow run id; a second submission of the same config finds the claim and reports
the active job instead of starting another. A claim of this host and PID namespace
whose pid is dead is stale and taken over. A claim of another host, or of another
PID namespace under this host id (containers and ``unshare`` hand out the same small
pids), cannot be judged by pid: the caller passes ``remote_live``, which asks the
Prefect server whether the holder's flow run is still running
(``tasks.run.claim_liveness``); without one, such a claim is assumed live.
``--force`` runs beside a live claim without touching it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tracr.config.job import JobConfig
from tracr.outputs.files import read_json, write_json_atomic
from tracr.outputs.layout import OutputLayout
from tracr.outputs.timestamps import utc_now
from tracr.serving.host import host_id, pid_namespace, pids_are_ours

#: Judges a claim of another host (its flow run still running?); see ``tasks.run.claim_liveness``.
RemoteLiveness = Callable[[dict[str, Any]], bool]

__all__ = [
    "RemoteLiveness",
    "config_digest",
    "claim_path",
    "try_claim",
    "update_claim",
    "release_claim",
    "claim_is_live",
    "read_claim",
    "claim_of_flow_run",
]


def config_digest(config: JobConfig) -> str:
    """sha256 of the config as recorded (``public_dict``: no key values), in sorted-key JSON."""
    public = config.public_dict()
    for model in public["models"]:
        model.pop("api_key_source", None)  # a key moved from the config to the env is the same job
    text = json.dumps(public, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def claim_path(root: Path, digest: str) -> Path:
    return OutputLayout(Path(root)).claims_dir / f"{digest}.json"


def _legacy_claim_path(root: Path, digest: str) -> Path:
    """Where a tree written before ``.tracr/`` holds the same claim."""
    return OutputLayout(Path(root)).legacy_claims_dir / f"{digest}.json"


def _process_start(pid: int) -> str | None:
    """Start time of ``pid`` in clock ticks (Linux), to tell a reused pid from the owner."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_is_live(holder: dict[str, Any], remote_live: RemoteLiveness | None = None) -> bool:
    """Whether the claim's owner still runs: by pid where its pids are ours, else by ``remote_live`` (else assumed)."""
    if not pids_are_ours(holder.get("host"), holder.get("pid_ns")):
        return True if remote_live is None else remote_live(holder)
    pid = int(holder.get("pid") or 0)
    if pid <= 0 or not _pid_alive(pid):
        return False
    started = holder.get("pid_start")
    return started is None or _process_start(pid) in (None, started)


def read_claim(root: Path, digest: str) -> dict[str, Any] | None:
    return read_json(claim_path(root, digest)) or read_json(_legacy_claim_path(root, digest))


@contextmanager
def _claims_lock(directory: Path) -> Iterator[None]:
    """Serialise claim/takeover decisions between processes on this host."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def try_claim(root: Path, digest: str, info: dict[str, Any], *, remote_live: RemoteLiveness | None = None) -> tuple[bool, dict[str, Any]]:
    """Claim ``digest`` for this process; returns ``(acquired, holder)``.

    ``holder`` is our claim when acquired, else the live owner's claim. A stale
    claim (see :func:`claim_is_live`) is replaced, and the replaced owner is kept
    as ``took_over``.
    """

    def live(claim: dict[str, Any]) -> bool:
        return claim_is_live(claim, remote_live)

    path = claim_path(root, digest)
    pid = os.getpid()
    mine = {
        "digest": digest,
        "token": uuid.uuid4().hex,
        "pid": pid,
        "pid_start": _process_start(pid),
        "host": host_id(),
        "pid_ns": pid_namespace(),
        "claimed_at": utc_now(),
        **info,
    }
    with _claims_lock(path.parent):
        legacy = _legacy_claim_path(root, digest)
        old = read_json(legacy)
        if old is not None and live(old):
            return False, old
        legacy.unlink(missing_ok=True)
        holder = read_json(path)
        if path.exists():
            if holder is not None and live(holder):
                return False, holder
            path.unlink()  # stale (or unreadable: a writer died mid-write, since writes happen under the lock)
            if holder is not None:
                mine["took_over"] = {k: holder.get(k) for k in ("pid", "host", "pid_ns", "claimed_at", "flow_run_id")}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(mine, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
    return True, mine


def update_claim(root: Path, claim: dict[str, Any], **extra: Any) -> None:
    """Add facts to our own claim (flow run id, run folders) for whoever finds it."""
    path = claim_path(root, claim["digest"])
    with _claims_lock(path.parent):
        current = read_json(path)
        if current is None or current.get("token") != claim["token"]:
            return
        claim.update(extra)
        write_json_atomic(path, claim)  # a temp file of its own: no other host's or namespace's pid can share its name


def release_claim(root: Path, claim: dict[str, Any]) -> bool:
    """Remove our claim (only ours: a takeover's claim is left alone)."""
    path = claim_path(root, claim["digest"])
    with _claims_lock(path.parent):
        for candidate in (path, _legacy_claim_path(root, claim["digest"])):
            current = read_json(candidate)
            if current is not None and current.get("token") == claim["token"]:
                candidate.unlink(missing_ok=True)
                return True
        return False


def claim_of_flow_run(root: Path, flow_run_id: str) -> dict[str, Any] | None:
    """The claim under ``root`` taken by the job flow run ``flow_run_id``, if any.

    How ``tracr cancel`` tells a job whose process is gone (its flow run would
    stay ``Cancelling`` for ever: nothing is left to obey the request) from one
    that is still running somewhere.
    """
    layout = OutputLayout(Path(root))
    for directory in (layout.claims_dir, layout.legacy_claims_dir):
        for path in sorted(directory.glob("*.json")) if directory.is_dir() else ():
            claim = read_json(path)
            if claim is not None and claim.get("flow_run_id") == flow_run_id:
                return claim
    return None
