"""Pages through an OpenAI-compatible Batch API instead of live calls (``batch: true``), at the batch price.

Each page's request is queued; a batch goes out when ``max_concurrent_requests``
pages wait or ``BATCH_GATHER_S`` passed since the first: its JSONL is uploaded
(Files API), the batch created, and its id and the pages in it recorded in the
run's ``batches.jsonl`` *before* anyone waits for it. The batch is then polled
every ``batch_poll_s`` seconds; when it ends its results and errors are
downloaded and each waiting page gets its result.

A run that dies between submission and completion loses nothing: on ``--resume``
a page whose request sits in a recorded, uncollected batch waits for that batch
(collecting it) instead of being sent again; pages that already have a result are
skipped by the resume itself, so nothing is paid twice. A page whose request
failed in the batch (an error line, or no line when the batch expired or was
cancelled) goes out again in a new batch, up to ``retries`` times, while this
session still holds its request; otherwise it fails like any page. Cancelling
the run cancels its unfinished batches. While the run only waits for batches,
its Prefect state is named "Waiting for batch" (still of type Running).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import openai
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.context import FlowRunContext, TaskRunContext
from prefect.states import Running

from tasks.documents.render_pool import RenderPool
from tasks.ocr.request import OcrResult, classify_error, describe_error, status_class
from tracr.adapters.requests import build_messages
from tracr.adapters.retry_rules import first_attempt, judge_reply
from tracr.adapters.spec import Adapter
from tracr.config.render import RenderSettings
from tracr.documents.images import data_url_image_size
from tracr.errors import ErrorClass

__all__ = ["BatchJournal", "BatchPageEngine", "batch_custom_id"]

#: How long the first queued page waits for others before its batch goes out.
BATCH_GATHER_S = 2.0
_ENDED = ("completed", "expired", "failed", "cancelled")
#: The name the run's Prefect state takes while it only waits for the provider's batches.
WAITING_STATE = "Waiting for batch"
JOURNAL_NAME = "batches.jsonl"


def batch_custom_id(pdf_path: str, page: int) -> str:
    """A page's id in a batch: the same in every session of the run (the PDF's path and the page)."""
    return f"{hashlib.sha256(pdf_path.encode()).hexdigest()[:12]}-p{page}"


class BatchJournal:
    """``batches.jsonl`` in the run folder: batches submitted (with their pages) and collected or cancelled."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / JOURNAL_NAME
        self.open: dict[str, list[str]] = {}  # batch id -> custom ids, submitted and not yet collected
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                entry = json.loads(line) if line.strip() else {}
                if entry.get("event") == "submitted":
                    self.open[entry["batch_id"]] = list(entry["custom_ids"])
                elif entry.get("event") in ("collected", "cancelled"):
                    self.open.pop(entry.get("batch_id", ""), None)

    def _append(self, entry: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps({**entry, "at": time.time()}) + "\n")
            out.flush()

    def submitted(self, batch_id: str, input_file_id: str, custom_ids: list[str]) -> None:
        self._append({"event": "submitted", "batch_id": batch_id, "input_file_id": input_file_id, "custom_ids": custom_ids})
        self.open[batch_id] = custom_ids

    def ended(self, batch_id: str, event: str, status: str, counts: dict[str, Any] | None) -> None:
        self._append({"event": event, "batch_id": batch_id, "status": status, "request_counts": counts})
        self.open.pop(batch_id, None)

    def batch_of(self, custom_id: str) -> str | None:
        return next((batch_id for batch_id, ids in self.open.items() if custom_id in ids), None)


@dataclass
class _Page:
    custom_id: str
    body: dict[str, Any]
    future: asyncio.Future[OcrResult]
    tries: int = 0


@dataclass
class BatchPageEngine:
    """Queues pages into batches, polls them, and hands each page its result."""

    pool: RenderPool
    client: openai.AsyncOpenAI
    model: str
    render: RenderSettings
    adapter: Adapter
    journal: BatchJournal
    max_pages: int
    poll_s: float
    retries: int
    keep_furniture: bool = False
    gather_s: float = BATCH_GATHER_S
    _queue: list[_Page] = field(default_factory=list)
    _waiting: dict[str, dict[str, _Page]] = field(default_factory=dict)
    _tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _timer: asyncio.Task[None] | None = None
    batches_submitted: int = 0
    _flow_run_id: UUID | None = None
    _shown_waiting: bool = False

    async def run_page(self, pdf_path: str, page: int) -> OcrResult:
        custom_id = batch_custom_id(pdf_path, page)
        self._flow_run_id = self._flow_run_id or _current_flow_run_id()
        loop = asyncio.get_running_loop()
        recorded = self.journal.batch_of(custom_id)
        if recorded is not None:  # sent by an earlier session: collect it, never send it again
            item = _Page(custom_id, {}, loop.create_future(), tries=self.retries + 1)
            self._waiting.setdefault(recorded, {})[custom_id] = item
            self._watch(recorded)
            return await item.future
        try:
            image_url = await self.pool.data_url(pdf_path, page, self.render)
        except Exception as exc:  # a page PyMuPDF cannot draw fails alone
            return OcrResult(text=None, attempts=0, error=f"render failed: {exc}"[:300], error_class=ErrorClass.RENDER)
        width, height = data_url_image_size(image_url) if self.adapter.fills_image_size else (0, 0)
        anchor = await self.pool.anchor_text(pdf_path, page) if "{anchor_text}" in self.adapter.text else ""
        body = {"model": self.model, "messages": build_messages(self.adapter, image_url, width=width, height=height, anchor_text=anchor)}
        body.update(self.adapter.sampling.request_kwargs())
        item = _Page(custom_id, body, loop.create_future())
        self._enqueue(item)
        return await item.future

    def _enqueue(self, item: _Page) -> None:
        self._queue.append(item)
        if len(self._queue) >= self.max_pages:
            self._flush()
        elif self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.gather_s)
        self._flush()

    def _flush(self) -> None:
        items, self._queue = self._queue, []
        if items:
            task = asyncio.create_task(self._submit(items))
            self._tasks[f"submit-{id(task)}"] = task

    async def _submit(self, items: list[_Page]) -> None:
        lines = [{"custom_id": i.custom_id, "method": "POST", "url": "/v1/chat/completions", "body": i.body} for i in items]
        data = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        try:
            uploaded = await self.client.files.create(file=("tracr-batch.jsonl", data), purpose="batch")
            batch = await self.client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
        except Exception as exc:  # the pages fail (or go again) like a refused request
            for item in items:
                self._settle(item, _failure(exc))
            return
        self.batches_submitted += 1
        self.journal.submitted(batch.id, uploaded.id, [i.custom_id for i in items])
        waiting = self._waiting.setdefault(batch.id, {})
        for item in items:
            item.tries += 1
            waiting[item.custom_id] = item
        self._watch(batch.id)

    def _watch(self, batch_id: str) -> None:
        if batch_id not in self._tasks or self._tasks[batch_id].done():
            self._tasks[batch_id] = asyncio.create_task(self._poll(batch_id))

    async def _poll(self, batch_id: str) -> None:
        """Wait for the batch to end, then give every page waiting on it its result."""
        while True:
            try:
                batch = await self.client.batches.retrieve(batch_id)
            except Exception as exc:
                if classify_error(exc) in (ErrorClass.AUTH, ErrorClass.NOT_FOUND):
                    self._fail_batch(batch_id, _failure(exc))
                    return
                await asyncio.sleep(self.poll_s)
                continue
            if batch.status in _ENDED:
                break
            await self._show_waiting(True)
            await asyncio.sleep(self.poll_s)
        results: dict[str, OcrResult] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                text = (await self.client.files.content(file_id)).text
                for line in text.splitlines():
                    if line.strip():
                        row = json.loads(line)
                        results[row["custom_id"]] = self._result(row)
        counts = batch.request_counts.model_dump() if batch.request_counts is not None else None
        self.journal.ended(batch_id, "collected", batch.status, counts)
        missing = f"batch {batch.status} without a result for this page"
        for custom_id, item in self._waiting.pop(batch_id, {}).items():
            result = results.get(custom_id) or OcrResult(text=None, attempts=1, error=missing, error_class=ErrorClass.SERVER_ERROR)
            self._settle(item, result)
        if not self._waiting and not self._queue:
            await self._show_waiting(False)

    async def _show_waiting(self, waiting: bool) -> None:
        """Name the run's Prefect state "Waiting for batch" while it only waits on the provider (best effort).

        Only a Running state is renamed, so a cancel in progress is never overwritten.
        """
        if self._flow_run_id is None or waiting == self._shown_waiting:
            return
        self._shown_waiting = waiting
        try:
            async with get_client() as client:
                current = (await client.read_flow_run(self._flow_run_id)).state
                if current is not None and current.type is StateType.RUNNING:
                    name = WAITING_STATE if waiting else "Running"
                    await client.set_flow_run_state(self._flow_run_id, Running(name=name), force=True)
        except Exception:  # the display is not worth failing pages for
            return

    def _fail_batch(self, batch_id: str, result: OcrResult) -> None:
        for item in self._waiting.pop(batch_id, {}).values():
            self._settle(item, result)

    def _settle(self, item: _Page, result: OcrResult) -> None:
        """Hand the page its result, or send it again in a new batch when it failed and tries are left."""
        retryable = result.error_class is not ErrorClass.BAD_REQUEST or "batch_expired" in (result.error or "")
        if not result.ok and item.body and item.tries <= self.retries and retryable:
            self._enqueue(item)
            return
        result.attempts = max(item.tries, 1) if item.body else 1  # a page collected from an earlier session's batch: one request
        if not item.future.done():
            item.future.set_result(result)

    def _result(self, row: dict[str, Any]) -> OcrResult:
        response = row.get("response") or {}
        status = int(response.get("status_code") or 0)
        body = response.get("body") or {}
        if status != 200 or row.get("error"):
            error = row.get("error") or body.get("error") or {}
            message = error.get("message") if isinstance(error, dict) else str(error)
            code = error.get("code") if isinstance(error, dict) else None
            return OcrResult(
                text=None,
                attempts=1,
                error=f"batch: HTTP {status or '?'} {code or ''}: {str(message)[:300]}".replace("  ", " "),
                error_class=status_class(status) if status else ErrorClass.SERVER_ERROR,
            )
        choice = (body.get("choices") or [{}])[0]
        raw = (choice.get("message") or {}).get("content")
        usage = body.get("usage") or {}
        result = OcrResult(
            text=raw,
            attempts=1,
            input_tokens=usage.get("prompt_tokens"),
            output_tokens=usage.get("completion_tokens"),
            finish_reason=choice.get("finish_reason"),
        )
        if raw is None:
            result.error, result.error_class = "batch: a reply without text", ErrorClass.MALFORMED
            return result
        if self.adapter.parser == "none":
            return result
        verdict = judge_reply(self.adapter, first_attempt(self.adapter), raw, result.finish_reason, keep_furniture=self.keep_furniture)
        result.raw = raw
        if verdict.page is None:  # a family's second try is not asked in batch mode: the first reply stands or fails
            result.text = None
            result.error = (verdict.reason or "the family's parser could not read the reply")[:300]
            result.error_class = verdict.failure or ErrorClass.MALFORMED
            return result
        result.text = verdict.page.markdown
        result.dropped = verdict.page.dropped
        result.reply_meta = dict(verdict.page.meta) or None
        return result

    def snapshot(self) -> dict[str, Any]:
        return {"batch": True, "batches_submitted": self.batches_submitted, "batches_open": sorted(self.journal.open)}

    async def aclose(self) -> None:
        """Stop polling; batches this run still waits for are cancelled at the provider (the run is ending without them)."""
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        for batch_id in list(self._waiting):
            try:
                await self.client.batches.cancel(batch_id)
            except Exception:  # already ended, or the provider is gone: the journal keeps it for a resume
                continue
            self.journal.ended(batch_id, "cancelled", "cancelling", None)
        await self.client.close()


def _current_flow_run_id() -> UUID | None:
    """The flow run the pages run in (the model's run), from the task or flow context."""
    task = TaskRunContext.get()
    if task is not None:
        return task.task_run.flow_run_id
    flow = FlowRunContext.get()
    return flow.flow_run.id if flow is not None and flow.flow_run is not None else None


def _failure(exc: BaseException) -> OcrResult:
    return OcrResult(text=None, attempts=1, error=describe_error(exc), error_class=classify_error(exc))
