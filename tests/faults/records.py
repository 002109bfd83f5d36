"""What the fault tests read back from an output tree: journal lines, files, their agreement."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tracr.outputs.files import read_json
from tracr.outputs.journal import latest_page_records, read_page_journal
from tracr.outputs.timestamps import parse_iso


def stub_job(inputs: Path, base_url: str, job_id: str, key_env: str, *, pdf_concurrency: int = 1, **model: Any) -> dict[str, Any]:
    """A job config of one model on the loopback stub; ``model`` overrides its fields."""
    spec = {"model": "stub-ocr", "base_url": base_url, "api_key_env": key_env, "retries": 0, "max_concurrent_requests": 4, "timeout_s": 30}
    spec.update(model)
    job = {"job_id": job_id, "input_path": str(inputs), "prompt": "OCR", "max_tokens": 64, "pdf_concurrency": pdf_concurrency}
    return {**job, "models": [spec]}


def journal_counts(run_dir: Path) -> dict[str, dict[str, int]]:
    """``{pdf: {"done": n, "failed": n}}`` by the last journal line of each page."""
    counts = {}
    for journal in sorted(run_dir.glob("*/pages.jsonl")):
        latest = latest_page_records(read_page_journal(journal))
        counts[journal.parent.name] = {
            "done": sum(r.status == "done" for r in latest),
            "failed": sum(r.status == "failed" for r in latest),
        }
    return counts


def lines_after(run_dir: Path, moment: str) -> list[str]:
    """Journal lines of the run finished after ``moment`` (an ISO time)."""
    cut = parse_iso(moment)
    late = []
    for journal in run_dir.glob("*/pages.jsonl"):
        late += [f"{journal.parent.name} p{r.page}" for r in read_page_journal(journal) if parse_iso(r.finished_at) > cut]
    return late


def text_under(root: Path) -> str:
    """Every file's text under ``root`` (the tree is small), to look for strings that must not be there."""
    return "\n".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file() and p.suffix != ".duckdb")


def run_meta(run_dir: Path) -> dict[str, Any]:
    return read_json(run_dir / "run_metadata.json") or {}


def assert_records_agree(run_dir: Path) -> dict[str, dict[str, int]]:
    """The run's and each PDF's counts are the journals' counts, and each done page has its file; returns the counts."""
    meta = run_meta(run_dir)
    counts = journal_counts(run_dir)
    assert meta["rollup"]["pages_failed"] == sum(c["failed"] for c in counts.values())
    assert meta["rollup"]["pages_done"] == sum(c["done"] for c in counts.values())
    listed = {entry["pdf_slug"]: entry for entry in meta["documents"]["not_completed"]}
    for slug, count in counts.items():
        pdf = read_json(run_dir / slug / "pdf_metadata.json")
        assert (pdf["rollup"]["pages_done"], pdf["rollup"]["pages_failed"]) == (count["done"], count["failed"]), slug
        if slug in listed:
            assert (listed[slug]["pages_done"], listed[slug]["pages_failed"]) == (count["done"], count["failed"]), slug
        # a done page has its file; pages cut short have neither a file nor a done line
        assert len(list((run_dir / slug).glob("*.md"))) == count["done"], slug
    return counts
