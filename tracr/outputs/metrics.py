"""Run and job metrics: speed, latency percentiles, tokens, failures by class.

Computed from the page journals (the source of truth on disk), so a resumed run's
metrics cover every page it holds, whichever session wrote it. Written as
``metrics.json`` per run and ``job_metrics.json`` per job (each model's latest run).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tracr.outputs.files import read_json, write_json_atomic
from tracr.outputs.journal import PageRecord, latest_page_records, read_page_journal
from tracr.outputs.layout import PAGE_JOURNAL, OutputLayout, RunLocation
from tracr.outputs.timestamps import utc_now

__all__ = ["percentiles", "run_page_records", "compute_run_metrics", "write_run_metrics", "read_run_metrics", "write_job_metrics"]

PERCENTILES = (50, 90, 99)


def percentiles(values: Sequence[float], qs: Iterable[int] = PERCENTILES) -> dict[str, float | None]:
    """``{"p50": …}`` by linear interpolation between closest ranks; ``None`` without data."""
    ordered = sorted(values)
    out: dict[str, float | None] = {}
    for q in qs:
        if not ordered:
            out[f"p{q}"] = None
            continue
        rank = (len(ordered) - 1) * q / 100
        low, high = math.floor(rank), math.ceil(rank)
        out[f"p{q}"] = round(ordered[low] + (ordered[high] - ordered[low]) * (rank - low), 4)
    return out


def run_page_records(location: RunLocation) -> Iterable[tuple[str, PageRecord]]:
    """``(pdf_slug, latest record)`` for every page of a run, PDFs in name order.

    Folder names as strings, not ``Path``s: the end of a run over 20,000 PDFs reads
    them all, and 20,000 ``Path`` objects were its memory peak.
    """
    run_dir = str(location.run_dir)
    try:
        with os.scandir(run_dir) as entries:
            names = sorted(entry.name for entry in entries if entry.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in names:
        for record in latest_page_records(read_page_journal(os.path.join(run_dir, name, PAGE_JOURNAL))):
            yield name, record


def compute_run_metrics(location: RunLocation, wall_seconds: float, hardware: dict[str, Any] | None = None) -> dict[str, Any]:
    """Metrics of one run from its journals; ``wall_seconds`` is the run's busy time (all sessions)."""
    latencies, ttfts = [], []
    tokens_in = tokens_out = done = failed = truncated = 0
    errors: Counter[str] = Counter()
    for _, record in run_page_records(location):
        tokens_in += record.input_tokens or 0
        if record.status == "done":
            done += 1
            truncated += record.truncated
            tokens_out += record.output_tokens or 0
            if record.latency_s is not None:
                latencies.append(record.latency_s)
            if record.ttft_s is not None:
                ttfts.append(record.ttft_s)
        else:
            failed += 1
            errors[record.error_class or "unknown"] += 1
    meta = read_json(location.run_metadata) or {}
    wall = max(0.0, wall_seconds)
    return {
        "job_id": location.job_id,
        "model_slug": location.model_slug,
        "run": location.run,
        "status": meta.get("status"),
        "pages_total": (meta.get("rollup") or {}).get("pages_total", done + failed),
        "pages_done": done,
        "pages_failed": failed,
        "pages_truncated": truncated,
        "wall_seconds": round(wall, 3),
        "pages_per_s": round(done / wall, 3) if wall > 0 else 0.0,
        "output_tokens_per_s": round(tokens_out / wall, 2) if wall > 0 else 0.0,
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "latency_s": percentiles(latencies),
        "ttft_s": percentiles(ttfts),
        "failures_by_class": dict(sorted(errors.items())),
        "resumes": int(meta.get("resumes", 0)),
        "hardware": hardware,
        "written_at": utc_now(),
    }


def write_run_metrics(location: RunLocation, wall_seconds: float, hardware: dict[str, Any] | None = None) -> dict[str, Any]:
    metrics = compute_run_metrics(location, wall_seconds, hardware)
    write_json_atomic(location.metrics, metrics)
    return metrics


def read_run_metrics(location: RunLocation) -> dict[str, Any]:
    """The run's ``metrics.json``, or metrics computed now (a run still going, or from before metrics existed)."""
    stored = read_json(location.metrics)
    if stored is not None:
        return stored
    meta = read_json(location.run_metadata) or {}
    return compute_run_metrics(location, float((meta.get("rollup") or {}).get("wall_seconds") or 0.0))


def write_job_metrics(layout: OutputLayout, job_id: str) -> dict[str, Any]:
    """``job_metrics.json``: each model's latest run metrics, plus job totals."""
    models: dict[str, Any] = {}
    for slug in layout.model_slugs(job_id):
        numbers = layout.run_numbers(job_id, slug)
        if numbers:
            models[slug] = read_run_metrics(layout.run(job_id, slug, numbers[-1]))
    failures: Counter[str] = Counter()
    for metrics in models.values():
        failures.update(metrics.get("failures_by_class") or {})
    payload = {
        "job_id": job_id,
        "models": models,
        "totals": {
            "pages_done": sum(m["pages_done"] for m in models.values()),
            "pages_failed": sum(m["pages_failed"] for m in models.values()),
            "input_tokens": sum(m["input_tokens"] for m in models.values()),
            "output_tokens": sum(m["output_tokens"] for m in models.values()),
            "failures_by_class": dict(sorted(failures.items())),
        },
        "updated_at": utc_now(),
    }
    path: Path = layout.job_metrics(job_id)
    if layout.job_dir(job_id).is_dir():
        write_json_atomic(path, payload)
    return payload
