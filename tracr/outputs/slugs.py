"""Filesystem-safe names for models and PDFs.

Slugs become directory names in the output tree, so they must be stable across runs
(the reviewer keys votes on them) and unique within their level.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from typing import TypeVar

__all__ = ["slugify", "pdf_slugs", "SLUG_PATTERN"]

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_UNSAFE = re.compile(r"[^a-z0-9._-]+")
P = TypeVar("P", bound="str | os.PathLike[str]")


def slugify(text: str, *, max_length: int = 80) -> str:
    """Lower-case ASCII slug: ``allenai/olmOCR-2-7B`` → ``allenai-olmocr-2-7b``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _UNSAFE.sub("-", ascii_text.lower()).strip("-._")
    slug = re.sub(r"-{2,}", "-", slug)[:max_length].strip("-._")
    return slug or "item"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:6]


def pdf_slugs(paths: Sequence[P]) -> dict[P, str]:
    """Unique slug per PDF path (``str`` or ``Path``), keyed by the paths as given.

    The file stem is used when it is unique; PDFs sharing a stem in different
    folders get their parent folders prefixed (``a/report.pdf`` → ``a-report``), and
    a short hash of the full path settles anything still colliding. Worked out on
    strings: a folder of 20,000 PDFs should not cost 20,000 ``Path`` objects.
    """
    stems = {path: os.path.splitext(os.path.basename(str(path)))[0] for path in paths}
    counts_by_stem = Counter(slugify(stem) for stem in stems.values())
    slugs: dict[P, str] = {}
    for path, stem in stems.items():
        base = slugify(stem)
        if counts_by_stem[base] > 1:
            parents = [part for part in os.path.dirname(str(path)).split(os.sep)[-2:] if part]
            base = slugify("-".join([*parents, stem]))
        slugs[path] = base
    counts = Counter(slugs.values())
    for path, slug in slugs.items():
        if counts[slug] > 1:
            slugs[path] = f"{slug}-{_short_hash(str(path))}"
    return slugs
