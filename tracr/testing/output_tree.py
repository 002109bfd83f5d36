"""Synthetic output trees laid out exactly as a tracr job writes them.

Used by the index benchmark (100,000 pages) and by tests. Paths come from
:mod:`tracr.outputs.layout`, run metadata from :class:`tracr.run.recorder.RunRecorder`, page
records from :class:`tracr.outputs.journal.PageRecord`, model and job metadata from the
same refresh functions a job calls; ``pdf_metadata.json`` has the shape the PDF
task writes (header, then the page records). Page texts share a base text per
page, and each model perturbs a different share of its words, so models differ
the way real OCR outputs do (and some pairs come out near-identical).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tracr.errors import ErrorClass
from tracr.outputs.files import write_text_atomic
from tracr.outputs.inputs import write_job_inputs
from tracr.outputs.journal import PageRecord, append_record, pdf_metadata_text
from tracr.outputs.layout import OutputLayout
from tracr.outputs.rollup import Rollup
from tracr.outputs.timestamps import iso_utc
from tracr.run.journal_totals import JournalTotals, PdfOutcome
from tracr.run.recorder import RunRecorder, refresh_job_metadata, refresh_model_metadata
from tracr.run.state import RunStatus

__all__ = ["TreeSpec", "ModelProfile", "generate_tree", "page_text", "source_path"]

_WORDS = (
    "invoice total amount due date customer account number payment terms net thirty days "
    "quantity description unit price tax subtotal balance report summary section figure table "
    "revenue quarter growth margin operating expenses cash flow statement assets liabilities equity "
    "the of and to in for on with by from at as is was were be this that these those"
).split()
_FAILURES = [ErrorClass.TIMEOUT, ErrorClass.SERVER_ERROR, ErrorClass.RATE_LIMITED, ErrorClass.MALFORMED]


@dataclass(frozen=True)
class ModelProfile:
    """How one synthetic model behaves."""

    slug: str
    noise: float = 0.05  # share of words replaced
    fail_rate: float = 0.02
    latency_s: float = 2.0
    provider: str = "openai-compatible"


@dataclass(frozen=True)
class TreeSpec:
    job_id: str = "bench"
    models: tuple[ModelProfile, ...] = field(
        default_factory=lambda: (
            ModelProfile("model-a", noise=0.02, latency_s=1.5),
            ModelProfile("model-b", noise=0.08, latency_s=3.0),
            ModelProfile("model-c", noise=0.20, fail_rate=0.05, latency_s=0.8),
            ModelProfile("model-d", noise=0.0, fail_rate=0.0, latency_s=0.2, provider="pdf-text"),
        )
    )
    runs_per_model: int = 1
    pdfs: int = 10
    pages_per_pdf: int = 5
    chars_per_page: int = 1800
    seed: int = 0
    folders: int = 1  # input sub-folders the PDFs are spread over (kind-0/, kind-1/, ...): collections by folder


def page_text(rng: random.Random, chars: int) -> str:
    """A Markdown page: a heading, paragraphs and a small table, about ``chars`` long."""
    parts = [f"# {' '.join(rng.choices(_WORDS, k=4)).title()}\n"]
    size = len(parts[0])
    while size < chars:
        if rng.random() < 0.15:
            rows = ["| item | qty | price |", "|---|---|---|"] + [
                f"| {rng.choice(_WORDS)} | {rng.randint(1, 99)} | {rng.randint(1, 9999) / 100:.2f} |" for _ in range(4)
            ]
            block = "\n".join(rows) + "\n"
        else:
            block = " ".join(rng.choices(_WORDS, k=rng.randint(20, 60))).capitalize() + ".\n"
        parts.append(block)
        size += len(block) + 1
    return "\n".join(parts)


def _perturb(text: str, rng: random.Random, noise: float) -> str:
    if noise <= 0:
        return text
    words = text.split(" ")
    for i in range(len(words)):
        if rng.random() < noise:
            words[i] = rng.choice(_WORDS)
    return " ".join(words)


def source_path(spec: TreeSpec, number: int, pdf_slug: str) -> str:
    """Where the synthetic PDF would be: ``/data/pdfs/<slug>.pdf``, or in a ``kind-<k>/`` folder when spread over several."""
    return f"/data/pdfs/{pdf_slug}.pdf" if spec.folders <= 1 else f"/data/pdfs/kind-{number % spec.folders}/{pdf_slug}.pdf"


def _pdf_metadata(pdf_slug: str, pages: int, lines: list[str], rollup: Rollup, started: str, ended: str, path: str) -> str:
    header = {
        "pdf_slug": pdf_slug,
        "source_path": path,
        "size_bytes": 50_000 * pages,
        "page_count": pages,
        "pages_selected": pages,
        "status": "completed",
        "error": None,
        "started_at": started,
        "ended_at": ended,
        "rollup": rollup.to_dict(),
    }
    return pdf_metadata_text(header, lines)


def generate_tree(root: Path, spec: TreeSpec = TreeSpec()) -> dict[str, int]:
    """Write ``spec``'s job under ``root``; returns counts of what was written."""
    rng = random.Random(spec.seed)
    layout = OutputLayout(Path(root))
    layout.job_dir(spec.job_id).mkdir(parents=True, exist_ok=True)
    pdf_slugs = [f"doc-{i:05d}" for i in range(spec.pdfs)]
    base = {
        (pdf, page): page_text(random.Random(f"{spec.seed}:{pdf}:{page}"), spec.chars_per_page)
        for pdf in pdf_slugs
        for page in range(1, spec.pages_per_pdf + 1)
    }
    inputs = (
        {
            "pdf_slug": s,
            "path": source_path(spec, number, s),
            "page_count": spec.pages_per_pdf,
            "pages_selected": spec.pages_per_pdf,
            "error": None,
        }
        for number, s in enumerate(pdf_slugs)
    )
    summary = write_job_inputs(layout, spec.job_id, inputs)
    refresh_job_metadata(layout, spec.job_id, {"title": f"synthetic job {spec.job_id}", "inputs": summary})
    clock = datetime(2026, 11, 1, tzinfo=UTC)
    counts = {"runs": 0, "pdfs": 0, "pages": 0, "failed": 0}
    for profile in spec.models:
        model_dict = {"model": f"vendor/{profile.slug}", "provider": profile.provider, "mode": "api", "slug": profile.slug}
        for _ in range(spec.runs_per_model):
            location = layout.allocate_run(spec.job_id, profile.slug)
            recorder = RunRecorder(location, {"model": model_dict, "settings": {"max_tokens": 4096}})
            recorder.set_status(RunStatus.RUNNING)
            run_rollup = Rollup()
            documents = JournalTotals()
            started = clock
            for number, pdf in enumerate(pdf_slugs):
                pdf_dir = location.pdf_dir(pdf)
                pdf_dir.mkdir(parents=True)
                rollup = Rollup(pages_total=spec.pages_per_pdf)
                lines = []
                pdf_started = iso_utc(clock)
                for page in range(1, spec.pages_per_pdf + 1):
                    latency = round(rng.lognormvariate(0, 0.4) * profile.latency_s, 4)
                    clock += timedelta(seconds=latency / 8)
                    if rng.random() < profile.fail_rate:
                        error_class = rng.choice(_FAILURES)
                        record = PageRecord(
                            page=page,
                            status="failed",
                            attempts=5,
                            latency_s=latency,
                            error=f"synthetic {error_class.value}",
                            error_class=error_class.value,
                            finished_at=iso_utc(clock),
                        )
                        counts["failed"] += 1
                    else:
                        text = _perturb(base[(pdf, page)], random.Random(f"{profile.slug}:{pdf}:{page}"), profile.noise)
                        (pdf_dir / f"{page}.md").write_text(text, encoding="utf-8")
                        record = PageRecord(
                            page=page,
                            status="done",
                            attempts=1 if rng.random() > 0.05 else 2,
                            latency_s=latency,
                            ttft_s=round(latency * 0.3, 4),
                            input_tokens=1100,
                            output_tokens=len(text) // 4,
                            finish_reason="stop",
                            chars=len(text),
                            finished_at=iso_utc(clock),
                        )
                    line = append_record(location.page_journal(pdf), record)
                    lines.append(line)
                    rollup.add_page(record)
                    counts["pages"] += 1
                rollup.wall_seconds = spec.pages_per_pdf * profile.latency_s / 8
                write_text_atomic(
                    location.pdf_metadata(pdf),
                    _pdf_metadata(pdf, spec.pages_per_pdf, lines, rollup, pdf_started, iso_utc(clock), source_path(spec, number, pdf)),
                )
                run_rollup.add(rollup)
                documents.add(PdfOutcome(pdf, "completed", None, rollup))
                counts["pdfs"] += 1
            run_rollup.wall_seconds = (clock - started).total_seconds()
            recorder.update(run_rollup, documents=documents.record())
            recorder.set_status(RunStatus.COMPLETED)
            counts["runs"] += 1
        refresh_model_metadata(layout, spec.job_id, profile.slug, model_dict)
    refresh_job_metadata(layout, spec.job_id)
    return counts
