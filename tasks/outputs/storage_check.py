"""The worker's storage check at the start of a job, and the cross-host half of doctor's.

Every host that runs a job probes the outputs root (:func:`tracr.outputs.storage.probe_storage`)
and compares the root's id with the one published on the Prefect server for that
path (a variable ``tracr_root_<hash of the path>``, set by the first host): a host
whose same-named root is another filesystem (a local folder where the others mount
NFS) stops before writing anything, instead of splitting one job's outputs over
two trees.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from prefect import task
from prefect.variables import Variable

from tracr.errors import ErrorClass, TracrError
from tracr.outputs.storage import StorageProbe, probe_storage

__all__ = ["StorageNotShared", "root_variable", "published_root_id", "check_shared_storage"]


class StorageNotShared(TracrError, RuntimeError):
    """The outputs root misbehaves, or is not the filesystem the other hosts use under that path."""

    default_class = ErrorClass.WRITE


def root_variable(root: Path) -> str:
    return "tracr_root_" + hashlib.sha1(str(Path(root).resolve()).encode()).hexdigest()[:16]


async def published_root_id(root: Path, root_id: str | None) -> str | None:
    """The id other hosts recorded for this path; records ``root_id`` when none is yet."""
    name = root_variable(root)
    published = await Variable.aget(name, default=None)  # type: ignore[func-returns-value]
    if published is None and root_id:
        try:
            await Variable.aset(name, root_id)
        except Exception:  # another host set it meanwhile: read theirs
            pass
        published = await Variable.aget(name, default=None)  # type: ignore[func-returns-value]
    return str(published) if published is not None else None


async def probe_with_published(root: Path) -> tuple[StorageProbe, str | None]:
    probe = probe_storage(root)
    return probe, await published_root_id(root, probe.root_id)


@task(name="check-shared-storage", retries=0)
async def check_shared_storage(root: str) -> dict[str, object]:
    """Fail the job when the outputs root is not writable, misbehaves, or is not the one other hosts use."""
    probe, published = await probe_with_published(Path(root))
    if not probe.ok:
        raise StorageNotShared(f"outputs root {probe.summary()} (tracr needs a POSIX filesystem: docs/deployments.md section 7)")
    if published is not None and published != probe.root_id:
        raise StorageNotShared(
            f"outputs root {root} has id {probe.root_id}, but other hosts see {published} under that path: "
            "not the same filesystem (mount the shared root here, or use another path)"
        )
    return {"root": root, "root_id": probe.root_id, "created": probe.created_id}
