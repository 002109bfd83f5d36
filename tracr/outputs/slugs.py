"""Filesystem-safe names for models and PDFs.

Slugs become directory names in the output tree, so they must be stable across runs
(the reviewer keys votes on them) and unique within their level.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from pathlib import Path

__all__ = ["slugify", "pdf_slugs", "SLUG_PATTERN"]

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_UNSAFE = re.compile(r"[^a-z0-9._-]+")


def slugify(text: str, *, max_length: int = 80) -> str:
    """Lower-case ASCII slug: ``allenai/olmOCR-2-7B`` → ``allenai-olmocr-2-7b``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _UNSAFE.sub("-", ascii_text.lower()).strip("-._")
    slug = re.sub(r"-{2,}", "-", slug)[:max_length].strip("-._")
    return slug or "item"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:6]


def pdf_slugs(paths: list[Path]) -> dict[Path, str]:
    """Unique slug per PDF path.

    The file stem is used when it is unique; PDFs sharing a stem in different
    folders get their parent folders prefixed (``a/report.pdf`` → ``a-report``), and
    a short hash of the full path settles anything still colliding.
    """
    resolved = [Path(p) for p in paths]
    stems = Counter(slugify(p.stem) for p in resolved)
    slugs: dict[Path, str] = {}
    for path in resolved:
        base = slugify(path.stem)
        if stems[base] > 1:
            parents = [part for part in path.parent.parts[-2:] if part not in ("/", "")]
            base = slugify("-".join([*parents, path.stem]))
        slugs[path] = base
    counts = Counter(slugs.values())
    for path, slug in slugs.items():
        if counts[slug] > 1:
            slugs[path] = f"{slug}-{_short_hash(str(path))}"
    return slugs
