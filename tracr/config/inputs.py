"""Input discovery: turn a job's ``input_path`` into a sorted list of PDFs.

An entry may be a PDF file, a folder (searched recursively) or a glob pattern.
Relative entries are looked up from the working directory first, then from the
config file's folder, so both TRACR-style configs (paths from the repo root) and
self-contained config folders work.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

from tracr.errors import ErrorClass, TracrError

__all__ = ["InputError", "discover_pdfs"]

_GLOB_CHARS = set("*?[")


class InputError(TracrError, ValueError):
    """An input entry matched nothing usable; the message names the entry."""

    default_class = ErrorClass.INPUT


def _candidates(entry: str, base_dirs: list[Path]) -> list[Path]:
    path = Path(entry).expanduser()
    if path.is_absolute():
        return [path]
    return [base / path for base in base_dirs]


def _is_pdf_name(name: str) -> bool:
    """``x.pdf`` in any case, as ``Path.suffix`` sees it (``.pdf`` alone is a hidden file with no suffix)."""
    return os.path.splitext(name)[1].lower() == ".pdf"


def _expand(entry: str, base_dirs: list[Path]) -> list[str]:
    if _GLOB_CHARS & set(entry):
        for candidate in _candidates(entry, base_dirs):
            matches = glob.glob(str(candidate), recursive=True)
            pdfs = [m for m in matches if os.path.isfile(m) and _is_pdf_name(m)]
            for folder in (m for m in matches if os.path.isdir(m)):
                pdfs.extend(_pdfs_in(folder))
            if pdfs:
                return pdfs
        raise InputError(f"input_path {entry!r}: the pattern matched no PDF")
    tried = _candidates(entry, base_dirs)
    for candidate in tried:
        if candidate.is_dir():
            found = _pdfs_in(str(candidate))
            if not found:
                raise InputError(f"input_path {entry!r}: folder {candidate} holds no PDF")
            return found
        if candidate.is_file():
            if candidate.suffix.lower() != ".pdf":
                raise InputError(f"input_path {entry!r}: {candidate} is not a .pdf file")
            return [str(candidate)]
    where = ", ".join(str(c) for c in tried)
    raise InputError(f"input_path {entry!r}: no such file or folder (looked at {where})")


def _pdfs_in(folder: str) -> list[str]:
    """Every PDF file under ``folder``, not entering linked folders (as ``Path.rglob`` does not)."""
    return [
        path
        for root, _, names in os.walk(folder)
        for name in names
        if _is_pdf_name(name) and os.path.isfile(path := os.path.join(root, name))
    ]


def _path_order(path: str) -> str:
    """Sorts as the paths' parts do (``a/b/x.pdf`` before ``a/b-c/x.pdf``), as the list was ordered when it held ``Path``s."""
    return path.replace(os.sep, "\0")


def discover_pdfs(input_path: str | list[str], *, config_dir: Path | None = None) -> list[str]:
    """Resolve every entry to absolute PDF paths, sorted and without duplicates.

    Paths are strings, not ``Path``s: a job over 20,000 PDFs holds this list, and a
    ``Path`` costs some 450 bytes more than its string. Raises :class:`InputError`
    naming every entry that matched nothing (one per line).
    """
    entries = [input_path] if isinstance(input_path, str) else list(input_path)
    base_dirs = [Path.cwd()]
    if config_dir is not None and Path(config_dir).resolve() != Path.cwd().resolve():
        base_dirs.append(Path(config_dir))
    found: dict[str, None] = {}
    problems: list[str] = []
    for entry in entries:
        try:
            for pdf in _expand(str(entry), base_dirs):
                found.setdefault(os.path.realpath(pdf), None)
        except InputError as exc:
            problems.append(str(exc))
    if problems:
        raise InputError("\n".join(problems))
    return sorted(found, key=_path_order)
