"""``tracr export``: every page of a job as one row, written by DuckDB as CSV or Parquet.

Rows come from the page journals (latest record per page) of every run of every
model, so an export is complete whatever state the runs are in. Error messages are
the ones already on disk (the OCR client never puts keys in them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from tracr.errors import ErrorClass, TracrError
from tracr.outputs.files import read_json
from tracr.outputs.identifiers import InvalidIdentifier, safe_child, validate_job_id
from tracr.outputs.layout import OutputLayout
from tracr.outputs.metrics import run_page_records

__all__ = ["ExportError", "page_rows", "export_pages", "COLUMNS"]

COLUMNS: list[tuple[str, str]] = [
    ("job_id", "VARCHAR"),
    ("model_slug", "VARCHAR"),
    ("run", "INTEGER"),
    ("pdf_slug", "VARCHAR"),
    ("page", "INTEGER"),
    ("status", "VARCHAR"),
    ("attempts", "INTEGER"),
    ("latency_s", "DOUBLE"),
    ("ttft_s", "DOUBLE"),
    ("input_tokens", "BIGINT"),
    ("output_tokens", "BIGINT"),
    ("chars", "BIGINT"),
    ("truncated", "BOOLEAN"),
    ("capped_at", "BIGINT"),
    ("finish_reason", "VARCHAR"),
    ("error_class", "VARCHAR"),
    ("error", "VARCHAR"),
    ("finished_at", "VARCHAR"),
    ("markdown_path", "VARCHAR"),
    ("adapter", "VARCHAR"),
    ("adapter_digest", "VARCHAR"),
    ("dropped", "VARCHAR"),
    ("reply_path", "VARCHAR"),
]


class ExportError(TracrError, ValueError):
    """Nothing to export, an invalid job id, or a destination that cannot be written."""

    default_class = ErrorClass.EXPORT


def _job_dir(layout: OutputLayout, job_id: str) -> Path:
    """The job's folder, only for a valid job id whose folder is inside the outputs root."""
    try:
        return safe_child(layout.root, validate_job_id(job_id))
    except InvalidIdentifier as exc:
        raise ExportError(str(exc), error_class=ErrorClass.IDENTIFIER) from None


def page_rows(layout: OutputLayout, job_id: str) -> list[tuple[Any, ...]]:
    """One tuple per page per run, in :data:`COLUMNS` order."""
    _job_dir(layout, job_id)
    rows = []
    for slug in layout.model_slugs(job_id):
        for number in layout.run_numbers(job_id, slug):
            location = layout.run(job_id, slug, number)
            adapter = ((read_json(location.run_metadata) or {}).get("settings") or {}).get("adapter") or {}
            for pdf_slug, r in run_page_records(location):
                markdown = location.page_markdown(pdf_slug, r.page)
                reply = location.page_reply(pdf_slug, r.page)
                rows.append(
                    (
                        job_id,
                        slug,
                        number,
                        pdf_slug,
                        r.page,
                        r.status,
                        r.attempts,
                        r.latency_s,
                        r.ttft_s,
                        r.input_tokens,
                        r.output_tokens,
                        r.chars,
                        r.truncated,
                        r.capped_at,
                        r.finish_reason,
                        r.error_class,
                        r.error,
                        r.finished_at,
                        str(markdown) if r.status == "done" and markdown.is_file() else None,
                        adapter.get("name"),
                        adapter.get("digest"),
                        ",".join(r.dropped) if r.dropped else None,
                        str(reply) if reply.is_file() else None,
                    )
                )
    return rows


def export_pages(layout: OutputLayout, job_id: str, fmt: str, output: str | None = None) -> tuple[Path, int]:
    """Write the job's page rows; returns ``(path, row count)``.

    The job id is validated before it becomes a path (``..`` or a symlink out of the root
    is refused), so without ``output`` the file always lands in the job's own folder
    under the outputs root, never somewhere a job id points to.
    """
    if fmt not in ("csv", "parquet"):
        raise ExportError(f"format must be csv or parquet, not {fmt!r}")
    job_dir = _job_dir(layout, job_id)
    if not job_dir.is_dir() or not layout.job_metadata(job_id).is_file():
        raise ExportError(f"no job {job_id!r} under {layout.root}")
    rows = page_rows(layout, job_id)
    path = Path(output) if output else job_dir / f"pages.{fmt}"
    if not path.parent.is_dir():
        raise ExportError(f"cannot write {path}: folder {path.parent} does not exist")
    con = duckdb.connect()
    try:
        con.execute("CREATE TABLE pages (" + ", ".join(f"{name} {kind}" for name, kind in COLUMNS) + ")")
        if rows:
            con.executemany("INSERT INTO pages VALUES (" + ", ".join("?" * len(COLUMNS)) + ")", rows)
        options = "FORMAT CSV, HEADER" if fmt == "csv" else "FORMAT PARQUET"
        con.execute(f"COPY (SELECT * FROM pages ORDER BY model_slug, run, pdf_slug, page) TO '{_sql_path(path)}' ({options})")
    finally:
        con.close()
    return path, len(rows)


def _sql_path(path: Path) -> str:
    return str(path.resolve()).replace("'", "''")
