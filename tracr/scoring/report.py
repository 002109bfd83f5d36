"""Plain-text tables of a job's scores (``tracr score``, ``tracr show``), read from ``scores/summary.json``."""

from __future__ import annotations

from typing import Any

from tracr.outputs.files import read_json
from tracr.outputs.layout import OutputLayout
from tracr.outputs.report import format_table

__all__ = ["score_rows", "scores_text", "pct", "interval_text"]


def pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def interval_text(interval: dict[str, Any] | None) -> str:
    """``82.4% [80.1–84.6]`` from a summary interval."""
    if not interval:
        return "-"
    return f"{100 * interval['estimate']:.1f}% [{100 * interval['low']:.1f}–{100 * interval['high']:.1f}]"


def _num(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def score_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per model: health failure rates by kind, test pass rate with interval, reference sub-scores, cost."""
    rows = []
    kinds = summary.get("issue_kinds") or []
    for slug, entry in sorted((summary.get("models") or {}).items()):
        health = entry.get("health") or {}
        row: dict[str, Any] = {"model": slug, "runs": ",".join(str(r) for r in entry.get("runs", [])), "pages": health.get("pages", 0)}
        row["unhealthy"] = pct(health.get("failure_rate"))
        for kind in kinds:
            row[kind] = pct((health.get("by_kind") or {}).get(kind))
        tests = entry.get("tests")
        row["tests passed [95% CI]"] = interval_text(tests.get("overall")) if tests else "-"
        ref = entry.get("reference")
        if ref is not None:
            row["char NED"] = _num(ref.get("char_ned"))
            row["word NED"] = _num(ref.get("word_ned"))
            row["TEDS"] = _num(ref.get("teds"))
            row["order tau"] = _num(ref.get("kendall_tau"))
        cost = entry.get("cost")
        if cost is not None:
            row["cost/1k pages"] = _num(cost.get("cost_per_1000_pages"), 2)
        row["pages/s"] = _num(entry.get("pages_per_s"), 2)
        rows.append(row)
    if rows:  # rows must share keys for format_table
        keys = list(dict.fromkeys(k for r in rows for k in r))
        rows = [{k: r.get(k, "-") for k in keys} for r in rows]
    return rows


def scores_text(layout: OutputLayout, job_id: str) -> str:
    """The scores section of ``tracr show``; empty when the job was never scored."""
    summary = read_json(layout.scores_summary(job_id))
    if summary is None:
        return ""
    lines = ["scores (tracr score; scores/summary.json):", format_table(score_rows(summary))]
    categories = []
    for slug, entry in sorted((summary.get("models") or {}).items()):
        for name, interval in ((entry.get("tests") or {}).get("categories") or {}).items():
            categories.append({"model": slug, "category": name, "passed [95% CI]": interval_text(interval)})
    if categories:
        lines += ["", format_table(categories)]
    paired = summary.get("paired") or []
    if paired:
        lines += ["", "paired sign-flip tests (difference of overall pass rates):"]
        lines.append(
            format_table([{"a": p["a"], "b": p["b"], "difference": pct(p["difference"]), "p": f"{p['p_value']:.4f}"} for p in paired])
        )
    return "\n".join(lines)
