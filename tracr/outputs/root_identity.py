"""Whether the outputs root a host sees is the one the other hosts use: the judgement, without I/O.

Every outputs root carries an id (``.tracr/root-id``, :mod:`tracr.outputs.storage`).
The Prefect server keeps, per path, the id last *published* for it (by which host,
and when), and, per host, the id that host last *saw* there. A host whose root has
another id than the published one is either

* looking at a **recreated** root: it saw the published id there itself, and now
  sees another, so the folder was deleted (``rm -rf outputs``) or replaced under
  its own eyes. Its new id is published in place of the old: cleaning outputs just
  works, on one machine and on several (the other hosts then see the new id too);
* or looking at **another filesystem**: it never saw the published id, so its
  folder is not the one the other hosts write to (a local folder where they mount
  NFS). The job is refused before it writes anything, with who published the
  other id and when, and the one command that makes this root the published one
  after a deliberate move (``tracr storage reset``).

A host cannot tell a wiped shared root from a different filesystem by looking at
it alone, so a host that never saw the old id (one joining after the wipe) is
refused until a host that saw it runs once, or the root is reset.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

__all__ = ["PublishedRoot", "RootVerdict", "RootJudgement", "judge_root", "reset_command", "seen_id"]


@dataclass(frozen=True)
class PublishedRoot:
    """The id published for a path, by which host and when (``None`` in records from before hosts were recorded)."""

    root_id: str
    host: str | None = None
    published_at: str | None = None
    replaces: str | None = None

    def to_value(self) -> dict[str, str]:
        """The record as a Prefect variable's JSON value."""
        value = {"root_id": self.root_id, "host": self.host or "", "published_at": self.published_at or ""}
        if self.replaces:
            value["replaces"] = self.replaces
        return value

    @classmethod
    def from_value(cls, value: object) -> PublishedRoot | None:
        """A record read back; a bare string is an id published by an earlier tracr, without host or time."""
        if isinstance(value, str) and value:
            return cls(value)
        if isinstance(value, Mapping) and isinstance(value.get("root_id"), str) and value["root_id"]:
            return cls(
                str(value["root_id"]),
                str(value.get("host") or "") or None,
                str(value.get("published_at") or "") or None,
                str(value.get("replaces") or "") or None,
            )
        return None

    def origin(self) -> str:
        """Who published it, and when, as a message says it."""
        if self.host is None:
            return "an earlier version of tracr (host and time not recorded)"
        return f"host {self.host} at {self.published_at or 'an unrecorded time'}"


def seen_id(value: object) -> str | None:
    """The id in a host's sighting record (a mapping with ``root_id``, or a bare id)."""
    if isinstance(value, Mapping):
        value = value.get("root_id")
    return value if isinstance(value, str) and value else None


class RootVerdict(str, Enum):
    FIRST = "first"  # nothing is published for this path yet: this host's id becomes it
    SAME = "same"  # the published id
    RECREATED = "recreated"  # this host saw the published id here, and now sees a new one: it replaces it
    ELSEWHERE = "elsewhere"  # this host never saw the published id: another filesystem under the same path


def reset_command(root: Path | str) -> str:
    """The one command that makes the id a host sees under ``root`` the published one."""
    return f"tracr storage reset --outputs {shlex.quote(str(root))}"


@dataclass(frozen=True)
class RootJudgement:
    """How a host's view of the outputs root compares with what is published for that path."""

    verdict: RootVerdict
    root: str
    host: str
    local_id: str | None  # None: the root does not exist yet here (a job would create it, with a new id)
    published: PublishedRoot | None
    seen: str | None

    @property
    def ok(self) -> bool:
        return self.verdict is not RootVerdict.ELSEWHERE

    @property
    def publishes(self) -> bool:
        """Whether a job on this host publishes its id for the path (first, or in place of a deleted root's)."""
        return self.verdict in (RootVerdict.FIRST, RootVerdict.RECREATED)

    def describe(self) -> str:
        """One line saying what was found (and, for a refusal, what to do)."""
        here = f"id {self.local_id}" if self.local_id else "no root yet (the first job creates one, with a new id)"
        if self.verdict is RootVerdict.FIRST:
            return f"{here}; no id published for this path yet (the first job publishes it)"
        assert self.published is not None
        if self.verdict is RootVerdict.SAME:
            return f"{here}, the one published by {self.published.origin()}"
        if self.verdict is RootVerdict.RECREATED:
            return (
                f"{here}; this host saw id {self.published.root_id} (published by {self.published.origin()}) here before, "
                "so the root was recreated: the next job publishes the new id in its place"
            )
        return self.refusal()

    def refusal(self) -> str:
        """Why a job is refused: whose id is published, when, and the one command that resets it."""
        assert self.published is not None
        here = f"has id {self.local_id} here" if self.local_id else "does not exist here (a job would create it with a new id)"
        return (
            f"outputs root {self.root} {here} (host {self.host}), but {self.published.origin()} published "
            f"id {self.published.root_id} for this path, and this host never saw that id: not the same filesystem. "
            "Mount the shared root here, or use another outputs path; if the root was moved or recreated on purpose, "
            f"run `{reset_command(self.root)}` on a host that sees the right one"
        )


def judge_root(root: Path | str, host: str, local_id: str | None, published: PublishedRoot | None, seen: str | None) -> RootJudgement:
    """Judge ``local_id`` (what ``host`` sees under ``root``) against the published id and the id ``host`` last saw there."""
    if published is None:
        verdict = RootVerdict.FIRST
    elif local_id is not None and local_id == published.root_id:
        verdict = RootVerdict.SAME
    elif seen is not None and seen == published.root_id:
        verdict = RootVerdict.RECREATED
    else:
        verdict = RootVerdict.ELSEWHERE
    return RootJudgement(verdict, str(root), host, local_id, published, seen)
