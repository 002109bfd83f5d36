"""Plain-text summaries of the output tree for the command line.

Everything here reads metadata files only, so ``tracr list`` and ``tracr show``
work on any outputs folder, including one copied from another machine.
"""

from __future__ import annotations

from typing import Any

from tracr.outputs.documents_report import document_count_rows, failed_document_rows
from tracr.outputs.files import read_json
from tracr.outputs.identifiers import InvalidIdentifier, safe_child, validate_job_id, validate_number, validate_slug
from tracr.outputs.journal import latest_page_records, read_page_journal
from tracr.outputs.layout import PDF_METADATA, OutputLayout
from tracr.outputs.metrics import read_run_metrics

__all__ = [
    "format_table",
    "job_rows",
    "job_exists",
    "list_jobs_text",
    "show_job_text",
    "run_rows",
    "metrics_rows",
    "failed_pages",
    "duplicate_of",
    "duplicate_text",
]


def format_table(rows: list[dict[str, Any]]) -> str:
    """Left-aligned columns from a list of dicts sharing keys."""
    if not rows:
        return "(nothing)"
    headers = list(rows[0])
    cells = [[str(row.get(h, "")) for h in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=False)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(c) for c in cells)])


def job_rows(layout: OutputLayout) -> list[dict[str, Any]]:
    rows = []
    for job_id in layout.job_ids():
        meta = read_json(layout.job_metadata(job_id)) or {}
        latest = meta.get("latest_rollup") or {}
        rows.append(
            {
                "job": job_id,
                "title": meta.get("title") or "",
                "models": len(meta.get("models") or []),
                "runs": sum(m.get("runs", 0) for m in meta.get("models") or []),
                "latest runs: done": latest.get("pages_done", 0),
                "failed": latest.get("pages_failed", 0),
                "updated": meta.get("updated_at") or "",
            }
        )
    return rows


def _job(layout: OutputLayout, job_id: str) -> str:
    """``job_id`` once it is valid and its folder is inside the outputs root; else :class:`InvalidIdentifier`."""
    safe_child(layout.root, validate_job_id(job_id))
    return job_id


def job_exists(layout: OutputLayout, job_id: str) -> bool:
    """Whether ``job_id`` is a valid job id with a job under the outputs root (never a path outside it)."""
    try:
        _job(layout, job_id)
    except InvalidIdentifier:
        return False
    return layout.job_metadata(job_id).is_file()


def run_rows(layout: OutputLayout, job_id: str, only_runs: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """One row per run of the job (or only the given ``{model_slug: run}``)."""
    _job(layout, job_id)
    rows = []
    for slug in layout.model_slugs(job_id):
        for number in layout.run_numbers(job_id, slug):
            if only_runs is not None and only_runs.get(slug) != number:
                continue
            meta = read_json(layout.run(job_id, slug, number).run_metadata) or {}
            rollup = meta.get("rollup") or {}
            rows.append(
                {
                    "model": slug,
                    "run": number,
                    "status": meta.get("status", "unknown"),
                    "done": rollup.get("pages_done", 0),
                    "failed": rollup.get("pages_failed", 0),
                    "cut off": rollup.get("pages_truncated", 0),
                    "of": rollup.get("pages_total", 0),
                    "tokens in/out": f"{rollup.get('input_tokens', 0)}/{rollup.get('output_tokens', 0)}",
                    "seconds": rollup.get("wall_seconds", 0),
                    "pages/s": rollup.get("pages_per_s", 0),
                    "error": (meta.get("error") or "")[:80],
                }
            )
    return rows


def failed_pages(layout: OutputLayout, job_id: str, model_slug: str, run: int, limit: int = 10) -> list[dict[str, Any]]:
    """The first ``limit`` failed pages of a run, with their errors, plus failed PDFs."""
    _job(layout, job_id)
    validate_slug(model_slug, "model slug")
    validate_number(run, "run")
    location = layout.run(job_id, model_slug, run)
    out: list[dict[str, Any]] = []
    if not location.run_dir.is_dir():
        return out
    for pdf_dir in sorted(p for p in location.run_dir.iterdir() if p.is_dir()):
        pdf_meta = read_json(pdf_dir / PDF_METADATA) or {}
        if pdf_meta.get("status") == "failed" and pdf_meta.get("error"):
            out.append({"pdf": pdf_dir.name, "page": "-", "error": pdf_meta["error"][:100]})
        for record in latest_page_records(read_page_journal(location.page_journal(pdf_dir.name))):
            if record.status == "failed":
                out.append({"pdf": pdf_dir.name, "page": record.page, "error": f"[{record.error_class}] {record.error or ''}"[:100]})
        if len(out) >= limit:
            break
    return out[:limit]


def list_jobs_text(layout: OutputLayout) -> str:
    return format_table(job_rows(layout)) if layout.job_ids() else f"no jobs under {layout.root}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def metrics_rows(layout: OutputLayout, job_id: str) -> list[dict[str, Any]]:
    """One row per run: status, pages, speed, latency and TTFT percentiles, tokens, errors by class."""
    _job(layout, job_id)
    rows = []
    for slug in layout.model_slugs(job_id):
        for number in layout.run_numbers(job_id, slug):
            m = read_run_metrics(layout.run(job_id, slug, number))
            rows.append(
                {
                    "model": slug,
                    "run": number,
                    "status": m.get("status") or "unknown",
                    "done": m["pages_done"],
                    "failed": m["pages_failed"],
                    "cut off": m.get("pages_truncated", 0),
                    "of": m.get("pages_total", 0),
                    "pages/s": m["pages_per_s"],
                    "p50 s": _seconds(m["latency_s"]["p50"]),
                    "p90 s": _seconds(m["latency_s"]["p90"]),
                    "ttft p50 s": _seconds(m["ttft_s"]["p50"]),
                    "tokens in/out": f"{m['input_tokens']}/{m['output_tokens']}",
                    "out tok/s": m["output_tokens_per_s"],
                    "errors": " ".join(f"{k}:{v}" for k, v in (m.get("failures_by_class") or {}).items()) or "-",
                }
            )
    return rows


def show_job_text(layout: OutputLayout, job_id: str) -> str:
    try:
        _job(layout, job_id)
    except InvalidIdentifier as exc:
        return str(exc)
    meta = read_json(layout.job_metadata(job_id))
    if meta is None:
        return f"no job {job_id!r} under {layout.root}"
    head = f"job {job_id}" + (f" — {meta['title']}" if meta.get("title") else "")
    lines = [head, f"outputs: {layout.job_dir(job_id)}", "", format_table(metrics_rows(layout, job_id))]
    errors = [{"model": r["model"], "run": r["run"], "error": r["error"]} for r in run_rows(layout, job_id) if r["error"]]
    if errors:
        lines += ["", "run errors:", format_table(errors)]
    if documents := document_count_rows(layout, job_id):
        lines += ["", f"documents (tracr show {job_id} --pdf SLUG shows one):", format_table(documents)]
    if failed := failed_document_rows(layout, job_id):
        lines += ["", "failed documents:", format_table(failed)]
    if asked := asked_rows(layout, job_id):
        lines += ["", "how each model was asked (tracr models NAME shows an adapter in full):", format_table(asked)]
    return "\n".join(lines)


def asked_rows(layout: OutputLayout, job_id: str) -> list[dict[str, Any]]:
    """Each model's latest run: the adapter it was asked with, its digest, the request and what was dropped."""
    rows = []
    for slug in layout.model_slugs(job_id):
        numbers = layout.run_numbers(job_id, slug)
        meta = read_json(layout.run(job_id, slug, numbers[-1]).run_metadata) if numbers else None
        adapter = ((meta or {}).get("settings") or {}).get("adapter")
        if not adapter:
            continue
        dropped = (adapter.get("settings") or {}).get("furniture") or []
        rows.append(
            {
                "model": slug,
                "run": numbers[-1],
                "adapter": f"{adapter['name']} ({adapter.get('digest', '')[:8]})",
                "request": adapter.get("request", ""),
                "furniture": "kept" if adapter.get("keep_furniture") else ("dropped: " + ", ".join(dropped) if dropped else "-"),
            }
        )
    return rows


def duplicate_of(result: Any) -> dict[str, Any] | None:
    """The active job's claim when a submission was refused as a duplicate (the job flow's result)."""
    return result.get("duplicate_of") if isinstance(result, dict) else None


def duplicate_text(job_id: str, claim: dict[str, Any]) -> str:
    runs = ", ".join(f"{r['model_slug']} run-{r['run']}" for r in claim.get("runs") or []) or "runs being planned"
    return (
        f"job {job_id} with this config is already running: pid {claim.get('pid')} on {claim.get('host')}, "
        f"flow run {claim.get('flow_run_id') or '?'}, since {claim.get('claimed_at')} ({runs}).\n"
        "Not starting another; use --force to start new runs anyway."
    )
