"""Walking the output tree cheaply: what runs exist and whether they changed.

A run's signature is a hash of the size and mtime of ``run_metadata.json`` and of
every PDF folder's ``pages.jsonl`` and ``pdf_metadata.json``. tracr writes a page's
markdown before its journal line and rewrites files atomically, so any new or
redone page changes the journal and therefore the signature; an unchanged
signature means the run need not be re-read. Only ``stat`` calls are made here.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

from tracr.outputs.identifiers import JOB_ID_PATTERN
from tracr.outputs.layout import (
    ELO_DIR,
    HEALTH_FILE,
    JOB_METADATA,
    NOT_MODEL_DIRS,
    PAGE_JOURNAL,
    PDF_METADATA,
    RUN_METADATA,
    SCORES_DIR,
    SUMMARY_FILE,
    TESTS_FILE,
    VOTES_FILE,
    parse_run_dir,
)
from tracr.outputs.slugs import SLUG_PATTERN

__all__ = ["RunSource", "JobSource", "TreeScan", "scan_tree"]

VOTES_RELATIVE = os.path.join(ELO_DIR, VOTES_FILE)


@dataclass(frozen=True)
class RunSource:
    """One run folder and its change signature."""

    job_id: str
    model_slug: str
    run: int
    run_dir: str
    pdf_slugs: tuple[str, ...]
    signature: str

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.job_id, self.model_slug, self.run)


@dataclass(frozen=True)
class JobSource:
    """One job folder; its signature covers ``job_metadata.json`` and the votes."""

    job_id: str
    job_dir: str
    metadata_token: str
    votes_token: str  # "-" when the job has no votes file
    scores_token: str = "-"  # the files of scores/ (tracr score)

    @property
    def signature(self) -> str:
        return f"{self.metadata_token}|{self.scores_token}|{self.votes_token}"

    @staticmethod
    def votes_part(signature: str) -> str:
        """The votes token of a stored :attr:`signature`."""
        return signature.rsplit("|", 1)[-1]


@dataclass
class TreeScan:
    jobs: dict[str, JobSource] = field(default_factory=dict)
    runs: dict[tuple[str, str, int], RunSource] = field(default_factory=dict)


def _stat_token(path: str) -> str:
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return "-"
    return f"{st.st_size}:{st.st_mtime_ns}"


def _votes_token(job_dir: str) -> str:
    """The votes files' signature: ``votes.jsonl`` alone keeps its old token; per-host files add ``name=token`` parts."""
    legacy = _stat_token(os.path.join(job_dir, VOTES_RELATIVE))
    try:
        hosts = sorted(n for n in os.listdir(os.path.join(job_dir, ELO_DIR)) if n.startswith("votes-") and n.endswith(".jsonl"))
    except (FileNotFoundError, NotADirectoryError):
        hosts = []
    if not hosts:
        return legacy
    return ",".join([legacy] + [f"{n}={_stat_token(os.path.join(job_dir, ELO_DIR, n))}" for n in hosts])


def _subdirs(path: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return sorted((e for e in it if e.is_dir(follow_symlinks=False)), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []


def scan_tree(root: str) -> TreeScan:
    """Every job and run under ``root``; folders whose names are not valid ids are ignored."""
    scan = TreeScan()
    for job in _subdirs(root):
        if not JOB_ID_PATTERN.match(job.name) or not os.path.isfile(os.path.join(job.path, JOB_METADATA)):
            continue
        scores = ",".join(_stat_token(os.path.join(job.path, SCORES_DIR, name)) for name in (SUMMARY_FILE, HEALTH_FILE, TESTS_FILE))
        scan.jobs[job.name] = JobSource(
            job.name, job.path, _stat_token(os.path.join(job.path, JOB_METADATA)), _votes_token(job.path), scores
        )
        for model in _subdirs(job.path):
            if model.name in NOT_MODEL_DIRS or not SLUG_PATTERN.match(model.name):
                continue
            for run_entry in _subdirs(model.path):
                number = parse_run_dir(run_entry.name)
                if number is None:
                    continue
                digest = hashlib.blake2b(digest_size=16)
                digest.update(_stat_token(os.path.join(run_entry.path, RUN_METADATA)).encode())
                pdfs = []
                for pdf in _subdirs(run_entry.path):
                    if not SLUG_PATTERN.match(pdf.name):
                        continue
                    pdfs.append(pdf.name)
                    tokens = (
                        pdf.name,
                        _stat_token(os.path.join(pdf.path, PAGE_JOURNAL)),
                        _stat_token(os.path.join(pdf.path, PDF_METADATA)),
                    )
                    digest.update("|".join(tokens).encode())
                    digest.update(b"\n")
                source = RunSource(job.name, model.name, number, run_entry.path, tuple(pdfs), digest.hexdigest())
                scan.runs[source.key] = source
    return scan
