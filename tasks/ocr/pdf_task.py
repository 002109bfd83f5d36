"""The PDF-level Prefect task: every selected page of a batch of PDFs, through one engine.

Pages are not Prefect task runs (a 100k-page job must not put 100k task runs on the
API); they are asyncio tasks inside this one, bounded by the run's slots so memory
stays flat however many pages a PDF has. Small PDFs share a task run
(:mod:`tracr.run.batches`), and each PDF still ends alone. A PDF feeds its pages
into the slots under one of the run's ``pdf_concurrency`` permits and gives it
back as soon as its last page has a slot, so one-page PDFs keep as many
requests in flight as one big PDF does. Each finished page is written at once: the markdown
atomically, its record as one journal line; ``pdf_metadata.json`` is written when
the PDF ends and, for a PDF that takes longer, every few seconds meanwhile, so
bookkeeping per page does not grow with the PDF.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.states import Cancelled, State

from tasks.ocr.page_engines import PageEngine
from tasks.ocr.request import FatalModelError, OcrResult
from tasks.run.termination import STOPS, is_stop
from tracr.config.job import JobConfig
from tracr.errors import ErrorClass
from tracr.outputs.files import OutputWriteError, write_text_atomic
from tracr.outputs.journal import PageRecord, append_record, pdf_metadata_text
from tracr.outputs.layout import RunLocation
from tracr.outputs.rollup import Rollup
from tracr.outputs.timestamps import utc_now
from tracr.run.batches import PdfBatch
from tracr.run.journal_totals import JournalTotals, PdfOutcome
from tracr.run.plan import PdfPlan
from tracr.run.resume import finished_pages

__all__ = ["RunContext", "FeedTicket", "ocr_pdfs", "process_batch", "process_pdf"]

PDF_METADATA_INTERVAL_S = 5.0
#: Characters of one page's text that are stored at most: a runaway model cannot fill a disk or a reviewer.
DEFAULT_MAX_PAGE_CHARS = 500_000


@dataclass
class RunContext:
    """Shared by all PDF tasks of one run: the engine, the page slots, the live rollup."""

    engine: PageEngine | None  # set once the endpoint is up
    location: RunLocation
    slots: asyncio.Semaphore
    rollup: Rollup = field(default_factory=Rollup)
    error_counts: dict[str, int] = field(default_factory=dict)
    resume: bool = False  # skip pages already written by an earlier session of this run
    pages_skipped: int = 0
    max_page_chars: int = DEFAULT_MAX_PAGE_CHARS
    #: PDFs feeding pages into the slots at once (``pdf_concurrency``); a PDF whose pages all have a slot lets the next one feed.
    feeding: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(JobConfig.model_fields["pdf_concurrency"].default))
    #: The PDFs that ended in this session (a resumed PDF finished before ends again at once), folded into bounded
    #: totals, so the run's end need not read them back and progress counts them.
    ended: JournalTotals = field(default_factory=JournalTotals)
    ended_slugs: set[str] = field(default_factory=set)

    def record(self, record: PageRecord) -> None:
        self.rollup.add_page(record)
        if record.error_class:
            self.error_counts[record.error_class] = self.error_counts.get(record.error_class, 0) + 1

    def pdf_ended(self, outcome: PdfOutcome) -> None:
        self.ended.add(outcome)
        self.ended_slugs.add(outcome.slug)


class FeedTicket:
    """A permit to feed pages into the run's slots, released once: when the last page has one, or when the holder ends."""

    def __init__(self, gate: asyncio.Semaphore) -> None:
        self._gate: asyncio.Semaphore | None = gate

    def release(self) -> None:
        if self._gate is not None:
            self._gate.release()
            self._gate = None


def _page_record(page: int, result: OcrResult, chars: int, capped_at: int | None = None) -> PageRecord:
    return PageRecord(
        page=page,
        status="done" if result.ok else "failed",
        truncated=result.ok and result.finish_reason == "length",
        capped_at=capped_at,
        attempts=result.attempts,
        latency_s=round(result.latency_s, 4) if result.latency_s is not None else None,
        ttft_s=round(result.ttft_s, 4) if result.ttft_s is not None else None,
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
        finish_reason=result.finish_reason,
        chars=chars,
        error=result.error,
        error_class=result.error_class.value if result.error_class else None,
        dropped=list(result.dropped) or None,
        reply_meta=result.reply_meta,
    )


def _keep_unwritten(location: RunLocation, pdf_slug: str, page: int, text: str) -> str:
    """Put a page's text where resume and people can find it; what happened, as words for the record."""
    kept = location.unwritten_page(pdf_slug, page)
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(kept, text)
    except OSError as exc:
        return f"it could not be kept either ({exc.strerror or exc})"
    return f"its text is kept in {kept}"


def store_page(location: RunLocation, pdf_slug: str, page: int, result: OcrResult, max_chars: int) -> PageRecord:
    """Write a page's markdown (capped at ``max_chars``) and return its record.

    A page that cannot be written fails that page alone (``error_class`` ``write``),
    with the text it cost a model call to get kept aside; its siblings go on.
    """
    if result.raw is not None and result.raw != result.text:
        try:  # the reply as it came, for re-parsing and review; losing it costs the page nothing
            write_text_atomic(location.page_reply(pdf_slug, page), result.raw)
        except OSError:
            pass
    if not result.ok:
        return _page_record(page, result, 0)
    text = result.text or ""
    capped = max_chars if len(text) > max_chars else None
    if capped is not None:
        text = text[:max_chars]
    path = location.page_markdown(pdf_slug, page)
    try:
        write_text_atomic(path, text)
    except OSError as exc:
        record = _page_record(page, result, len(text), capped)
        record.status, record.error_class = "failed", ErrorClass.WRITE.value
        record.error = f"cannot write {path.name} ({exc.strerror or type(exc).__name__}); {_keep_unwritten(location, pdf_slug, page, text)}"
        return record
    return _page_record(page, result, len(text), capped)


class _PdfMetadataWriter:
    """Keeps ``pdf_metadata.json`` current without rewriting it after every page.

    Pages are held as their compact journal lines (not objects), and the file is
    assembled from them, so memory per page stays a few hundred bytes and a
    rewrite costs one join, however large the PDF.
    """

    def __init__(self, location: RunLocation, pdf: PdfPlan) -> None:
        self.path = location.pdf_metadata(pdf.slug)
        self.pdf = pdf
        self.page_lines: dict[int, str] = {}
        self.rollup = Rollup(pages_total=len(pdf.pages))
        self.error_counts: dict[str, int] = {}  # failed pages by class
        self.started_at = utc_now()
        self.started = time.perf_counter()
        self.last_write = self.started  # the first write comes when the PDF ends, or after an interval of work

    def _count(self, record: PageRecord, line: str) -> None:
        self.page_lines[record.page] = line
        self.rollup.add_page(record)
        if record.status == "failed" and record.error_class:
            self.error_counts[record.error_class] = self.error_counts.get(record.error_class, 0) + 1

    def add(self, record: PageRecord, line: str) -> None:
        self._count(record, line)
        if time.perf_counter() - self.last_write >= PDF_METADATA_INTERVAL_S:
            self.write("running")

    def add_finished(self, record: PageRecord, line: str) -> None:
        """A page an earlier session of the run already wrote (no rewrite triggered)."""
        self._count(record, line)

    def write(self, status: str, error: str | None = None) -> dict[str, Any]:
        """Write the file; returns its header (everything but ``pages``)."""
        self.last_write = time.perf_counter()
        self.rollup.wall_seconds = self.last_write - self.started
        header = {
            "pdf_slug": self.pdf.slug,
            "source_path": self.pdf.path,
            "size_bytes": self.pdf.size_bytes,
            "page_count": self.pdf.page_count,
            "pages_selected": len(self.pdf.pages),
            "status": status,
            "error": error,
            "started_at": self.started_at,
            "ended_at": utc_now() if status != "running" else None,
            "rollup": self.rollup.to_dict(),
        }
        page_lines = [self.page_lines[page] for page in sorted(self.page_lines)]
        try:
            write_text_atomic(self.path, pdf_metadata_text(header, page_lines), durable=True)
        except OSError as exc:
            raise OutputWriteError(
                f"cannot write {self.path}: {exc.strerror or exc}", hint="check that the outputs folder is writable and not full"
            ) from exc
        return header


def _first_fatal(group: BaseExceptionGroup) -> BaseException:
    """The error a PDF ends with: a stop first (the page that saw it was only the first), then a fatal one."""
    fatal = group.subgroup(is_stop) or group.subgroup(lambda e: isinstance(e, (FatalModelError, OutputWriteError)))
    if fatal is not None:
        return fatal.exceptions[0] if not isinstance(fatal.exceptions[0], BaseExceptionGroup) else _first_fatal(fatal.exceptions[0])
    return group.exceptions[0]


def _outcome(writer: _PdfMetadataWriter, status: str, error: str | None = None) -> PdfOutcome:
    """Write the PDF's ending into its ``pdf_metadata.json`` and return it, as the run's totals take it."""
    writer.write(status, error)
    return PdfOutcome(writer.pdf.slug, status, error, writer.rollup, writer.error_counts)


async def process_pdf(pdf: PdfPlan, ctx: RunContext, fed: Callable[[], None] = lambda: None) -> PdfOutcome:
    """Run every selected page of ``pdf``; returns how it ended (status, rollup, failed pages by class).

    ``fed`` is called once every page has a slot (the next PDF may start feeding).
    """
    pdf_dir = ctx.location.pdf_dir(pdf.slug)
    pdf_dir.mkdir(parents=True, exist_ok=True)
    writer = _PdfMetadataWriter(ctx.location, pdf)
    if pdf.error:
        fed()
        return await asyncio.to_thread(_outcome, writer, "failed", pdf.error)
    pages = pdf.pages
    if ctx.resume:
        finished = finished_pages(ctx.location, pdf.slug)
        for page in pdf.pages:
            if page in finished:
                record, line = finished[page]
                writer.add_finished(record, line)
                ctx.record(record)
        pages = [page for page in pdf.pages if page not in finished]
        ctx.pages_skipped += len(pdf.pages) - len(pages)
    journal = ctx.location.page_journal(pdf.slug)
    engine = ctx.engine
    if engine is None:
        raise RuntimeError("process_pdf needs a run context whose engine is started")

    async def one_page(page: int) -> None:
        try:
            result = await engine.run_page(pdf.path, page)
            record = store_page(ctx.location, pdf.slug, page, result, ctx.max_page_chars)
            try:
                line = append_record(journal, record)
            except OSError as exc:
                raise OutputWriteError(
                    f"cannot record page {page} of {pdf.slug} in {journal}: {exc.strerror or exc}",
                    hint="check that the outputs folder is writable and not full; `tracr run --resume` redoes the pages not recorded",
                ) from exc
            writer.add(record, line)
            ctx.record(record)
        finally:
            ctx.slots.release()

    try:
        async with asyncio.TaskGroup() as group:
            for page in pages:
                await ctx.slots.acquire()
                group.create_task(one_page(page))
            fed()
    except BaseExceptionGroup as group_error:
        error = _first_fatal(group_error)
        if is_stop(error):
            writer.write("cancelled")
        elif not isinstance(error, OutputWriteError):
            writer.write("failed", str(error))
        raise error from None
    except STOPS:
        writer.write("cancelled")
        raise
    # off the event loop: the write ends with an fsync, which under load costs milliseconds the other pages need
    return await asyncio.to_thread(_outcome, writer, "completed")


async def process_batch(batch: PdfBatch, ctx: RunContext, ticket: FeedTicket | None = None) -> dict[str, int]:
    """Every PDF of ``batch``, each feeding its pages under one of the run's ``feeding`` permits; the batch's PDFs by status.

    PDFs take permits in order, so ``pdf_concurrency`` PDFs feed at once across
    the run. The batch's ticket (its turn to start PDFs) is released once its
    last PDF has a permit, so the next batch starts while these pages finish.
    """
    statuses: Counter[str] = Counter()

    async def one(pdf: PdfPlan, permit: FeedTicket) -> None:
        try:
            outcome = await process_pdf(pdf, ctx, permit.release)
        finally:
            permit.release()
        statuses[outcome.status] += 1
        ctx.pdf_ended(outcome)

    try:
        async with asyncio.TaskGroup() as group:
            for pdf in batch.pdfs:
                await ctx.feeding.acquire()
                group.create_task(one(pdf, FeedTicket(ctx.feeding)))
            if ticket is not None:
                ticket.release()
    except BaseExceptionGroup as group_error:
        raise _first_fatal(group_error) from None
    finally:
        if ticket is not None:
            ticket.release()
    return dict(statuses)  # what the task run returns: its size does not grow with the batch's pages


@task(name="ocr-pdfs", task_run_name="{model_slug} · {batch.name}", cache_policy=NO_CACHE, log_prints=False)
async def ocr_pdfs(batch: PdfBatch, ctx: RunContext, model_slug: str, ticket: FeedTicket | None = None) -> dict[str, int] | State[Any]:
    """Prefect task wrapper of :func:`process_batch` (one task run per batch of PDFs, a big PDF alone).

    ``model_slug`` is only there to name the task run, since several models' runs
    process the same PDFs at once. Cancelled, it returns a ``Cancelled`` state
    (once each started PDF's ``pdf_metadata.json`` says ``cancelled``) instead of
    letting Prefect call the cancel a crash; the caller carries the cancel on.
    """
    try:
        return await process_batch(batch, ctx, ticket)
    except asyncio.CancelledError:
        return Cancelled(message=f"{batch.name}: cancelled; finished pages are kept")
