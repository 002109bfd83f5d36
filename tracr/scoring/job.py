"""Scoring one job: match ground truth to the job's pages, score every model, summarise.

Pure given its inputs: the caller (``tasks/scoring/score.py``) reads the output tree and the
reference files and passes plain values here; what comes back are the rows of
``scores/health.jsonl`` and ``scores/tests.jsonl`` and the payload of
``scores/summary.json`` (names in :mod:`tracr.outputs.layout`).

Matching a test to a job PDF: olmOCR-Bench names PDFs by their path relative to its
PDF folder (``headers_footers/x_pg2.pdf``). A job PDF matches when its source path
ends with those path parts (that is, it is at that path relative to some input
folder), else when it is the only job PDF with that file name.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path, PurePath
from typing import Any

from tracr.errors import ErrorClass, TracrError
from tracr.scoring import health, reference, stats
from tracr.scoring.bench_tests import BenchTest, BenchTestError, ScoringOptions, parse_test, run_repeats
from tracr.scoring.cost import TokenPrices, cost_per_1000_pages_from_throughput, cost_per_1000_pages_from_tokens

__all__ = [
    "ScoringInputError",
    "LocatedTest",
    "JobPdf",
    "PageOutput",
    "ModelRuns",
    "load_located_tests",
    "match_pdf",
    "resolve_tests",
    "check_references",
    "health_rows",
    "test_rows",
    "reference_scores",
    "summarise",
]


class ScoringInputError(TracrError):
    """Ground truth that does not fit the job; the message names the file and line."""

    default_class = ErrorClass.INPUT


@dataclass(frozen=True)
class LocatedTest:
    """A test with where it came from (for error messages and audits) and its category."""

    test: BenchTest
    category: str
    source: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"


@dataclass(frozen=True)
class JobPdf:
    """One input PDF of a job, as its ``inputs.jsonl`` records it."""

    pdf_slug: str
    path: str
    page_count: int | None = None


@dataclass(frozen=True)
class PageOutput:
    """One page of one run: its markdown (``None`` when the page failed) and how it ended."""

    model_slug: str
    run: int
    pdf_slug: str
    page: int
    markdown: str | None
    finish_reason: str | None = None
    error_class: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None


@dataclass
class ModelRuns:
    """The runs of one model that are scored together: the latest, or an imported run's repeats."""

    model_slug: str
    runs: list[int]
    pages: dict[tuple[int, str, int], PageOutput] = field(default_factory=dict)  # (run, pdf, page)
    pages_per_s: float | None = None

    def output(self, run: int, pdf_slug: str, page: int) -> PageOutput | None:
        return self.pages.get((run, pdf_slug, page))


def load_located_tests(path: str | Path) -> list[LocatedTest]:
    """olmOCR-Bench tests from a JSONL file (category = the test's type) or a folder of them (category = file stem).

    Raises :class:`ScoringInputError` naming ``file:line`` for a malformed line or a duplicate id.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise ScoringInputError(f"tests folder {path} holds no .jsonl file")
    elif path.is_file():
        files = [path]
    else:
        raise ScoringInputError(f"tests file {path} does not exist")
    located: list[LocatedTest] = []
    seen: dict[str, str] = {}
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ScoringInputError(f"{file}: cannot read the tests ({exc})") from None
        for number, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ScoringInputError(f"{file}:{number}: not valid JSON ({exc.msg} at column {exc.colno})") from None
            try:
                test = parse_test(obj, source=str(file), line=number)
            except BenchTestError as exc:
                raise ScoringInputError(str(exc)) from None
            where = f"{file}:{number}"
            if test.id in seen:
                raise ScoringInputError(f"{where}: field 'id': duplicate id {test.id!r} (first at {seen[test.id]})")
            seen[test.id] = where
            located.append(LocatedTest(test, file.stem if len(files) > 1 or path.is_dir() else test.type, str(file), number))
    return located


def match_pdf(test_pdf: str, pdfs: Sequence[JobPdf]) -> JobPdf | None:
    """The job PDF a test's ``pdf`` names: by path relative to an input folder, else by unique file name."""
    want = PurePath(test_pdf.replace("\\", "/")).parts
    if not want:
        return None
    by_path = [p for p in pdfs if PurePath(p.path).parts[-len(want) :] == want]
    if len(by_path) == 1:
        return by_path[0]
    if len(by_path) > 1:  # the same relative path under two input folders: ambiguous
        return None
    by_name = [p for p in pdfs if PurePath(p.path).name == want[-1]]
    return by_name[0] if len(by_name) == 1 else None


def resolve_tests(
    tests: Sequence[LocatedTest], pdfs: Sequence[JobPdf], pages: Mapping[str, set[int]], *, job_id: str
) -> list[tuple[LocatedTest, str]]:
    """Each test with the job PDF slug it is about; a PDF or page not in the job is an error naming the line.

    ``pages`` maps a PDF slug to the pages some scored run attempted (done or failed).
    """
    resolved = []
    for located in tests:
        test = located.test
        pdf = match_pdf(test.pdf, pdfs)
        if pdf is None:
            names = ", ".join(sorted(PurePath(p.path).name for p in pdfs)[:8])
            raise ScoringInputError(
                f"{located.where}: test {test.id!r} names PDF {test.pdf!r}, which is not in job {job_id} "
                f"(or not uniquely: its PDFs are {names}{', ...' if len(pdfs) > 8 else ''})"
            )
        if test.page not in pages.get(pdf.pdf_slug, set()):
            have = sorted(pages.get(pdf.pdf_slug, set()))
            raise ScoringInputError(
                f"{located.where}: test {test.id!r} is about page {test.page} of {test.pdf!r}, which job {job_id} did not process "
                f"(pages: {_ranges(have) or 'none'})"
            )
        resolved.append((located, pdf.pdf_slug))
    return resolved


def _ranges(numbers: Sequence[int]) -> str:
    out: list[str] = []
    for n in numbers:
        if out and out[-1].split("-")[-1] == str(n - 1):
            out[-1] = f"{out[-1].split('-')[0]}-{n}"
        else:
            out.append(str(n))
    return ",".join(out)


def check_references(
    references: Mapping[tuple[str, int], str], models: Sequence[ModelRuns], pages: Mapping[str, set[int]], *, job_id: str
) -> None:
    """A reference for a page not in the job, or one every scored run failed, is an error naming the file.

    ``references`` maps ``(pdf_slug, page)`` to the reference file's path.
    """
    for (pdf_slug, page), path in sorted(references.items()):
        if page not in pages.get(pdf_slug, set()):
            raise ScoringInputError(f"{path}: reference for page {page} of {pdf_slug!r}, which job {job_id} did not process")
        outputs = [m.output(run, pdf_slug, page) for m in models for run in m.runs]
        if outputs and all(o is None or o.markdown is None for o in outputs):
            raise ScoringInputError(
                f"{path}: reference for page {page} of {pdf_slug!r}, which failed in every scored run (nothing to compare)"
            )


def health_rows(
    models: Sequence[ModelRuns], *, expected_scripts: Iterable[str] | None = None
) -> tuple[list[dict[str, Any]], dict[str, health.ModelHealth]]:
    """Rows of ``health.jsonl`` (pages with issues) and each model's rollup (its first scored run's pages).

    Expected scripts default to the job's dominant scripts over every output.
    """
    if expected_scripts is None:
        expected = health.dominant_scripts(o.markdown for m in models for o in m.pages.values() if o.markdown)
    else:
        expected = frozenset(expected_scripts)
    rows: list[dict[str, Any]] = []
    per_page: list[tuple[str, Sequence[health.HealthIssue]]] = []
    for m in models:
        for key in sorted(m.pages):
            out = m.pages[key]
            if out.markdown is None:
                continue
            issues = health.check_page(out.markdown, out.finish_reason, expected_scripts=expected or None)
            if out.run == m.runs[0]:
                per_page.append((m.model_slug, issues))
            if issues:
                rows.append(
                    {
                        "model_slug": m.model_slug,
                        "run": out.run,
                        "pdf_slug": out.pdf_slug,
                        "page": out.page,
                        "issues": [{"kind": i.kind.value, "detail": i.detail} for i in issues],
                    }
                )
    rolled = health.rollup(per_page)
    for m in models:
        rolled.setdefault(m.model_slug, health.ModelHealth(m.model_slug))
    return rows, rolled


def test_rows(
    resolved: Sequence[tuple[LocatedTest, str]], models: Sequence[ModelRuns], options: ScoringOptions
) -> tuple[list[dict[str, Any]], dict[str, dict[str, list[float]]]]:
    """Rows of ``tests.jsonl`` (one per test, model and run) and per-model per-category 0/1 scores.

    A model's runs are the test's repeats: it passes when more than half of them pass
    (olmOCR-Bench); a failed page counts as a failed repeat. Scores keep test order, so
    two models' lists pair up test by test.
    """
    rows: list[dict[str, Any]] = []
    scores: dict[str, dict[str, list[float]]] = {m.model_slug: defaultdict(list) for m in models}
    for located, pdf_slug in resolved:
        test = located.test
        for m in models:
            outcomes = []
            for run in m.runs:
                out = m.output(run, pdf_slug, test.page)
                markdown = out.markdown if out is not None else None
                outcome = run_repeats(test, [markdown], options)
                if markdown is None:
                    why = f"page failed ({out.error_class})" if out is not None and out.error_class else "no output for this page"
                else:
                    why = "" if outcome.passed else (outcome.explanations[0] if outcome.explanations else "failed")
                rows.append(
                    {
                        "id": test.id,
                        "type": test.type,
                        "category": located.category,
                        "pdf": test.pdf,
                        "page": test.page,
                        "pdf_slug": pdf_slug,
                        "model_slug": m.model_slug,
                        "run": run,
                        "passed": outcome.passed,
                        "explanation": _short(why),
                    }
                )
                outcomes.append(outcome.passed)
            passed = sum(outcomes) / len(outcomes) > 0.5 if outcomes else False
            scores[m.model_slug][located.category].append(1.0 if passed else 0.0)
    return rows, {k: dict(v) for k, v in scores.items()}


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def reference_scores(references: Mapping[tuple[str, int], str], models: Sequence[ModelRuns]) -> dict[str, dict[str, Any]]:
    """Per model (its first scored run): mean and character-weighted NED, word NED, TEDS, reading order.

    ``references`` maps ``(pdf_slug, page)`` to reference markdown. A failed page scores as an empty output.
    """
    result: dict[str, dict[str, Any]] = {}
    for m in models:
        page_scores = []
        missing = 0
        for (pdf_slug, page), ref in sorted(references.items()):
            out = m.output(m.runs[0], pdf_slug, page)
            if out is None or out.markdown is None:
                missing += 1
            page_scores.append(reference.score_page(out.markdown if out is not None and out.markdown is not None else "", ref))
        result[m.model_slug] = _reference_summary(page_scores, missing)
        if page_scores:  # per page too, so rankings per collection can be drawn (tracr report; docs/collections.md)
            result[m.model_slug]["by_page"] = [
                {
                    "pdf_slug": pdf_slug,
                    "page": page,
                    "char_ned": round(score.chars.ned, 6),
                    "word_ned": round(score.words.ned, 6),
                    "teds": None if score.tables.teds is None else round(score.tables.teds, 6),
                    "kendall_tau": None if score.order.kendall_tau is None else round(score.order.kendall_tau, 6),
                }
                for (pdf_slug, page), score in zip(sorted(references), page_scores, strict=True)
            ]
    return result


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return round(sum(kept) / len(kept), 6) if kept else None


def _reference_summary(scores: Sequence[reference.ReferenceScore], missing: int) -> dict[str, Any]:
    if not scores:
        return {"pages": 0}
    return {
        "pages": len(scores),
        "missing_pages": missing,
        "char_ned": _mean(s.chars.ned for s in scores),
        "char_ned_weighted": round(reference.corpus_char_ned(scores), 6),
        "word_ned": _mean(s.words.ned for s in scores),
        "teds": _mean(s.tables.teds for s in scores),
        "teds_structure": _mean(s.tables.teds_structure for s in scores),
        "table_pages": sum(1 for s in scores if s.tables.teds is not None),
        "kendall_tau": _mean(s.order.kendall_tau for s in scores),
        "order_ned": _mean(s.order.order_ned for s in scores),
    }


def _interval(value: stats.Interval) -> dict[str, float]:
    return {"estimate": round(value.estimate, 6), "low": round(value.low, 6), "high": round(value.high, 6)}


def _cost(m: ModelRuns, price: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not price:
        return None
    done = [o for (run, _, _), o in m.pages.items() if run == m.runs[0] and o.markdown is not None]
    if price.get("gpu_hour") is not None:
        if not m.pages_per_s:
            return {"basis": "gpu_hour", "cost_per_1000_pages": None, "note": "no measured pages/s"}
        value = cost_per_1000_pages_from_throughput(m.pages_per_s, float(price["gpu_hour"]), int(price.get("gpus") or 1))
        return {"basis": "gpu_hour", "cost_per_1000_pages": round(value, 6)}
    if not done:
        return {"basis": "tokens", "cost_per_1000_pages": None, "note": "no finished pages"}
    prices = TokenPrices(float(price.get("input_per_million") or 0), float(price.get("output_per_million") or 0))
    tokens_in = sum(o.input_tokens or 0 for o in done)
    tokens_out = sum(o.output_tokens or 0 for o in done)
    value = cost_per_1000_pages_from_tokens(tokens_in, tokens_out, len(done), prices)
    return {"basis": "tokens", "cost_per_1000_pages": round(value, 6), "input_tokens": tokens_in, "output_tokens": tokens_out}


def summarise(
    job_id: str,
    models: Sequence[ModelRuns],
    model_health: Mapping[str, health.ModelHealth],
    scores: Mapping[str, Mapping[str, Sequence[float]]] | None,
    references: Mapping[str, Mapping[str, Any]] | None,
    *,
    prices: Mapping[str, Mapping[str, Any]] | None = None,
    options: Mapping[str, Any] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """The payload of ``summary.json``: per model health, pass rates with intervals, reference scores, cost."""
    per_model: dict[str, Any] = {}
    for m in models:
        h = model_health.get(m.model_slug) or health.ModelHealth(m.model_slug)
        entry: dict[str, Any] = {
            "runs": list(m.runs),
            "pages_scored": h.pages,
            "pages_failed": sum(1 for (run, _, _), o in m.pages.items() if run == m.runs[0] and o.markdown is None),
            "pages_per_s": m.pages_per_s,
            "health": {
                "pages": h.pages,
                "failing_pages": h.failing_pages,
                "failure_rate": round(h.failure_rate, 6),
                "by_kind": {kind.value: round(rate, 6) for kind, rate in h.rates().items()},
                "counts": {kind.value: h.by_kind[kind] for kind in health.IssueKind},
            },
        }
        if scores is not None:
            model_scores = scores.get(m.model_slug, {})
            if any(model_scores.values()):
                rates = stats.bootstrap_intervals(model_scores, n_boot=n_boot, seed=seed)
                entry["tests"] = {
                    "n_tests": rates.n_tests,
                    "passed": int(sum(sum(v) for v in model_scores.values())),
                    "overall": _interval(rates.overall),
                    "categories": {name: _interval(value) for name, value in sorted(rates.categories.items())},
                }
        if references is not None and m.model_slug in references:
            entry["reference"] = dict(references[m.model_slug])
        cost = _cost(m, (prices or {}).get(m.model_slug))
        if cost is not None:
            entry["cost"] = cost
        per_model[m.model_slug] = entry
    paired = []
    if scores is not None:
        for a, b in combinations(sorted(per_model), 2):
            if not any(scores.get(a, {}).values()) or not any(scores.get(b, {}).values()):
                continue
            result = stats.paired_test(scores[a], scores[b], seed=seed)
            paired.append(
                {"a": a, "b": b, "difference": round(result.difference, 6), "p_value": round(result.p_value, 6), "n_tests": result.n_tests}
            )
    return {
        "job_id": job_id,
        "options": dict(options or {}),
        "models": per_model,
        "paired": paired,
        "issue_kinds": [k.value for k in health.IssueKind],
    }


def issue_kind_counts(rows: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """How many pages of ``health.jsonl`` rows have each kind (for quick reports)."""
    counts: Counter[str] = Counter()
    for row in rows:
        for kind in {i["kind"] for i in row.get("issues", [])}:
            counts[kind] += 1
    return counts
