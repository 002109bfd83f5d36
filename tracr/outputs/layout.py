"""The output tree contract: every name under an outputs root is built here and nowhere else.

``<root>/<job_id>/<model_slug>/run-<n>/<pdf_slug>/<page>.md`` with metadata JSON at
job, model, run and PDF level, votes under ``<job_id>/elo/``, the DuckDB index at
``<root>/index.duckdb``. Downstream tools (index, reviewer, automation) rely on these
paths. tracr's own bookkeeping (claims, server records, the index's lock, temp
builds and reader links) lives under one hidden ``<root>/.tracr/`` folder; trees
written before that (``.tracr-claims/``, ``.index.lock`` beside the index) are still read.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "OutputLayout",
    "RunLocation",
    "default_outputs_root",
    "outputs_root",
    "JOB_METADATA",
    "JOB_INPUTS",
    "MODEL_METADATA",
    "RUN_METADATA",
    "PDF_METADATA",
    "PAGE_JOURNAL",
    "METRICS",
    "JOB_METRICS",
    "SERVER_LOG",
    "ELO_DIR",
    "VOTES_FILE",
    "RATINGS_FILE",
    "INDEX_FILE",
    "SCORES_DIR",
    "HEALTH_FILE",
    "TESTS_FILE",
    "SUMMARY_FILE",
    "JUDGE_FILE",
    "STATE_DIR",
    "NOT_MODEL_DIRS",
    "parse_run_dir",
]

JOB_METADATA = "job_metadata.json"
#: The job's input PDFs, one JSON line each (``tracr.outputs.inputs``); ``job_metadata.json`` holds only their summary.
JOB_INPUTS = "inputs.jsonl"
MODEL_METADATA = "model_metadata.json"
RUN_METADATA = "run_metadata.json"
PDF_METADATA = "pdf_metadata.json"
PAGE_JOURNAL = "pages.jsonl"
SERVER_LOG = "server.log"
METRICS = "metrics.json"
JOB_METRICS = "job_metrics.json"
ELO_DIR = "elo"
VOTES_FILE = "votes.jsonl"
RATINGS_FILE = "ratings.json"
INDEX_FILE = "index.duckdb"
#: Automatic scores of a job (docs/scoring.md): derived, rebuilt by ``tracr score``.
SCORES_DIR = "scores"
HEALTH_FILE = "health.jsonl"
TESTS_FILE = "tests.jsonl"
SUMMARY_FILE = "summary.json"
JUDGE_FILE = "judge.json"
STATE_DIR = ".tracr"
#: Folders of a job that are not models.
NOT_MODEL_DIRS = frozenset({ELO_DIR, SCORES_DIR})
_RUN_DIR = re.compile(r"^run-([1-9][0-9]*)$")
_LEGACY_CLAIMS_DIR = ".tracr-claims"


def parse_run_dir(name: str) -> int | None:
    """The run number of a folder named ``run-<n>`` (``n`` >= 1, no leading zeros), else ``None``.

    The one parser of run folders: ``run-01`` is not a run, since ``run_dir`` would
    name it ``run-1`` and the two could never agree.
    """
    match = _RUN_DIR.match(name)
    return int(match.group(1)) if match else None


def default_outputs_root() -> Path:
    """``$TRACR_OUTPUTS`` if set, else ``./outputs``."""
    return Path(os.environ.get("TRACR_OUTPUTS") or "outputs")


def outputs_root(value: str | os.PathLike[str] | None) -> Path:
    """The absolute outputs root a command or flow was given, else the default one."""
    return (Path(value) if value else default_outputs_root()).resolve()


@dataclass(frozen=True)
class RunLocation:
    """Where one run of one model of one job lives."""

    root: Path
    job_id: str
    model_slug: str
    run: int

    @property
    def job_dir(self) -> Path:
        return self.root / self.job_id

    @property
    def model_dir(self) -> Path:
        return self.job_dir / self.model_slug

    @property
    def run_dir(self) -> Path:
        return self.model_dir / f"run-{self.run}"

    @property
    def run_metadata(self) -> Path:
        return self.run_dir / RUN_METADATA

    @property
    def server_log(self) -> Path:
        return self.run_dir / SERVER_LOG

    @property
    def metrics(self) -> Path:
        return self.run_dir / METRICS

    def pdf_dir(self, pdf_slug: str) -> Path:
        return self.run_dir / pdf_slug

    def pdf_metadata(self, pdf_slug: str) -> Path:
        return self.pdf_dir(pdf_slug) / PDF_METADATA

    def page_journal(self, pdf_slug: str) -> Path:
        return self.pdf_dir(pdf_slug) / PAGE_JOURNAL

    def page_markdown(self, pdf_slug: str, page: int) -> Path:
        return self.pdf_dir(pdf_slug) / f"{page}.md"

    def page_reply(self, pdf_slug: str, page: int) -> Path:
        """The model's raw reply, kept beside the page when it differs from the Markdown (re-parse reads it)."""
        return self.pdf_dir(pdf_slug) / f"{page}.reply.txt"

    def unwritten_page(self, pdf_slug: str, page: int) -> Path:
        """Where a page's text is kept when its ``<page>.md`` cannot be written (the model call was paid for)."""
        return self.root / STATE_DIR / "unwritten" / self.job_id / self.model_slug / f"run-{self.run}" / pdf_slug / f"{page}.md"


@dataclass(frozen=True)
class OutputLayout:
    """Paths under one outputs root."""

    root: Path

    def job_dir(self, job_id: str) -> Path:
        return self.root / job_id

    def job_metadata(self, job_id: str) -> Path:
        return self.job_dir(job_id) / JOB_METADATA

    def job_inputs(self, job_id: str) -> Path:
        """``inputs.jsonl``: one line per input PDF of the job."""
        return self.job_dir(job_id) / JOB_INPUTS

    def model_dir(self, job_id: str, model_slug: str) -> Path:
        return self.job_dir(job_id) / model_slug

    def model_metadata(self, job_id: str, model_slug: str) -> Path:
        return self.model_dir(job_id, model_slug) / MODEL_METADATA

    def job_metrics(self, job_id: str) -> Path:
        return self.job_dir(job_id) / JOB_METRICS

    def elo_dir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / ELO_DIR

    def votes(self, job_id: str) -> Path:
        return self.elo_dir(job_id) / VOTES_FILE

    def host_votes(self, job_id: str, host: str) -> Path:
        """``elo/votes-<host>.jsonl``: the votes cast on one host (appends from several NFS clients are not atomic)."""
        return self.elo_dir(job_id) / f"votes-{host}.jsonl"

    def vote_files(self, job_id: str) -> list[Path]:
        """Every votes file of a job: ``votes.jsonl`` (one host, or before per-host files), then ``votes-<host>.jsonl`` by name."""
        elo = self.elo_dir(job_id)
        files = [self.votes(job_id)] if self.votes(job_id).is_file() else []
        return files + (sorted(elo.glob("votes-*.jsonl")) if elo.is_dir() else [])

    def ratings(self, job_id: str) -> Path:
        return self.elo_dir(job_id) / RATINGS_FILE

    def scores_dir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / SCORES_DIR

    def scores_health(self, job_id: str) -> Path:
        """One JSON line per page (of each model's scored run) with health issues."""
        return self.scores_dir(job_id) / HEALTH_FILE

    def scores_tests(self, job_id: str) -> Path:
        """One JSON line per (olmOCR-Bench test, model, run)."""
        return self.scores_dir(job_id) / TESTS_FILE

    def scores_summary(self, job_id: str) -> Path:
        return self.scores_dir(job_id) / SUMMARY_FILE

    def scores_judge(self, job_id: str) -> Path:
        """The LLM judge's calls, stopping decision and cost."""
        return self.scores_dir(job_id) / JUDGE_FILE

    @property
    def index(self) -> Path:
        return self.root / INDEX_FILE

    @property
    def state_dir(self) -> Path:
        """``<root>/.tracr``: tracr's bookkeeping, never user data."""
        return self.root / STATE_DIR

    @property
    def claims_dir(self) -> Path:
        return self.state_dir / "claims"

    @property
    def legacy_claims_dir(self) -> Path:
        """Where trees written before ``.tracr/`` keep their claims (read, never written)."""
        return self.root / _LEGACY_CLAIMS_DIR

    @property
    def servers_dir(self) -> Path:
        """``.tracr/servers``: a folder of server records per host (flat records there are from before host folders)."""
        return self.state_dir / "servers"

    def host_servers_dir(self, host: str) -> Path:
        """Where ``host`` records the local servers it starts (``tasks.serving.registry``); no other host writes there."""
        return self.servers_dir / host

    def gpu_queue_dir(self, host: str) -> Path:
        """Where the runs waiting for ``host``'s GPUs queue, first come first served (``tracr.serving.gpu_queue``)."""
        return self.state_dir / "gpu-queue" / host

    @property
    def index_state_dir(self) -> Path:
        """The index's lock, temp builds and reader links."""
        return self.state_dir / "index"

    def job_ids(self) -> list[str]:
        """Jobs present under the root, sorted by name."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / JOB_METADATA).is_file())

    def model_slugs(self, job_id: str) -> list[str]:
        job_dir = self.job_dir(job_id)
        if not job_dir.is_dir():
            return []
        return sorted(p.name for p in job_dir.iterdir() if (p / MODEL_METADATA).is_file() or self._has_runs(p))

    def run_numbers(self, job_id: str, model_slug: str) -> list[int]:
        """Existing run numbers of a model, ascending."""
        model_dir = self.model_dir(job_id, model_slug)
        if not model_dir.is_dir():
            return []
        numbers = [n for p in model_dir.iterdir() if (n := parse_run_dir(p.name)) is not None and p.is_dir()]
        return sorted(numbers)

    def run(self, job_id: str, model_slug: str, run: int) -> RunLocation:
        return RunLocation(self.root, job_id, model_slug, run)

    def allocate_run(self, job_id: str, model_slug: str) -> RunLocation:
        """Create the next ``run-<n>`` folder; ``mkdir`` makes the claim race-free.

        Two processes reusing a job id at the same time get distinct numbers.
        """
        model_dir = self.model_dir(job_id, model_slug)
        model_dir.mkdir(parents=True, exist_ok=True)
        number = (self.run_numbers(job_id, model_slug) or [0])[-1] + 1
        while True:
            location = self.run(job_id, model_slug, number)
            try:
                location.run_dir.mkdir()
                return location
            except FileExistsError:
                number += 1

    @staticmethod
    def _has_runs(path: Path) -> bool:
        return path.is_dir() and path.name not in NOT_MODEL_DIRS and any(parse_run_dir(child.name) for child in path.iterdir())
