"""Validation of the identifiers that become paths under the outputs root.

Job ids, model slugs and PDF slugs arrive from URLs, vote files and the index;
each is checked against the same patterns the writers use before it is joined
onto a path, so ``..``, ``/``, NUL and friends can never escape the outputs root.
"""

from __future__ import annotations

import re
from pathlib import Path

from tracr.errors import ErrorClass, TracrError
from tracr.outputs.slugs import SLUG_PATTERN

__all__ = ["InvalidIdentifier", "validate_job_id", "validate_slug", "validate_number", "safe_child"]


JOB_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
"""A job id: it names a folder under the outputs root."""


class InvalidIdentifier(TracrError, ValueError):
    """An identifier that is not a plain folder name of the output tree.

    A :class:`ValueError` too, so pydantic validators report it as a field error.
    """

    default_class = ErrorClass.IDENTIFIER


def validate_job_id(value: object) -> str:
    """``value`` if it is a valid job id (letters, digits, ``._-``, no leading dot)."""
    if not isinstance(value, str) or not JOB_ID_PATTERN.match(value):
        raise InvalidIdentifier(
            f"invalid job id {value!r}: must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


def validate_slug(value: object, what: str = "slug") -> str:
    """``value`` if it is a valid model or PDF slug (lower-case ``a-z0-9._-``, no leading dot)."""
    if not isinstance(value, str) or len(value) > 200 or not SLUG_PATTERN.match(value):
        raise InvalidIdentifier(
            f"invalid {what} {value!r}: must be lower-case letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


def validate_number(value: object, what: str) -> int:
    """A positive run or page number (``bool`` and strings refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidIdentifier(f"invalid {what} {value!r}: must be a whole number >= 1")
    return value


def safe_child(root: Path, *parts: str) -> Path:
    """``root / parts...``, refusing any part that is not one plain folder name.

    A last line of defence beside the validators: the result is also checked to
    stay inside ``root`` once resolved.
    """
    root = Path(root)
    for part in parts:
        if not part or part in (".", "..") or "/" in part or "\\" in part or "\x00" in part:
            raise InvalidIdentifier(f"invalid path part {part!r}")
    path = root.joinpath(*parts)
    resolved_root = root.resolve()
    if not path.resolve().is_relative_to(resolved_root):
        raise InvalidIdentifier(f"path {path} leaves the outputs root {resolved_root}")
    return path
