"""The reviewer's questions to the index, as named SQL with their parameters.

The SQL lives beside the schema it reads (:mod:`tracr.index.schema`), so a column
rename is one change in one package; the reviewer only names the question.
A :class:`Query` is a frozen value, so it can key a cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "Query",
    "jobs",
    "job_titles",
    "runs",
    "job_models",
    "model_runs",
    "run_pdfs",
    "pdf_pages",
    "page_markdown",
    "job_pdfs",
    "pdf_page_numbers",
    "page_outputs",
    "pdf_source",
    "model_scores",
    "category_pass_rates",
    "failed_tests",
    "page_health_issues",
    "unhealthy_pages",
]


@dataclass(frozen=True)
class Query:
    """One read-only query on the index and its positional parameters."""

    sql: str
    params: tuple[Any, ...] = ()


def jobs() -> Query:
    return Query("SELECT job_id, title, created_at, models, runs, pages_done, pages_failed FROM jobs ORDER BY created_at DESC, job_id")


def job_titles() -> Query:
    return Query("SELECT job_id, title FROM jobs ORDER BY job_id")


def runs(job_id: str | None = None) -> Query:
    """Every run (of one job, or of all), with its throughput, tokens and latency percentiles."""
    where, params = ("", ()) if job_id is None else ("WHERE job_id = ?", (job_id,))
    return Query(
        f"""SELECT job_id, model_slug, model, provider, mode, run, status, pages_total, pages_done, pages_failed, pages_truncated,
               pages_per_s, wall_seconds, input_tokens, output_tokens,
               latency_p50, latency_p90, latency_p99, ttft_p50, ttft_p90, ttft_p99, started_at, error
        FROM runs {where} ORDER BY job_id, model_slug, run""",
        params,
    )


def job_models(job_id: str) -> Query:
    return Query("SELECT DISTINCT model_slug FROM runs WHERE job_id = ? ORDER BY model_slug", (job_id,))


def model_runs(job_id: str, model_slug: str) -> Query:
    return Query(
        "SELECT run, status, pages_done, pages_failed FROM runs WHERE job_id = ? AND model_slug = ? ORDER BY run DESC", (job_id, model_slug)
    )


def run_pdfs(job_id: str, model_slug: str, run: int) -> Query:
    return Query(
        "SELECT pdf_slug, source_path, page_count, status, error, pages_done, pages_failed FROM pdfs "
        "WHERE job_id = ? AND model_slug = ? AND run = ? ORDER BY pdf_slug",
        (job_id, model_slug, run),
    )


def pdf_pages(job_id: str, model_slug: str, run: int, pdf_slug: str) -> Query:
    return Query(
        """SELECT page, status, attempts, latency_s, ttft_s, input_tokens, output_tokens, finish_reason, chars, truncated, capped_at,
              error_class, error, finished_at
       FROM pages WHERE job_id = ? AND model_slug = ? AND run = ? AND pdf_slug = ? ORDER BY page""",
        (job_id, model_slug, run, pdf_slug),
    )


def page_markdown(job_id: str, model_slug: str, run: int, pdf_slug: str, page: int) -> Query:
    return Query(
        "SELECT markdown FROM pages WHERE job_id = ? AND model_slug = ? AND run = ? AND pdf_slug = ? AND page = ?",
        (job_id, model_slug, run, pdf_slug, page),
    )


def job_pdfs(job_id: str) -> Query:
    return Query("SELECT DISTINCT pdf_slug FROM pages WHERE job_id = ? ORDER BY pdf_slug", (job_id,))


def pdf_page_numbers(job_id: str, pdf_slug: str) -> Query:
    return Query("SELECT DISTINCT page FROM pages WHERE job_id = ? AND pdf_slug = ? ORDER BY page", (job_id, pdf_slug))


def page_outputs(job_id: str, pdf_slug: str, page: int) -> Query:
    """Every model's output of one page (latest run first within a model)."""
    return Query(
        """SELECT model_slug, run, status, markdown, latency_s, output_tokens, error
       FROM pages WHERE job_id = ? AND pdf_slug = ? AND page = ? ORDER BY model_slug, run DESC""",
        (job_id, pdf_slug, page),
    )


def pdf_source(job_id: str, pdf_slug: str) -> Query:
    return Query("SELECT source_path FROM pdfs WHERE job_id = ? AND pdf_slug = ? AND source_path IS NOT NULL LIMIT 1", (job_id, pdf_slug))


def model_scores(job_id: str) -> Query:
    """Per model of a job (``tracr score``): health failure rates by kind, test pass rate with interval, reference scores, cost."""
    return Query(
        """SELECT model_slug, pages, failing_pages, failure_rate, empty_rate, cut_off_rate, repetition_rate, wrong_script_rate,
               bad_table_rate, tests, pass_rate, pass_low, pass_high, char_ned, word_ned, teds, kendall_tau,
               cost_per_1000_pages, pages_per_s, scored_at
        FROM model_scores WHERE job_id = ? ORDER BY pass_rate DESC NULLS LAST, failure_rate, model_slug""",
        (job_id,),
    )


def category_pass_rates(job_id: str) -> Query:
    """Share of test outcomes passed per model and category (each run's outcome counted once)."""
    return Query(
        """SELECT model_slug, category, count(*) AS outcomes, avg(passed::INTEGER) AS pass_rate
        FROM test_outcomes WHERE job_id = ? GROUP BY model_slug, category ORDER BY category, model_slug""",
        (job_id,),
    )


def failed_tests(job_id: str, model_slug: str) -> Query:
    return Query(
        """SELECT test_id, type, category, pdf, page, run, explanation FROM test_outcomes
        WHERE job_id = ? AND model_slug = ? AND NOT passed ORDER BY category, test_id, run""",
        (job_id, model_slug),
    )


def page_health_issues(job_id: str, pdf_slug: str, page: int) -> Query:
    """Health issues of one page, per model and run (the arena marks such outputs)."""
    return Query(
        "SELECT model_slug, run, kind, detail FROM page_health WHERE job_id = ? AND pdf_slug = ? AND page = ? ORDER BY model_slug, run, kind",
        (job_id, pdf_slug, page),
    )


def unhealthy_pages(job_id: str, model_slug: str) -> Query:
    return Query(
        "SELECT pdf_slug, page, run, string_agg(kind, ', ' ORDER BY kind) AS issues FROM page_health "
        "WHERE job_id = ? AND model_slug = ? GROUP BY ALL ORDER BY pdf_slug, page",
        (job_id, model_slug),
    )
