"""The outputs root is one shared POSIX filesystem: stated by a marker, checked by probes.

tracr relies on the filesystem under the outputs root for correctness: run
numbers are claimed with ``mkdir`` (exclusive), job claims with ``O_EXCL``, files
are replaced with ``os.replace``, journals and votes appended with ``O_APPEND``
under ``flock``, and some files are hard-linked. On several hosts the root must
be the *same* filesystem on each (NFS, CephFS, Lustre, …; an object-store
"mounted bucket" gives none of these guarantees).

``.tracr/root-id`` holds an id written once (``O_EXCL``) by the first host that
checks the root; every later check, on any host, reads it. Hosts that see
different ids under the same path are looking at different filesystems.
:func:`probe_storage` checks the id and that each operation behaves, in a
private folder it removes afterwards.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tracr.outputs.layout import STATE_DIR

__all__ = ["ROOT_ID_FILE", "StorageProbe", "root_id", "probe_storage"]

ROOT_ID_FILE = "root-id"


@dataclass
class StorageProbe:
    """What the probes found: the root's id, and the name of every operation that misbehaved, with why."""

    root: str
    root_id: str | None = None
    created_id: bool = False
    failures: dict[str, str] = field(default_factory=dict)
    checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        if self.ok:
            return f"{self.root}: root id {self.root_id}{' (new)' if self.created_id else ''}; {', '.join(self.checked)} behave"
        return f"{self.root}: " + "; ".join(f"{k}: {v}" for k, v in self.failures.items())


def root_id(root: Path) -> tuple[str, bool]:
    """The root's id (``.tracr/root-id``), written once by whoever is first; returns (id, created now)."""
    path = Path(root) / STATE_DIR / ROOT_ID_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    new = uuid.uuid4().hex
    tmp = path.with_name(f".root-id-{new}")
    tmp.write_text(new + "\n", encoding="utf-8")
    try:
        os.link(tmp, path)  # atomic create-if-absent that also holds on NFS (O_EXCL did not before v3)
        created = True
    except FileExistsError:
        created = False
    finally:
        tmp.unlink(missing_ok=True)
    text = path.read_text(encoding="utf-8").strip()
    if not text:
        raise OSError(f"{path} is empty")
    return text, created


def probe_storage(root: Path) -> StorageProbe:
    """Check the root's id, and that writes, ``O_APPEND``, ``os.replace``, ``mkdir`` exclusivity, ``flock`` and hard links behave."""
    root = Path(root)
    probe = StorageProbe(str(root))
    try:
        probe.root_id, probe.created_id = root_id(root)
    except OSError as exc:
        probe.failures["writable"] = f"cannot write {STATE_DIR}/{ROOT_ID_FILE}: {exc.strerror or exc}"
        return probe
    work = root / STATE_DIR / f"probe-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        work.mkdir(parents=True)
        _run(probe, "append", lambda: _append(work))
        _run(probe, "replace", lambda: _replace(work))
        _run(probe, "mkdir", lambda: _mkdir(work))
        _run(probe, "flock", lambda: _flock(work))
        _run(probe, "hard link", lambda: _link(work))
    except OSError as exc:
        probe.failures["writable"] = f"cannot create a folder under {STATE_DIR}: {exc.strerror or exc}"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return probe


def _run(probe: StorageProbe, name: str, check: object) -> None:
    try:
        error = check()  # type: ignore[operator]
    except OSError as exc:
        error = f"{type(exc).__name__}: {exc.strerror or exc}"
    if error:
        probe.failures[name] = str(error)
    else:
        probe.checked.append(name)


def _append(work: Path) -> str | None:
    path = work / "append.jsonl"
    fds = [os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) for _ in range(2)]
    try:
        for i in range(4):
            os.write(fds[i % 2], f"line-{i}\n".encode())
    finally:
        for fd in fds:
            os.close(fd)
    lines = path.read_text().splitlines()
    return None if lines == [f"line-{i}" for i in range(4)] else f"two O_APPEND writers left {lines!r}"


def _replace(work: Path) -> str | None:
    target, tmp = work / "target", work / "target.tmp"
    target.write_text("old")
    tmp.write_text("new")
    os.replace(tmp, target)
    return None if target.read_text() == "new" and not tmp.exists() else "os.replace did not replace the file"


def _mkdir(work: Path) -> str | None:
    (work / "run-1").mkdir()
    try:
        (work / "run-1").mkdir()
    except FileExistsError:
        return None
    return "a second mkdir of the same folder succeeded (run numbers could be claimed twice)"


def _flock(work: Path) -> str | None:
    path = work / "lock"
    path.touch()
    with open(path, "rb") as a, open(path, "rb") as b:
        fcntl.flock(a, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            fcntl.flock(b, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        return "two exclusive flocks were granted at once"


def _link(work: Path) -> str | None:
    src, dst = work / "src", work / "dst"
    src.write_text("x")
    os.link(src, dst)
    return None if os.stat(src).st_nlink == 2 and dst.read_text() == "x" else "a hard link did not share the file"
