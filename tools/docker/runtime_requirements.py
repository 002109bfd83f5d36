"""Print ``name==version`` for tracr's runtime dependency closure, as installed in this environment.

The deps image holds what tracr needs to run, pinned to what the host resolved.
A plain ``pip freeze`` would also carry whatever else the host venv holds (test
and dev tools, the scoring cross-check's beautifulsoup4 and soupsieve, ...),
and one such package requiring a newer Python than bookworm's 3.11.2 breaks the
offline image build. Markers are evaluated for this interpreter and for
bookworm's, so a dependency either of them needs is kept when it is installed.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, distribution

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

#: The image's interpreter (Debian bookworm), besides the host's own.
TARGET_PYTHON = "3.11.2"


def _wanted(requirement: Requirement, extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    host = default_environment()
    target = {**host, "python_full_version": TARGET_PYTHON}
    for environment in (host, target):
        for extra in extras or {""}:
            if requirement.marker.evaluate({**environment, "extra": extra}):
                return True
    return False


def closure(root: str) -> dict[str, str]:
    """Installed name -> version of ``root`` and everything it requires (with the extras asked for on the way)."""
    found: dict[str, str] = {}
    pending: list[tuple[str, set[str]]] = [(root, set())]
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        name, extras = pending.pop()
        key = (canonicalize_name(name), frozenset(extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue  # a marker-only dependency this host never installed
        found[canonicalize_name(dist.metadata["Name"])] = dist.version
        for line in dist.requires or []:
            requirement = Requirement(line)
            if _wanted(requirement, extras):
                pending.append((requirement.name, set(requirement.extras)))
    found.pop(canonicalize_name(root), None)
    return found


def main() -> None:
    for name, version in sorted(closure(sys.argv[1] if len(sys.argv) > 1 else "tracr").items()):
        print(f"{name}=={version}")


if __name__ == "__main__":
    main()
