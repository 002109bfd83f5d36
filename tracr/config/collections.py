"""Collections: which kind of document each PDF of a job is, so rankings can be shown per kind.

The best OCR model is not the same for invoices as for handwritten forms, so every
ranking tracr shows can be split by collection (docs/collections.md). A PDF belongs to:

* by default, the input folder it came from: its parent folder relative to the
  deepest folder all the job's PDFs share (``invoices``, ``forms/2024``; PDFs
  directly in that shared folder take its name);
* when the job config has ``collections:``, each named entry whose ``folders``,
  ``globs`` or ``pdfs`` match it (a PDF may match several; one matching none is
  in ``unassigned``) — these replace the folder collections;
* in any case, the collections a reviewer tagged it (or one of its pages) with
  after the fact (:mod:`tracr.review.tags`).

Everything here is pure: the caller passes the PDF paths a job recorded.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "ALL",
    "UNASSIGNED",
    "COLLECTION_NAME",
    "CollectionSpec",
    "PageCollections",
    "CollectionMembers",
    "validate_collection_name",
    "folder_collections",
    "configured_collections",
    "assign_collections",
    "unmatched_specs",
]

ALL = "all"
"""The whole job, shown beside the collections."""
UNASSIGNED = "unassigned"
"""PDFs no configured collection matches."""
COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._/-]{0,63}$")


def validate_collection_name(value: object) -> str:
    """A collection name: 1-64 letters, digits, space, '.', '_', '/' or '-', not ``all``."""
    if not isinstance(value, str) or not COLLECTION_NAME.match(value) or value.strip() != value:
        raise ValueError("a collection name is 1-64 letters, digits, spaces, '.', '_', '/' or '-', starting with a letter or digit")
    if value == ALL:
        raise ValueError(f"{ALL!r} is the whole job; name the collection something else")
    return value


class CollectionSpec(BaseModel):
    """One named collection of a job config: the PDFs under some folders, matching some globs, or listed."""

    model_config = ConfigDict(extra="forbid")

    name: str
    folders: list[str] = Field(default_factory=list, description="Folders (relative: any folder of that name or path).")
    globs: list[str] = Field(default_factory=list, description="Patterns on the PDF's path relative to the inputs, e.g. 'scans/**/*.pdf'.")
    pdfs: list[str] = Field(default_factory=list, description="PDF file names, relative paths or PDF slugs.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return validate_collection_name(value)

    @model_validator(mode="after")
    def _not_empty(self) -> CollectionSpec:
        if not (self.folders or self.globs or self.pdfs):
            raise ValueError(f"collection {self.name!r}: give folders, globs or pdfs")
        for entry in (*self.folders, *self.globs, *self.pdfs):
            if not entry.strip():
                raise ValueError(f"collection {self.name!r}: an empty folder, glob or PDF entry")
        return self

    def matches(self, path: str, relative: str, pdf_slug: str) -> bool:
        """Whether the PDF at ``path`` (``relative`` to the shared input folder) is in this collection."""
        parts = PurePosixPath(_posix(path)).parts
        parents = parts[:-1]
        for folder in self.folders:
            want = PurePosixPath(_posix(folder).rstrip("/")).parts
            if _posix(folder).startswith("/"):
                if parents[: len(want)] == want:
                    return True
            elif any(parents[i : i + len(want)] == want for i in range(len(parents) - len(want) + 1)):
                return True
        for pattern in self.globs:
            pattern = _posix(pattern)
            if fnmatch.fnmatchcase(relative, pattern) or fnmatch.fnmatchcase(_posix(path), pattern):
                return True
            if pattern.startswith("**/") and fnmatch.fnmatchcase(relative, pattern[3:]):  # '**/' also matches no folder
                return True
        for entry in self.pdfs:
            want = PurePosixPath(_posix(entry)).parts
            if entry == pdf_slug or (want and parts[-len(want) :] == want):
                return True
        return False


def _posix(path: str) -> str:
    return path.replace("\\", "/")


def _shared_folder(paths: Sequence[str]) -> str:
    parents = [os.path.dirname(_posix(p)) for p in paths]
    if not parents:
        return ""
    try:
        return os.path.commonpath(parents) if all(p.startswith("/") for p in parents) or not any(p.startswith("/") for p in parents) else ""
    except ValueError:
        return ""


def _relative(path: str, shared: str) -> str:
    path = _posix(path)
    if shared and (path.startswith(shared.rstrip("/") + "/")):
        return path[len(shared.rstrip("/")) + 1 :]
    return PurePosixPath(path).name


def folder_collections(pdfs: Mapping[str, str]) -> dict[str, str]:
    """PDF slug -> its input folder relative to the folder every PDF shares (that folder's name when directly in it)."""
    shared = _shared_folder(list(pdfs.values()))
    shared_name = PurePosixPath(shared).name or "inputs"
    out = {}
    for slug, path in pdfs.items():
        parent = PurePosixPath(_relative(path, shared)).parent
        name = str(parent) if str(parent) not in ("", ".") else shared_name
        try:
            out[slug] = validate_collection_name(name)
        except ValueError:  # a folder name tracr cannot show as a collection name: keep its safe characters
            cleaned = re.sub(r"[^A-Za-z0-9 ._/-]+", "_", name).strip(" ._/-")[:64] or "inputs"
            out[slug] = cleaned if cleaned != ALL else "all_"
    return out


def configured_collections(pdfs: Mapping[str, str], specs: Sequence[CollectionSpec]) -> dict[str, tuple[str, ...]]:
    """PDF slug -> the configured collections it matches (``unassigned`` when none)."""
    shared = _shared_folder(list(pdfs.values()))
    out = {}
    for slug, path in pdfs.items():
        names = tuple(spec.name for spec in specs if spec.matches(path, _relative(path, shared), slug))
        out[slug] = names or (UNASSIGNED,)
    return out


def unmatched_specs(pdfs: Mapping[str, str], specs: Sequence[CollectionSpec]) -> list[str]:
    """Names of configured collections that match no PDF of the job (a likely typo)."""
    assigned = configured_collections(pdfs, specs)
    used = {name for names in assigned.values() for name in names}
    return [spec.name for spec in specs if spec.name not in used]


@dataclass(frozen=True)
class PageCollections:
    """Which collections each page of a job is in; ``of`` answers for any page, tagged or not."""

    by_pdf: dict[str, tuple[str, ...]]
    page_tags: dict[tuple[str, int], tuple[str, ...]] = field(default_factory=dict)
    source: str = "folders"  # "folders" or "config"

    def of(self, pdf_slug: str, page: int) -> tuple[str, ...]:
        base = self.by_pdf.get(pdf_slug, (UNASSIGNED,))
        extra = self.page_tags.get((pdf_slug, page), ())
        return tuple(dict.fromkeys((*base, *extra)))

    def members(self, name: str) -> CollectionMembers:
        """``(pdf_slug, page) in members(name)`` without listing the pages (for pairing on a large job)."""
        return CollectionMembers(self, name)

    @property
    def names(self) -> list[str]:
        """Every collection, in a stable order (folder/config names first, then tags)."""
        found = [n for names in self.by_pdf.values() for n in names] + [n for names in self.page_tags.values() for n in names]
        return sorted(dict.fromkeys(found), key=lambda n: (n == UNASSIGNED, n))


@dataclass(frozen=True)
class CollectionMembers:
    """The pages of one collection, as a membership test."""

    collections: PageCollections
    name: str

    def __contains__(self, key: object) -> bool:
        if not (isinstance(key, tuple) and len(key) == 2):
            return False
        pdf_slug, page = key
        return self.name == ALL or self.name in self.collections.of(str(pdf_slug), int(page))


def assign_collections(
    pdfs: Mapping[str, str],
    specs: Sequence[CollectionSpec] = (),
    tags: Iterable[tuple[str, int | None, str]] = (),
    pages: Mapping[str, Iterable[int]] | None = None,
) -> PageCollections:
    """Collections of every page: folders (or the config's ``collections``), plus reviewer tags.

    ``pdfs`` maps PDF slug to the path the job recorded; ``tags`` are ``(pdf_slug, page or
    None for the whole PDF, collection)`` in effect; ``pages`` lists each PDF's pages (needed
    to spread a whole-PDF tag; without it a whole-PDF tag joins the PDF's collections).
    """
    if specs:
        by_pdf = configured_collections(pdfs, specs)
        source = "config"
    else:
        by_pdf = {slug: (name,) for slug, name in folder_collections(pdfs).items()}
        source = "folders"
    page_tags: dict[tuple[str, int], list[str]] = {}
    for pdf_slug, page, name in tags:
        if page is None:
            if pages is not None and pdf_slug in pages:
                for number in pages[pdf_slug]:
                    page_tags.setdefault((pdf_slug, number), []).append(name)
            else:
                by_pdf[pdf_slug] = tuple(dict.fromkeys((*by_pdf.get(pdf_slug, ()), name)))
        else:
            page_tags.setdefault((pdf_slug, page), []).append(name)
    return PageCollections(by_pdf, {key: tuple(dict.fromkeys(names)) for key, names in page_tags.items()}, source)
