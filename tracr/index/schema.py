"""The index's schema: table definitions and the SQL that fills them.

Column names are part of tracr's interface (docs/index.md documents each one);
bump :data:`SCHEMA_VERSION` whenever a table changes, and the next refresh
rebuilds the index from the output tree instead of patching an old file.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Columns",
    "SCHEMA_VERSION",
    "TABLES",
    "DDL",
    "VOTE_SCHEMA",
    "HEALTH_SCHEMA",
    "TEST_SCHEMA",
    "MODEL_SCORE_SCHEMA",
    "RUN_TABLES",
    "WHOLE_TABLES",
    "COPY_UNCHANGED",
    "DELETE_CHANGED",
    "CHANGED_PAGES",
    "INSERT_PAGES",
    "INSERT_PDFS",
    "INSERT_RUNS",
    "INSERT_JOBS",
]


@dataclass(frozen=True)
class Columns:
    """Names and DuckDB types of one bulk-loaded table, in insert order."""

    columns: tuple[tuple[str, str], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    def ddl(self) -> str:
        """The column list of a ``CREATE TABLE``."""
        return ", ".join(f"{name} {sql_type}" for name, sql_type in self.columns)


SCHEMA_VERSION = "4"
TABLES = ("jobs", "runs", "pdfs", "pages", "votes", "page_health", "test_outcomes", "model_scores")
"""The documented tables; ``index_runs``, ``index_jobs`` and ``index_info`` are bookkeeping."""

DDL = """
CREATE TABLE jobs (
    job_id VARCHAR, title VARCHAR, created_at TIMESTAMP,
    models INTEGER, runs INTEGER, pages_done BIGINT, pages_failed BIGINT
);
CREATE TABLE runs (
    job_id VARCHAR, model_slug VARCHAR, model VARCHAR, provider VARCHAR, mode VARCHAR, run INTEGER,
    status VARCHAR, error VARCHAR, created_at TIMESTAMP, started_at TIMESTAMP, ended_at TIMESTAMP,
    wall_seconds DOUBLE, pages_total BIGINT, pages_done BIGINT, pages_failed BIGINT, pages_truncated BIGINT, pages_per_s DOUBLE,
    input_tokens BIGINT, output_tokens BIGINT,
    latency_p50 DOUBLE, latency_p90 DOUBLE, latency_p99 DOUBLE, ttft_p50 DOUBLE, ttft_p90 DOUBLE, ttft_p99 DOUBLE,
    run_dir VARCHAR
);
CREATE TABLE pdfs (
    job_id VARCHAR, model_slug VARCHAR, run INTEGER, pdf_slug VARCHAR, source_path VARCHAR,
    page_count INTEGER, status VARCHAR, error VARCHAR, pages_done BIGINT, pages_failed BIGINT,
    pages_selected INTEGER, started_at TIMESTAMP, ended_at TIMESTAMP
);
CREATE TABLE pages (
    job_id VARCHAR, model_slug VARCHAR, run INTEGER, pdf_slug VARCHAR, page INTEGER, status VARCHAR,
    attempts INTEGER, latency_s DOUBLE, ttft_s DOUBLE, input_tokens BIGINT, output_tokens BIGINT,
    finish_reason VARCHAR, chars BIGINT, truncated BOOLEAN, capped_at BIGINT, error VARCHAR, error_class VARCHAR, finished_at TIMESTAMP,
    dropped VARCHAR, reply_meta VARCHAR, markdown VARCHAR, md_path VARCHAR
);
CREATE TABLE votes (
    vote_id VARCHAR, job_id VARCHAR, created_at TIMESTAMP, voter VARCHAR, outcome VARCHAR,
    left_model_slug VARCHAR, left_run INTEGER, left_pdf_slug VARCHAR, left_page INTEGER,
    right_model_slug VARCHAR, right_run INTEGER, right_pdf_slug VARCHAR, right_page INTEGER
);
CREATE TABLE page_health (
    job_id VARCHAR, model_slug VARCHAR, run INTEGER, pdf_slug VARCHAR, page INTEGER, kind VARCHAR, detail VARCHAR
);
CREATE TABLE test_outcomes (
    job_id VARCHAR, test_id VARCHAR, type VARCHAR, category VARCHAR, pdf VARCHAR, page INTEGER, pdf_slug VARCHAR,
    model_slug VARCHAR, run INTEGER, passed BOOLEAN, explanation VARCHAR
);
CREATE TABLE model_scores (
    job_id VARCHAR, model_slug VARCHAR, scored_at TIMESTAMP, pages BIGINT, failing_pages BIGINT, failure_rate DOUBLE,
    empty_rate DOUBLE, cut_off_rate DOUBLE, repetition_rate DOUBLE, wrong_script_rate DOUBLE, bad_table_rate DOUBLE,
    tests INTEGER, pass_rate DOUBLE, pass_low DOUBLE, pass_high DOUBLE,
    char_ned DOUBLE, word_ned DOUBLE, teds DOUBLE, kendall_tau DOUBLE, cost_per_1000_pages DOUBLE, pages_per_s DOUBLE
);
CREATE TABLE index_runs (job_id VARCHAR, model_slug VARCHAR, run INTEGER, signature VARCHAR);
CREATE TABLE index_jobs (job_id VARCHAR, signature VARCHAR);
CREATE TABLE index_info (key VARCHAR, value VARCHAR);
"""

COPY_UNCHANGED = """
INSERT INTO {table} SELECT t.* FROM old.{table} t SEMI JOIN kept k USING (job_id, model_slug, run);
"""
DELETE_CHANGED = """
DELETE FROM {table} WHERE NOT EXISTS (
    SELECT 1 FROM kept k WHERE k.job_id = {table}.job_id AND k.model_slug = {table}.model_slug AND k.run = {table}.run
);
"""
RUN_TABLES = ("pages", "pdfs", "runs", "index_runs")  # rows belong to one run: kept or replaced per run
WHOLE_TABLES = (
    "jobs",
    "index_jobs",
    "votes",
    "page_health",
    "test_outcomes",
    "model_scores",
    "index_info",
)  # small: rebuilt on every write


INSERT_PAGES = """
INSERT INTO pages SELECT job_id, model_slug, run, pdf_slug, page, status, attempts, latency_s, ttft_s,
    input_tokens, output_tokens, finish_reason, chars, truncated, capped_at, error, error_class, TRY_CAST(finished_at AS TIMESTAMP),
    dropped, reply_meta, markdown, md_path
FROM chunk_pages
"""

CHANGED_PAGES = "(SELECT p.* FROM pages p SEMI JOIN new_runs r USING (job_id, model_slug, run))"

INSERT_PDFS = """
INSERT INTO pdfs
WITH counts AS (
    SELECT job_id, model_slug, run, pdf_slug,
        count(*) FILTER (WHERE status = 'done') AS pages_done,
        count(*) FILTER (WHERE status = 'failed') AS pages_failed
    FROM {changed} GROUP BY ALL
)
SELECT d.job_id, d.model_slug, d.run, d.pdf_slug, d.source_path, d.page_count, d.status, d.error,
    coalesce(c.pages_done, 0), coalesce(c.pages_failed, 0), d.pages_selected,
    TRY_CAST(d.started_at AS TIMESTAMP), TRY_CAST(d.ended_at AS TIMESTAMP)
FROM new_pdfs d LEFT JOIN counts c USING (job_id, model_slug, run, pdf_slug)
"""

INSERT_RUNS = """
INSERT INTO runs
WITH agg AS (
    SELECT job_id, model_slug, run,
        count(*) FILTER (WHERE status = 'done') AS pages_done,
        count(*) FILTER (WHERE status = 'failed') AS pages_failed,
        count(*) FILTER (WHERE status = 'done' AND truncated) AS pages_truncated,
        sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
        quantile_cont(latency_s, [0.5, 0.9, 0.99]) FILTER (WHERE status = 'done') AS lat,
        quantile_cont(ttft_s, [0.5, 0.9, 0.99]) FILTER (WHERE status = 'done') AS ttft
    FROM {changed} GROUP BY ALL
)
SELECT r.job_id, r.model_slug, r.model, r.provider, r.mode, r.run, r.status, r.error,
    TRY_CAST(r.created_at AS TIMESTAMP), TRY_CAST(r.started_at AS TIMESTAMP), TRY_CAST(r.ended_at AS TIMESTAMP),
    r.wall_seconds, r.pages_total, coalesce(a.pages_done, 0), coalesce(a.pages_failed, 0), coalesce(a.pages_truncated, 0),
    CASE WHEN r.wall_seconds > 0 THEN round(coalesce(a.pages_done, 0) / r.wall_seconds, 3) ELSE 0 END,
    coalesce(a.input_tokens, 0), coalesce(a.output_tokens, 0),
    a.lat[1], a.lat[2], a.lat[3], a.ttft[1], a.ttft[2], a.ttft[3],
    r.run_dir
FROM new_runs r LEFT JOIN agg a USING (job_id, model_slug, run)
"""

INSERT_JOBS = """
INSERT INTO jobs
WITH agg AS (
    SELECT job_id, count(DISTINCT model_slug) AS models, count(*) AS runs,
        sum(pages_done) AS pages_done, sum(pages_failed) AS pages_failed
    FROM runs GROUP BY job_id
)
SELECT j.job_id, j.title, TRY_CAST(j.created_at AS TIMESTAMP), coalesce(a.models, 0), coalesce(a.runs, 0),
    coalesce(a.pages_done, 0), coalesce(a.pages_failed, 0)
FROM new_jobs j LEFT JOIN agg a USING (job_id)
"""

VOTE_SCHEMA = Columns(
    (
        ("vote_id", "VARCHAR"),
        ("job_id", "VARCHAR"),
        ("created_at", "VARCHAR"),
        ("voter", "VARCHAR"),
        ("outcome", "VARCHAR"),
        ("left_model_slug", "VARCHAR"),
        ("left_run", "INTEGER"),
        ("left_pdf_slug", "VARCHAR"),
        ("left_page", "INTEGER"),
        ("right_model_slug", "VARCHAR"),
        ("right_run", "INTEGER"),
        ("right_pdf_slug", "VARCHAR"),
        ("right_page", "INTEGER"),
    )
)

HEALTH_SCHEMA = Columns(
    tuple(
        (name, "VARCHAR" if name not in ("run", "page") else "INTEGER")
        for name in ("job_id", "model_slug", "run", "pdf_slug", "page", "kind", "detail")
    )
)
TEST_SCHEMA = Columns(
    (
        ("job_id", "VARCHAR"),
        ("test_id", "VARCHAR"),
        ("type", "VARCHAR"),
        ("category", "VARCHAR"),
        ("pdf", "VARCHAR"),
        ("page", "INTEGER"),
        ("pdf_slug", "VARCHAR"),
        ("model_slug", "VARCHAR"),
        ("run", "INTEGER"),
        ("passed", "BOOLEAN"),
        ("explanation", "VARCHAR"),
    )
)
MODEL_SCORE_SCHEMA = Columns(
    (
        ("job_id", "VARCHAR"),
        ("model_slug", "VARCHAR"),
        ("scored_at", "VARCHAR"),
        ("pages", "BIGINT"),
        ("failing_pages", "BIGINT"),
        ("failure_rate", "DOUBLE"),
        ("empty_rate", "DOUBLE"),
        ("cut_off_rate", "DOUBLE"),
        ("repetition_rate", "DOUBLE"),
        ("wrong_script_rate", "DOUBLE"),
        ("bad_table_rate", "DOUBLE"),
        ("tests", "INTEGER"),
        ("pass_rate", "DOUBLE"),
        ("pass_low", "DOUBLE"),
        ("pass_high", "DOUBLE"),
        ("char_ned", "DOUBLE"),
        ("word_ned", "DOUBLE"),
        ("teds", "DOUBLE"),
        ("kendall_tau", "DOUBLE"),
        ("cost_per_1000_pages", "DOUBLE"),
        ("pages_per_s", "DOUBLE"),
    )
)
