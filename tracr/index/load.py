"""Reading changed runs into column batches for one bulk insert each.

Each run contributes one row to ``runs``, one per PDF folder to ``pdfs`` and one
per page (the latest journal record, :func:`tracr.outputs.journal.latest_entries`) to ``pages``, with the page's markdown read from ``<page>.md``.
Values are appended to per-column lists and handed to DuckDB as a dict of NumPy
object arrays (a :data:`Frame`), which it scans in bulk; nothing is inserted row
by row. Not Arrow: pyarrow imports pandas into every job process that refreshes
the index, while DuckDB reads these arrays directly, and faster (see
docs/benchmarks.md). Values are already coerced to their column's Python type
here; DuckDB casts them to the table's SQL types on insert.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from tracr.index.scan import RunSource
from tracr.index.schema import HEALTH_SCHEMA, MODEL_SCORE_SCHEMA, TEST_SCHEMA, Columns
from tracr.outputs.files import json_objects, read_bytes, read_json
from tracr.outputs.journal import latest_entries
from tracr.outputs.layout import HEALTH_FILE, JOB_METADATA, PAGE_JOURNAL, PDF_METADATA, RUN_METADATA, SCORES_DIR, SUMMARY_FILE, TESTS_FILE

__all__ = [
    "Frame",
    "PAGE_SCHEMA",
    "PDF_SCHEMA",
    "RUN_SCHEMA",
    "JOB_SCHEMA",
    "Batch",
    "Chunk",
    "to_frame",
    "load_run",
    "load_runs",
    "iter_run_chunks",
    "read_in_background",
    "load_jobs",
    "load_scores",
]

Frame = dict[str, np.ndarray]
"""Column name -> object array of Python values: what ``DuckDBPyConnection.register`` scans."""

Chunk = tuple[Frame, Frame, Frame]


def to_frame(columns: dict[str, list[Any]]) -> Frame:
    """Lists of Python values as object arrays (``np.array(list)`` would guess dtypes and split strings)."""
    frame = {}
    for name, values in columns.items():
        array = np.empty(len(values), dtype=object)
        array[:] = values
        frame[name] = array
    return frame


PAGE_SCHEMA = Columns(
    (
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
        ("finish_reason", "VARCHAR"),
        ("chars", "BIGINT"),
        ("truncated", "BOOLEAN"),
        ("capped_at", "BIGINT"),
        ("error", "VARCHAR"),
        ("error_class", "VARCHAR"),
        ("finished_at", "VARCHAR"),
        ("dropped", "VARCHAR"),
        ("reply_meta", "VARCHAR"),
        ("markdown", "VARCHAR"),
        ("md_path", "VARCHAR"),
    )
)
PDF_SCHEMA = Columns(
    (
        ("job_id", "VARCHAR"),
        ("model_slug", "VARCHAR"),
        ("run", "INTEGER"),
        ("pdf_slug", "VARCHAR"),
        ("source_path", "VARCHAR"),
        ("page_count", "INTEGER"),
        ("pages_selected", "INTEGER"),
        ("status", "VARCHAR"),
        ("error", "VARCHAR"),
        ("started_at", "VARCHAR"),
        ("ended_at", "VARCHAR"),
    )
)
RUN_SCHEMA = Columns(
    (
        ("job_id", "VARCHAR"),
        ("model_slug", "VARCHAR"),
        ("model", "VARCHAR"),
        ("provider", "VARCHAR"),
        ("mode", "VARCHAR"),
        ("run", "INTEGER"),
        ("status", "VARCHAR"),
        ("error", "VARCHAR"),
        ("created_at", "VARCHAR"),
        ("started_at", "VARCHAR"),
        ("ended_at", "VARCHAR"),
        ("wall_seconds", "DOUBLE"),
        ("pages_total", "BIGINT"),
        ("run_dir", "VARCHAR"),
        ("signature", "VARCHAR"),
    )
)
JOB_SCHEMA = Columns(
    (
        ("job_id", "VARCHAR"),
        ("title", "VARCHAR"),
        ("created_at", "VARCHAR"),
        ("signature", "VARCHAR"),
    )
)


class Batch:
    """Column lists for one table, filled row by row in Python, handed to DuckDB once."""

    def __init__(self, schema: Columns) -> None:
        self.schema = schema
        self.columns: dict[str, list[Any]] = {name: [] for name in schema.names}

    def add(self, **values: Any) -> None:
        for name, column in self.columns.items():
            column.append(values.get(name))

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    def to_frame(self) -> Frame:
        return to_frame(self.columns)

    def take(self) -> Frame:
        """The rows so far as a frame; the batch starts empty again."""
        frame = self.to_frame()
        self.columns = {name: [] for name in self.schema.names}
        return frame


def _read_markdown(path: str) -> str | None:
    data = read_bytes(path)
    return None if data is None else data.decode("utf-8", errors="replace")


def _int(value: Any) -> int | None:
    return value if type(value) is int else None  # type(), not isinstance: a JSON true is not a count


def _float(value: Any) -> float | None:
    kind = type(value)
    return value if kind is float else float(value) if kind is int else None


def _str(value: Any) -> str | None:
    return value if type(value) is str else None


def _flag(value: Any) -> bool:
    return value is True


def _names(value: Any) -> str | None:
    """The furniture a parser dropped, comma-joined (``page_header,page_footer``)."""
    return ",".join(v for v in value if type(v) is str) or None if isinstance(value, list) else None


def _json(value: Any) -> str | None:
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if isinstance(value, dict) and value else None


# Journal fields with their converters; anything of the wrong type becomes NULL rather than failing the refresh.
_PAGE_FIELDS: tuple[tuple[str, Callable[[Any], Any]], ...] = (
    ("status", _str),
    ("attempts", _int),
    ("latency_s", _float),
    ("ttft_s", _float),
    ("input_tokens", _int),
    ("output_tokens", _int),
    ("finish_reason", _str),
    ("chars", _int),
    ("truncated", _flag),
    ("capped_at", _int),
    ("error", _str),
    ("error_class", _str),
    ("finished_at", _str),
    ("dropped", _names),
    ("reply_meta", _json),
)


def load_run(source: RunSource, root: str, runs: Batch, pdfs: Batch, pages: Batch, after_pdf: Callable[[], None] | None = None) -> None:
    """Append one run's rows to the three batches (``after_pdf`` is called after each PDF)."""
    key = {"job_id": source.job_id, "model_slug": source.model_slug, "run": source.run}
    meta = read_json(os.path.join(source.run_dir, RUN_METADATA)) or {}
    model: dict[str, Any] = meta["model"] if isinstance(meta.get("model"), dict) else {}
    rollup: dict[str, Any] = meta["rollup"] if isinstance(meta.get("rollup"), dict) else {}
    rel_run_dir = os.path.relpath(source.run_dir, root)
    runs.add(
        **key,
        model=_str(model.get("model")),
        provider=_str(model.get("provider")),
        mode=_str(model.get("mode")),
        status=_str(meta.get("status")) or "unknown",
        error=_str(meta.get("error")),
        created_at=_str(meta.get("created_at")),
        started_at=_str(meta.get("started_at")),
        ended_at=_str(meta.get("ended_at")),
        wall_seconds=_float(rollup.get("wall_seconds")),
        pages_total=_int(rollup.get("pages_total")),
        run_dir=rel_run_dir,
        signature=source.signature,
    )
    for pdf_slug in source.pdf_slugs:
        page_cols = pages.columns  # per PDF: after_pdf() may have taken the batch
        pdf_dir = f"{source.run_dir}/{pdf_slug}"
        pdf_meta = read_json(f"{pdf_dir}/{PDF_METADATA}") or {}
        pdfs.add(
            **key,
            pdf_slug=pdf_slug,
            source_path=_str(pdf_meta.get("source_path")),
            page_count=_int(pdf_meta.get("page_count")),
            pages_selected=_int(pdf_meta.get("pages_selected")),
            status=_str(pdf_meta.get("status")),
            error=_str(pdf_meta.get("error")),
            started_at=_str(pdf_meta.get("started_at")),
            ended_at=_str(pdf_meta.get("ended_at")),
        )
        latest = latest_entries(f"{pdf_dir}/{PAGE_JOURNAL}")
        numbers = sorted(latest)
        records = [latest[page] for page in numbers]
        # column by column, one comprehension each: a 100,000-page refresh spends its Python time here
        texts = [
            _read_markdown(f"{pdf_dir}/{page}.md") if record.get("status") == "done" else None
            for page, record in zip(numbers, records, strict=False)
        ]
        count = len(records)
        page_cols["job_id"] += [source.job_id] * count
        page_cols["model_slug"] += [source.model_slug] * count
        page_cols["run"] += [source.run] * count
        page_cols["pdf_slug"] += [pdf_slug] * count
        page_cols["page"] += numbers
        for name, convert in _PAGE_FIELDS:
            page_cols[name] += [convert(record.get(name)) for record in records]
        page_cols["markdown"] += texts
        rel_pdf_dir = f"{rel_run_dir}/{pdf_slug}"
        page_cols["md_path"] += [
            f"{rel_pdf_dir}/{page}.md" if text is not None else None for page, text in zip(numbers, texts, strict=False)
        ]
        if after_pdf is not None:
            after_pdf()


def load_runs(sources: Iterable[RunSource], root: str) -> Chunk:
    """``(runs, pdfs, pages)`` frames for ``sources``, all at once."""
    runs, pdfs, pages = Batch(RUN_SCHEMA), Batch(PDF_SCHEMA), Batch(PAGE_SCHEMA)
    for source in sources:
        load_run(source, root, runs, pdfs, pages)
    return runs.to_frame(), pdfs.to_frame(), pages.to_frame()


def iter_run_chunks(sources: Iterable[RunSource], root: str, *, pages_per_chunk: int = 20_000) -> Iterator[Chunk]:
    """``(runs, pdfs, pages)`` frames of about ``pages_per_chunk`` pages each.

    Chunks end at PDF boundaries; a run's own row comes with its first chunk.
    Streaming lets the caller insert one chunk while the next is being read.
    """
    runs, pdfs, pages = Batch(RUN_SCHEMA), Batch(PDF_SCHEMA), Batch(PAGE_SCHEMA)
    ready: list[Chunk] = []

    def take() -> None:
        if len(runs) or len(pdfs) or len(pages):
            ready.append((runs.take(), pdfs.take(), pages.take()))

    def after_pdf() -> None:
        if len(pages) >= pages_per_chunk:
            take()

    for source in sources:
        load_run(source, root, runs, pdfs, pages, after_pdf)
        yield from ready
        ready.clear()
    take()
    yield from ready


def read_in_background(sources: list[RunSource], root: str, *, pages_per_chunk: int = 20_000) -> Iterator[Chunk]:
    """Chunks of ``sources`` read by a worker thread, one chunk ahead of the consumer.

    Reading files and parsing journals is Python work; DuckDB's insert of the
    previous chunk compresses and writes meanwhile without the GIL, so the two
    partly overlap (scanning the Python values themselves needs the GIL).
    """
    chunks: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    done = object()

    def put(item: object) -> bool:
        """Queue ``item`` unless the consumer has gone (then say so)."""
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in iter_run_chunks(sources, root, pages_per_chunk=pages_per_chunk):
                if not put(chunk):
                    return
            put(done)
        except BaseException as exc:  # handed to the consumer, which raises it
            put(exc)

    worker = threading.Thread(target=produce, name="index-reader", daemon=True)
    worker.start()
    try:
        while (item := chunks.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


def load_jobs(jobs: Iterable[tuple[str, str, str]]) -> Frame:
    """One row per ``(job_id, job_dir, signature)`` from its ``job_metadata.json``."""
    batch = Batch(JOB_SCHEMA)
    for job_id, job_dir, signature in jobs:
        meta = read_json(os.path.join(job_dir, JOB_METADATA)) or {}
        batch.add(job_id=job_id, title=_str(meta.get("title")), created_at=_str(meta.get("created_at")), signature=signature)
    return batch.to_frame()


def _jsonl_rows(path: str) -> Iterator[dict[str, Any]]:
    return json_objects((read_bytes(path) or b"").splitlines())


def load_scores(jobs: Iterable[tuple[str, str]]) -> tuple[Frame, Frame, Frame]:
    """``page_health``, ``test_outcomes`` and ``model_scores`` rows from each ``(job_id, job_dir)``'s ``scores/``."""
    health, tests, models = Batch(HEALTH_SCHEMA), Batch(TEST_SCHEMA), Batch(MODEL_SCORE_SCHEMA)
    for job_id, job_dir in jobs:
        scores = os.path.join(job_dir, SCORES_DIR)
        for row in _jsonl_rows(os.path.join(scores, HEALTH_FILE)):
            for issue in row.get("issues") or []:
                health.add(
                    job_id=job_id,
                    model_slug=_str(row.get("model_slug")),
                    run=_int(row.get("run")),
                    pdf_slug=_str(row.get("pdf_slug")),
                    page=_int(row.get("page")),
                    kind=_str(issue.get("kind")),
                    detail=_str(issue.get("detail")),
                )
        for row in _jsonl_rows(os.path.join(scores, TESTS_FILE)):
            tests.add(
                job_id=job_id,
                test_id=_str(row.get("id")),
                type=_str(row.get("type")),
                category=_str(row.get("category")),
                pdf=_str(row.get("pdf")),
                page=_int(row.get("page")),
                pdf_slug=_str(row.get("pdf_slug")),
                model_slug=_str(row.get("model_slug")),
                run=_int(row.get("run")),
                passed=bool(row.get("passed")),
                explanation=_str(row.get("explanation")),
            )
        summary = read_json(os.path.join(scores, SUMMARY_FILE)) or {}
        scored_at = _str((summary.get("options") or {}).get("scored_at"))
        for slug, entry in (summary.get("models") or {}).items():
            if not isinstance(entry, dict):
                continue
            h = entry.get("health") or {}
            kinds = h.get("by_kind") or {}
            overall = (entry.get("tests") or {}).get("overall") or {}
            ref = entry.get("reference") or {}
            models.add(
                job_id=job_id,
                model_slug=_str(slug),
                scored_at=scored_at,
                pages=_int(h.get("pages")),
                failing_pages=_int(h.get("failing_pages")),
                failure_rate=_float(h.get("failure_rate")),
                **{f"{k}_rate": _float(kinds.get(k)) for k in ("empty", "cut_off", "repetition", "wrong_script", "bad_table")},
                tests=_int((entry.get("tests") or {}).get("n_tests")),
                pass_rate=_float(overall.get("estimate")),
                pass_low=_float(overall.get("low")),
                pass_high=_float(overall.get("high")),
                char_ned=_float(ref.get("char_ned")),
                word_ned=_float(ref.get("word_ned")),
                teds=_float(ref.get("teds")),
                kendall_tau=_float(ref.get("kendall_tau")),
                cost_per_1000_pages=_float((entry.get("cost") or {}).get("cost_per_1000_pages")),
                pages_per_s=_float(entry.get("pages_per_s")),
            )
    return health.to_frame(), tests.to_frame(), models.to_frame()
