"""The worker's storage check at the start of a job, doctor's look at the same, and ``tracr storage reset``.

Every host that runs a job probes the outputs root (:func:`tracr.outputs.storage.probe_storage`)
and judges the root's id against what the Prefect server holds for that path
(:mod:`tracr.outputs.root_identity`): a variable ``tracr_root_<hash of the path>``
with the id last published (by which host, when), and one ``…_seen_<host>`` per
host with the id that host last saw there. A host whose same-named root is
another filesystem (a local folder where the others mount NFS) stops before
writing anything, instead of splitting one job's outputs over two trees; a root
that was deleted and made again (``rm -rf outputs``) just gets its new id
published. Doctor reads the same records and judges them the same way, but
writes nothing. Roots are absolute, as :func:`tracr.outputs.layout.outputs_root` gives them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from prefect import get_run_logger, task
from prefect.exceptions import ObjectAlreadyExists
from prefect.variables import Variable

from tracr.errors import ErrorClass, TracrError
from tracr.outputs.root_identity import PublishedRoot, RootJudgement, RootVerdict, judge_root, seen_id
from tracr.outputs.storage import StorageProbe, probe_storage
from tracr.outputs.timestamps import utc_now
from tracr.serving.host import host_id

__all__ = [
    "StorageNotShared",
    "root_variable",
    "seen_variable",
    "read_judgement",
    "settle_root",
    "reset_root",
    "check_shared_storage",
]

#: Prefect variable names are at most 255 characters.
_MAX_NAME = 255


class StorageNotShared(TracrError, RuntimeError):
    """The outputs root misbehaves, or is not the filesystem the other hosts use under that path."""

    default_class = ErrorClass.WRITE


def root_variable(root: Path) -> str:
    """The variable holding the id published for ``root``'s path."""
    return "tracr_root_" + hashlib.sha1(str(Path(root).resolve()).encode()).hexdigest()[:16]


def seen_variable(root: Path, host: str) -> str:
    """The variable holding the id ``host`` last saw under ``root`` (host ids are ``[a-z0-9-]``, as variable names allow)."""
    name = f"{root_variable(root)}_seen_{host}"
    if len(name) > _MAX_NAME:
        name = name[: _MAX_NAME - 13] + "-" + hashlib.sha1(host.encode()).hexdigest()[:12]
    return name


async def _read(root: Path, host: str) -> tuple[PublishedRoot | None, str | None]:
    published = await Variable.aget(root_variable(root), default=None)  # type: ignore[func-returns-value]
    seen = await Variable.aget(seen_variable(root, host), default=None)  # type: ignore[func-returns-value]
    return PublishedRoot.from_value(published), seen_id(seen)


async def read_judgement(root: Path, local_id: str | None, host: str | None = None) -> RootJudgement:
    """How ``local_id`` (None: the root does not exist yet) compares with what is published; writes nothing (doctor)."""
    host = host or host_id()
    published, seen = await _read(root, host)
    return judge_root(root, host, local_id, published, seen)


async def _put(name: str, value: dict[str, str]) -> None:
    """Create or overwrite a variable, also when another job creates it between Prefect's read and its create."""
    try:
        await Variable.aset(name, value, overwrite=True)
    except ObjectAlreadyExists:  # created meanwhile (jobs starting together on one host): now it is an update
        await Variable.aset(name, value, overwrite=True)


async def _publish(root: Path, record: PublishedRoot, *, overwrite: bool) -> bool:
    """Set the published id; False when another host published one first (``overwrite`` False)."""
    if overwrite:
        await _put(root_variable(root), record.to_value())
        return True
    try:
        await Variable.aset(root_variable(root), record.to_value(), overwrite=False)
    except (ValueError, ObjectAlreadyExists):
        return False
    return True


async def _record_seen(root: Path, host: str, root_id: str) -> None:
    await _put(seen_variable(root, host), {"root_id": root_id, "seen_at": utc_now()})


async def settle_root(root: Path, root_id: str, host: str | None = None) -> RootJudgement:
    """Judge this host's root id and record what follows: publish it (first, or in place of a recreated root's), note it as seen.

    A refused root (another filesystem) records nothing.
    """
    host = host or host_id()
    judgement = await read_judgement(root, root_id, host)
    if judgement.verdict is RootVerdict.FIRST:
        if not await _publish(root, PublishedRoot(root_id, host, utc_now()), overwrite=False):
            judgement = await read_judgement(root, root_id, host)  # another host was first: judge against theirs
    elif judgement.verdict is RootVerdict.RECREATED:
        assert judgement.published is not None
        await _publish(root, PublishedRoot(root_id, host, utc_now(), replaces=judgement.published.root_id), overwrite=True)
    if judgement.ok and judgement.seen != root_id:
        await _record_seen(root, host, root_id)
    return judgement


async def reset_root(root: Path, host: str | None = None) -> tuple[StorageProbe, PublishedRoot | None, PublishedRoot]:
    """Make the id this host sees under ``root`` the published one (after a deliberate move); returns the probe, the old and the new record."""
    host = host or host_id()
    probe = probe_storage(root)
    if not probe.ok or probe.root_id is None:
        raise StorageNotShared(f"outputs root {probe.summary()} (tracr needs a POSIX filesystem: docs/deployments.md section 7)")
    old, _ = await _read(root, host)
    replaces = old.root_id if old is not None and old.root_id != probe.root_id else None
    new = PublishedRoot(probe.root_id, host, utc_now(), replaces=replaces)
    await _publish(root, new, overwrite=True)
    await _record_seen(root, host, probe.root_id)
    return probe, old, new


@task(name="check-shared-storage", retries=0)
async def check_shared_storage(root: str) -> dict[str, object]:
    """Fail the job when the outputs root is not writable, misbehaves, or is not the one other hosts use."""
    probe = probe_storage(Path(root))
    if not probe.ok or probe.root_id is None:
        raise StorageNotShared(f"outputs root {probe.summary()} (tracr needs a POSIX filesystem: docs/deployments.md section 7)")
    judgement = await settle_root(Path(root), probe.root_id)
    if not judgement.ok:
        raise StorageNotShared(judgement.refusal())
    if judgement.verdict is RootVerdict.RECREATED and judgement.published is not None:
        get_run_logger().info(
            "outputs root %s was recreated: its new id %s is published in place of %s (published by %s)",
            root,
            probe.root_id,
            judgement.published.root_id,
            judgement.published.origin(),
        )
    return {"root": root, "root_id": probe.root_id, "created": probe.created_id, "verdict": judgement.verdict.value}
