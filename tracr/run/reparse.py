"""Re-reading a finished run's pages from their kept replies, without asking the model again.

When a parser is fixed, or a run should keep (or drop) page furniture after all, the
raw replies beside the pages (``<page>.reply.txt``; the page itself where the parser
left the reply unchanged) are read again with the run's recorded adapter, or another.
Pages are replaced in place, each atomically: the new Markdown, a new journal line
(the page's cost and timings kept), ``pdf_metadata.json`` and the run's totals. A page
whose reply no longer parses becomes a failed page of class ``unparseable_reply``,
its reply kept; the model is never called.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tracr.adapters.parsing import parse_reply
from tracr.adapters.records import adapter_record
from tracr.adapters.registry import adapter_by_name
from tracr.adapters.replies import ReplyFormatError
from tracr.adapters.spec import Adapter
from tracr.errors import ErrorClass, TracrError
from tracr.outputs.files import read_json, write_json_atomic, write_text_atomic
from tracr.outputs.journal import PageRecord, append_record, latest_lines, pdf_metadata_text
from tracr.outputs.layout import RunLocation
from tracr.outputs.rollup import Rollup
from tracr.outputs.timestamps import utc_now

__all__ = ["ReparseError", "ReparseReport", "reparse_run", "run_locations"]


def read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


class ReparseError(TracrError, ValueError):
    """A run that cannot be re-parsed (no such run, no adapter recorded, a multi-call family)."""

    default_class = ErrorClass.STATE


@dataclass
class ReparseReport:
    """What a re-parse changed in one run."""

    adapter: str
    pages_read: int = 0
    pages_changed: int = 0
    now_failed: int = 0
    now_done: int = 0
    skipped: int = 0  # failed pages with no reply kept: nothing to read
    pdfs: list[str] = field(default_factory=list)


def _recorded_adapter(run_meta: dict[str, Any]) -> tuple[Adapter, bool]:
    recorded = (run_meta.get("settings") or {}).get("adapter")
    if not recorded:
        raise ReparseError(
            "this run recorded no adapter (it was made before adapters, or by the text layer)", hint="name one with --adapter"
        )
    return Adapter.from_settings(recorded["settings"]), bool(recorded.get("keep_furniture"))


def _reparse_page(
    location: RunLocation, pdf: str, record: PageRecord, adapter: Adapter, keep: bool, report: ReparseReport
) -> PageRecord | None:
    reply_path, page_path = location.page_reply(pdf, record.page), location.page_markdown(pdf, record.page)
    raw = (
        read_text(reply_path) if reply_path.is_file() else read_text(page_path) if record.status == "done" and page_path.is_file() else None
    )
    if raw is None:
        report.skipped += 1
        return None
    report.pages_read += 1
    try:
        parsed = parse_reply(adapter.parser, raw, keep_furniture=keep)
    except ReplyFormatError as exc:
        if record.status == "failed" and record.error_class == ErrorClass.UNPARSEABLE.value:
            return None
        if not reply_path.is_file():
            write_text_atomic(reply_path, raw)  # the reply stays, whatever becomes of the page
        page_path.unlink(missing_ok=True)
        report.now_failed += 1
        error = f"not {adapter.parser} output: {exc.reason}"[:300]
        return replace(
            record,
            status="failed",
            chars=0,
            error=error,
            error_class=ErrorClass.UNPARSEABLE.value,
            dropped=None,
            reply_meta=None,
            finished_at=utc_now(),
        )
    old = read_text(page_path) if page_path.is_file() else None
    if old == parsed.markdown and record.status == "done" and sorted(record.dropped or []) == sorted(parsed.dropped):
        return None
    if raw != parsed.markdown and not reply_path.is_file():
        write_text_atomic(reply_path, raw)
    write_text_atomic(page_path, parsed.markdown)
    if record.status != "done":
        report.now_done += 1
    return replace(
        record,
        status="done",
        chars=len(parsed.markdown),
        error=None,
        error_class=None,
        dropped=list(parsed.dropped) or None,
        reply_meta=dict(parsed.meta) or None,
        finished_at=utc_now(),
    )


def _reparse_pdf(location: RunLocation, pdf: str, adapter: Adapter, keep: bool, report: ReparseReport) -> Rollup:
    journal = location.page_journal(pdf)
    lines = latest_lines(journal)
    rollup = Rollup(pages_total=len(lines))
    page_lines: dict[int, str] = {}
    for page, (record, line) in sorted(lines.items()):
        new = _reparse_page(location, pdf, record, adapter, keep, report)
        if new is not None:
            line = append_record(journal, new)
            record = new
            report.pages_changed += 1
        page_lines[page] = line
        rollup.add_page(record)
    meta_path = location.pdf_metadata(pdf)
    header = {k: v for k, v in (read_json(meta_path) or {}).items() if k != "pages"}
    rollup.pages_total = int(header.get("pages_selected") or rollup.pages_total)
    rollup.wall_seconds = float((header.get("rollup") or {}).get("wall_seconds") or 0.0)
    header["rollup"] = rollup.to_dict()
    write_text_atomic(meta_path, pdf_metadata_text(header, [page_lines[p] for p in sorted(page_lines)]), durable=True)
    return rollup


def reparse_run(location: RunLocation, adapter_name: str | None = None, keep_furniture: bool | None = None) -> ReparseReport:
    """Re-read every page of one run with its recorded adapter (or ``adapter_name``); see the module docstring."""
    run_meta = read_json(location.run_metadata)
    if not run_meta:
        raise ReparseError(f"no run at {location.run_dir}")
    if run_meta.get("status") == "running":
        raise ReparseError(f"{location.run_dir.name} is still running", hint="wait for it to end (or cancel it), then re-parse")
    recorded, recorded_keep = _recorded_adapter(run_meta) if adapter_name is None else (adapter_by_name(adapter_name), False)
    keep = recorded_keep if keep_furniture is None else keep_furniture
    report = ReparseReport(adapter=recorded.name)
    total = Rollup()
    for pdf_dir in sorted(p for p in location.run_dir.iterdir() if location.page_journal(p.name).is_file()):
        rollup = _reparse_pdf(location, pdf_dir.name, recorded, keep, report)
        total.add(rollup)
        report.pdfs.append(pdf_dir.name)
    previous = Rollup.from_dict(run_meta.get("rollup"))
    total.wall_seconds, total.pages_total = previous.wall_seconds, previous.pages_total or total.pages_total
    run_meta["rollup"] = total.to_dict()
    settings = run_meta.setdefault("settings", {})
    settings["adapter"] = adapter_record(recorded, keep)
    run_meta.setdefault("reparsed", []).append(
        {"at": utc_now(), "adapter": recorded.name, "digest": recorded.digest(keep), "pages_changed": report.pages_changed}
    )
    write_json_atomic(location.run_metadata, run_meta)
    return report


def run_locations(root: Path, job_id: str, model_slug: str | None, run: int | None) -> list[RunLocation]:
    """The runs a re-parse covers: the latest run of each model (or of one), or one numbered run."""
    from tracr.outputs.layout import OutputLayout

    layout = OutputLayout(root)
    models = [model_slug] if model_slug else layout.model_slugs(job_id)
    found: list[RunLocation] = []
    for slug in models:
        numbers = layout.run_numbers(job_id, slug)
        if run is not None:
            numbers = [n for n in numbers if n == run]
        if numbers:
            found.append(layout.run(job_id, slug, numbers[-1]))
    return found
