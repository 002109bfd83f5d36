"""Reviewer tags: collections set on a PDF or a page after the job ran (docs/collections.md).

``<root>/<job_id>/collections/tags-<host>.jsonl`` holds one JSON line per tag
added or removed, appended like votes (:mod:`tracr.review.votes`: one ``write`` on
an ``O_APPEND`` descriptor under ``flock``, a file per host). The files are the only
source of truth; the tags in effect are the last action on each (PDF, page,
collection), in time order. A tag with no page is about the whole PDF.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tracr.config.collections import validate_collection_name
from tracr.errors import ErrorClass, TracrError
from tracr.outputs.files import append_line_durably
from tracr.outputs.identifiers import safe_child, validate_job_id, validate_number, validate_slug
from tracr.outputs.inputs import iter_job_inputs
from tracr.outputs.layout import OutputLayout
from tracr.outputs.timestamps import utc_now
from tracr.serving.host import host_id

__all__ = ["TAGS_DIR", "Tag", "TagRefused", "tag_files", "append_tag", "read_tags", "tags_in_effect"]

TAGS_DIR = "collections"
log = logging.getLogger(__name__)


class TagRefused(TracrError, ValueError):
    """A tag on a job, PDF or collection name that does not exist or is not allowed."""

    default_class = ErrorClass.INPUT


class Tag(BaseModel):
    """A reviewer put a PDF (``page`` None) or one page of it in a collection, or took it out."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    job_id: str
    pdf_slug: str
    page: int | None = None
    collection: str
    action: Literal["add", "remove"] = "add"
    by: str = Field("reviewer", min_length=1, max_length=200)
    created_at: str = Field(default_factory=utc_now)

    @field_validator("job_id")
    @classmethod
    def _job_id(cls, value: str) -> str:
        return validate_job_id(value)

    @field_validator("pdf_slug")
    @classmethod
    def _pdf_slug(cls, value: str) -> str:
        return validate_slug(value, "PDF slug")

    @field_validator("page")
    @classmethod
    def _page(cls, value: int | None) -> int | None:
        return None if value is None else validate_number(value, "page")

    @field_validator("collection")
    @classmethod
    def _collection(cls, value: str) -> str:
        return validate_collection_name(value)


def _tags_dir(outputs_root: Path, job_id: str) -> Path:
    return safe_child(Path(outputs_root), validate_job_id(job_id), TAGS_DIR)


def tag_files(outputs_root: Path, job_id: str) -> list[Path]:
    """Every tags file of a job (one per host), by name."""
    folder = _tags_dir(outputs_root, job_id)
    return sorted(folder.glob("tags-*.jsonl")) if folder.is_dir() else []


def append_tag(outputs_root: Path, tag: Tag) -> Path:
    """Append one tag as one line, durably; a job that does not exist is refused. Returns the file."""
    try:
        tag = Tag.model_validate(tag.model_dump())
    except ValidationError as exc:
        raise TagRefused(f"tag refused: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from None
    job_dir = safe_child(Path(outputs_root), tag.job_id)
    if not job_dir.is_dir():
        raise TagRefused(f"tag refused: no job {tag.job_id!r} under {outputs_root}")
    inputs = iter_job_inputs(OutputLayout(Path(outputs_root)), tag.job_id)
    if not any(str(item.get("pdf_slug")) == tag.pdf_slug for item in inputs):
        raise TagRefused(f"tag refused: job {tag.job_id!r} has no PDF {tag.pdf_slug!r}")
    folder = _tags_dir(outputs_root, tag.job_id)
    folder.mkdir(exist_ok=True)
    path = folder / f"tags-{host_id()}.jsonl"
    append_line_durably(path, (tag.model_dump_json() + "\n").encode("utf-8"))
    return path


def read_tags(outputs_root: Path, job_id: str) -> list[Tag]:
    """Every readable tag of a job, oldest first (unreadable lines skipped with a warning)."""
    tags: list[Tag] = []
    for path in tag_files(outputs_root, job_id):
        for number, line in enumerate(path.read_bytes().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                tag = Tag.model_validate_json(line)
            except ValidationError as exc:
                log.warning("%s:%d: skipping unreadable tag (%s)", path, number, exc.errors()[0].get("msg", exc))
                continue
            if tag.job_id == job_id:
                tags.append(tag)
    return sorted(tags, key=lambda t: t.created_at)


def tags_in_effect(tags: list[Tag]) -> list[tuple[str, int | None, str]]:
    """``(pdf_slug, page or None, collection)`` whose last action is ``add``."""
    state: dict[tuple[str, int | None, str], bool] = {}
    for tag in sorted(tags, key=lambda t: t.created_at):
        state[(tag.pdf_slug, tag.page, tag.collection)] = tag.action == "add"
    return [key for key, added in state.items() if added]
