"""The output tree contract.

``<root>/<job_id>/<model_slug>/run-<n>/<pdf_slug>/<page>.md`` with metadata JSON at
job, model, run and PDF level. Downstream tools (index, reviewer, automation) rely
on these paths, so they are built here and nowhere else.
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
    "JOB_METADATA",
    "MODEL_METADATA",
    "RUN_METADATA",
    "PDF_METADATA",
    "PAGE_JOURNAL",
]

JOB_METADATA = "job_metadata.json"
MODEL_METADATA = "model_metadata.json"
RUN_METADATA = "run_metadata.json"
PDF_METADATA = "pdf_metadata.json"
PAGE_JOURNAL = "pages.jsonl"
SERVER_LOG = "server.log"
_RUN_DIR = re.compile(r"^run-(\d+)$")


def default_outputs_root() -> Path:
    """``$TRACR_OUTPUTS`` if set, else ``./outputs``."""
    return Path(os.environ.get("TRACR_OUTPUTS") or "outputs")


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

    def pdf_dir(self, pdf_slug: str) -> Path:
        return self.run_dir / pdf_slug

    def pdf_metadata(self, pdf_slug: str) -> Path:
        return self.pdf_dir(pdf_slug) / PDF_METADATA

    def page_journal(self, pdf_slug: str) -> Path:
        return self.pdf_dir(pdf_slug) / PAGE_JOURNAL

    def page_markdown(self, pdf_slug: str, page: int) -> Path:
        return self.pdf_dir(pdf_slug) / f"{page}.md"


@dataclass(frozen=True)
class OutputLayout:
    """Paths under one outputs root."""

    root: Path

    def job_dir(self, job_id: str) -> Path:
        return self.root / job_id

    def job_metadata(self, job_id: str) -> Path:
        return self.job_dir(job_id) / JOB_METADATA

    def model_dir(self, job_id: str, model_slug: str) -> Path:
        return self.job_dir(job_id) / model_slug

    def model_metadata(self, job_id: str, model_slug: str) -> Path:
        return self.model_dir(job_id, model_slug) / MODEL_METADATA

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
        numbers = [int(m.group(1)) for p in model_dir.iterdir() if p.is_dir() and (m := _RUN_DIR.match(p.name))]
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
        return path.is_dir() and any(_RUN_DIR.match(child.name) for child in path.iterdir())
