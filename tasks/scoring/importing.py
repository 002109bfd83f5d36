"""Writing a run of outputs made elsewhere (``tracr import``) as a normal run of the output tree.

The run gets the usual files (``run_metadata.json`` marked ``imported: true``, per-PDF
``pages.jsonl`` through :mod:`tracr.outputs.journal`, ``pdf_metadata.json``, page
markdown), and model and job metadata are refreshed from them, so the index,
reviewer and scorer see an imported run like any other. Repeats (olmOCR-Bench's
``_repeat<r>``) become one run each; the last one's metadata lists them all
(``import.repeat_runs``), which is how the scorer knows to treat them as repeats.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tracr.errors import ErrorClass, TracrError
from tracr.outputs.files import write_text_atomic
from tracr.outputs.inputs import iter_job_inputs, write_job_inputs
from tracr.outputs.journal import PageRecord, append_record, pdf_metadata_text
from tracr.outputs.layout import OutputLayout, RunLocation
from tracr.outputs.rollup import Rollup
from tracr.outputs.slugs import pdf_slugs
from tracr.outputs.timestamps import utc_now
from tracr.run.journal_totals import JournalTotals, PdfOutcome
from tracr.run.recorder import RunRecorder, refresh_job_metadata, refresh_model_metadata
from tracr.run.state import RunStatus

__all__ = ["ImportError_", "ensure_job", "write_run", "write_repeats", "job_inputs", "import_outputs"]


class ImportError_(TracrError):
    """Outputs that cannot be imported; the message names the file."""

    default_class = ErrorClass.INPUT


def job_inputs(layout: OutputLayout, job_id: str) -> list[dict[str, Any]]:
    """The job's input PDFs (PDF slug, source path, page count), or ``[]``."""
    return [i for i in iter_job_inputs(layout, job_id) if i.get("pdf_slug")]


def ensure_job(
    layout: OutputLayout, job_id: str, pdfs: Sequence[str], *, title: str | None = None, page_counts: Mapping[str, int] | None = None
) -> list[dict[str, Any]]:
    """Create a job from PDFs when none exists (``tracr import --inputs``); returns the job's inputs."""
    existing = job_inputs(layout, job_id)
    if existing:
        return existing
    slugs = pdf_slugs(list(pdfs))
    inputs = [
        {
            "pdf_slug": slugs[p],
            "path": str(p),
            "page_count": (page_counts or {}).get(p),
            "pages_selected": (page_counts or {}).get(p),
            "error": None,
        }
        for p in pdfs
    ]
    summary = write_job_inputs(layout, job_id, inputs)
    refresh_job_metadata(layout, job_id, {"title": title or f"imported job {job_id}", "inputs": summary, "created_by": "tracr import"})
    return inputs


def write_run(
    layout: OutputLayout,
    job_id: str,
    model_slug: str,
    pages: Mapping[tuple[str, int], str | None],
    *,
    model: Mapping[str, Any] | None = None,
    imported: Mapping[str, Any] | None = None,
    finish_reasons: Mapping[tuple[str, int], str] | None = None,
    tokens: Mapping[tuple[str, int], tuple[int, int]] | None = None,
) -> RunLocation:
    """A new ``run-<n>`` of ``model_slug`` holding ``pages`` (``(pdf_slug, page) -> markdown``, ``None`` = failed).

    ``imported`` (source folder, layout, repeat) is recorded under ``import`` and marks the run ``imported: true``;
    ``None`` writes a plain run (tests use it to build jobs).
    """
    model_dict = {
        "model": model_slug,
        "provider": "imported" if imported is not None else "test",
        "mode": "api",
        "slug": model_slug,
        **(model or {}),
    }
    location = layout.allocate_run(job_id, model_slug)
    base: dict[str, Any] = {"model": model_dict, "settings": {}}
    if imported is not None:
        base.update({"imported": True, "import": dict(imported)})
    recorder = RunRecorder(location, base)
    recorder.set_status(RunStatus.RUNNING)
    run_rollup = Rollup()
    documents = JournalTotals()
    by_pdf: dict[str, list[tuple[int, str | None]]] = {}
    for (pdf_slug, page), text in sorted(pages.items()):
        by_pdf.setdefault(pdf_slug, []).append((page, text))
    for pdf_slug, items in by_pdf.items():
        pdf_dir = location.pdf_dir(pdf_slug)
        pdf_dir.mkdir(parents=True, exist_ok=True)
        rollup = Rollup(pages_total=len(items))
        lines = []
        started = utc_now()
        for page, text in items:
            if text is None:
                record = PageRecord(
                    page=page, status="failed", attempts=1, error="no output for this page", error_class=ErrorClass.MALFORMED.value
                )
            else:
                write_text_atomic(location.page_markdown(pdf_slug, page), text)
                tin, tout = (tokens or {}).get((pdf_slug, page), (None, None))
                record = PageRecord(
                    page=page,
                    status="done",
                    attempts=1,
                    finish_reason=(finish_reasons or {}).get((pdf_slug, page), "stop"),
                    chars=len(text),
                    input_tokens=tin,
                    output_tokens=tout,
                )
            lines.append(append_record(location.page_journal(pdf_slug), record))
            rollup.add_page(record)
        header = {
            "pdf_slug": pdf_slug,
            "source_path": None,
            "page_count": None,
            "pages_selected": len(items),
            "status": "completed",
            "error": None,
            "started_at": started,
            "ended_at": utc_now(),
            "rollup": rollup.to_dict(),
        }
        write_text_atomic(location.pdf_metadata(pdf_slug), pdf_metadata_text(header, lines))
        run_rollup.add(rollup)
        documents.add(PdfOutcome(pdf_slug, "completed", None, rollup))
    recorder.update(run_rollup, documents=documents.record())
    recorder.set_status(RunStatus.COMPLETED)
    refresh_model_metadata(layout, job_id, model_slug, dict(model_dict))
    refresh_job_metadata(layout, job_id)
    return location


def write_repeats(
    layout: OutputLayout,
    job_id: str,
    model_slug: str,
    repeats: Sequence[Mapping[tuple[str, int], str | None]],
    *,
    imported: Mapping[str, Any],
) -> list[RunLocation]:
    """One run per repeat; the last run's metadata names all of them (``import.repeat_runs``)."""
    locations = []
    for number, pages in enumerate(repeats, start=1):
        locations.append(
            write_run(
                layout,
                job_id,
                model_slug,
                pages,
                model={"model": imported.get("model", model_slug)},
                imported={**imported, "repeat": number, "repeats": len(repeats)},
            )
        )
    if len(locations) > 1:
        last = locations[-1]
        RunRecorder(
            last,
            {"import": {**imported, "repeat": len(locations), "repeats": len(locations), "repeat_runs": [loc.run for loc in locations]}},
        )
    return locations


def import_outputs(outputs: Path, job_id: str, model: str, source: Path, *, inputs: Path | None = None) -> list[RunLocation]:
    """``tracr import``: a job's new run(s) of ``model`` from ``source`` (plain tree or olmOCR-Bench candidates).

    A job that does not exist yet is created from the PDFs under ``inputs``.
    """
    from tracr.config.inputs import InputError, discover_pdfs
    from tracr.documents.pdf import inspect_pdf
    from tracr.outputs.slugs import slugify
    from tracr.scoring.imports import plan_import
    from tracr.scoring.job import JobPdf

    layout = OutputLayout(outputs)
    if not source.is_dir():
        raise ImportError_(f"{source}: not a folder of outputs")
    if not job_inputs(layout, job_id):
        if inputs is None:
            raise ImportError_(f"no job {job_id!r} under {outputs}: run it first, or pass --inputs DIR (its PDFs) to create it")
        try:
            pdfs = discover_pdfs(str(inputs))
        except InputError as exc:
            raise ImportError_(str(exc)) from None
        counts = {}
        for pdf in pdfs:
            try:
                counts[pdf] = inspect_pdf(Path(pdf)).page_count
            except Exception as exc:
                raise ImportError_(f"{pdf}: cannot read the PDF ({exc})") from None
        ensure_job(layout, job_id, pdfs, page_counts=counts)
    job_pdfs = [JobPdf(str(i["pdf_slug"]), str(i.get("path") or i["pdf_slug"]), i.get("page_count")) for i in job_inputs(layout, job_id)]
    files = [p.relative_to(source).as_posix() for p in sorted(source.rglob("*.md")) if p.is_file()]
    kind, repeats = plan_import(files, job_pdfs, source=str(source))
    slug = slugify(model)
    texts = [{key: (source / rel).read_text(encoding="utf-8", errors="replace") for key, rel in pages.items()} for pages in repeats]
    info = {"source": str(source), "layout": kind, "model": model, "imported_at": utc_now()}
    if len(texts) == 1:
        return [write_run(layout, job_id, slug, texts[0], model={"model": model}, imported=info)]
    return write_repeats(layout, job_id, slug, texts, imported=info)
