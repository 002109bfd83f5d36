"""A small job whose best model differs between two kinds of document, for tests, screenshots and the report's benchmark.

Six real PDFs in two input folders (``invoices/`` and ``forms/``), three models:
``alpha`` reads invoices exactly and garbles forms, ``beta`` the reverse, ``gamma``
is middling on both and fails one page. Votes are drawn from a Bradley-Terry model
whose true strengths flip between the folders (alpha > gamma > beta on invoices,
beta > gamma > alpha on forms), so a per-collection ranking must recover two
different winners while the whole-job ranking blurs them. An olmOCR-Bench test
file checks each page's key phrase, and a reference page holds it.
"""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pymupdf

from tracr.outputs.layout import OutputLayout
from tracr.review.votes import PageRef, Vote, append_vote
from tracr.run.recorder import refresh_job_metadata
from tracr.testing.review_tree import Failure, ModelOutputs, write_review_job

__all__ = ["TRUE_STRENGTH", "write_two_collection_job"]

TRUE_STRENGTH = {
    "invoices": {"alpha": 2.0, "gamma": 1.0, "beta": 0.0},
    "forms": {"beta": 2.0, "gamma": 1.0, "alpha": 0.0},
}
CONFIG = {
    "job_id": "kinds",
    "title": "Invoices and forms",
    "prompt": "Convert this page to clean Markdown.",
    "max_tokens": 4096,
    "models": [
        {"model": "vendor/alpha", "provider": "openai", "mode": "api", "slug": "alpha"},
        {"model": "vendor/beta", "provider": "vllm", "mode": "local", "slug": "beta", "prompt": "OCR this page. <b>Markdown</b> only."},
        {"model": "vendor/gamma", "provider": "pdf-text", "mode": "local", "slug": "gamma"},
    ],
    "scoring": {
        "prices": {
            "alpha": {"input_per_million": 2.5, "output_per_million": 10.0},
            "beta": {"gpu_hour": 2.0, "gpus": 1},
            "gamma": {"input_per_million": 0.0, "output_per_million": 0.0},
        }
    },
}
"""The job config the job records (no collections: they come from the input folders)."""
_PHRASES = {"invoices": "Invoice {n} total {amount} due on the first of March", "forms": "Form {n} applicant {name} signed in ink"}
_NAMES = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Barbara Liskov", "Donald Knuth"]


def _phrase(kind: str, n: int) -> str:
    return _PHRASES[kind].format(n=n, amount=f"{120 + 17 * n}.50", name=_NAMES[n % len(_NAMES)])


def _garble(text: str) -> str:
    return " ".join(word[::-1] if i % 2 else word for i, word in enumerate(text.split()))


def _make_pdf(path: Path, lines: list[str]) -> Path:
    doc = pymupdf.open()
    for line in lines:
        page = doc.new_page(width=595, height=842)
        page.insert_text((40, 60), line, fontsize=16)
        page.insert_text((40, 100), "The quick brown fox jumps over the lazy dog.", fontsize=11)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(path)
    return path


def write_two_collection_job(
    root: Path, inputs: Path, job_id: str = "kinds", *, votes_per_collection: int = 80, seed: int = 0, voter: str = "ann"
) -> dict[str, Path]:
    """Write PDFs under ``inputs``, the job under ``root`` and its votes; returns the tests file, the reference folder and ``inputs``."""
    pdfs: dict[str, Path] = {}
    truth: dict[tuple[str, int], tuple[str, str]] = {}  # (pdf slug, page) -> (kind, phrase)
    counter = 0
    for kind, prefix in (("invoices", "inv"), ("forms", "form")):
        for number in range(1, 4):
            slug = f"{prefix}-{number}"
            lines = []
            for page in (1, 2):
                counter += 1
                lines.append(_phrase(kind, counter))
                truth[(slug, page)] = (kind, lines[-1])
            pdfs[slug] = _make_pdf(inputs / kind / f"{slug}.pdf", lines)
    outputs: dict[str, dict[tuple[str, int], str | Failure]] = {"alpha": {}, "beta": {}, "gamma": {}}
    for key, (kind, phrase) in truth.items():
        outputs["alpha"][key] = f"# Page\n\n{phrase}\n" if kind == "invoices" else f"# Page\n\n{_garble(phrase)}\n"
        outputs["beta"][key] = f"# Page\n\n{phrase}\n" if kind == "forms" else f"# Page\n\n{_garble(phrase)}\n"
        outputs["gamma"][key] = f"{phrase.lower()}\n"
    outputs["gamma"][("form-3", 2)] = Failure("upstream timed out after 120 s", "timeout")
    models = [
        ModelOutputs("alpha", outputs["alpha"], latency_s=2.0),
        ModelOutputs("beta", outputs["beta"], latency_s=0.8),
        ModelOutputs("gamma", outputs["gamma"], latency_s=0.3),
    ]
    write_review_job(root, job_id, pdfs, models, title="Invoices and forms")
    layout = OutputLayout(Path(root))
    refresh_job_metadata(layout, job_id, {"config": {**CONFIG, "job_id": job_id}, "config_source": "inline"})
    rng = random.Random(seed)
    clock = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    for kind, strength in TRUE_STRENGTH.items():
        pages = [key for key, (k, _) in truth.items() if k == kind and key != ("form-3", 2)]
        for _ in range(votes_per_collection):
            pdf, page = rng.choice(pages)
            left, right = rng.sample(sorted(strength), 2)
            p_left = 1 / (1 + math.exp(strength[right] - strength[left]))
            outcome = "left" if rng.random() < p_left else "right"
            clock += timedelta(seconds=7)
            vote = Vote(
                job_id=job_id,
                left=PageRef(model_slug=left, run=1, pdf_slug=pdf, page=page),
                right=PageRef(model_slug=right, run=1, pdf_slug=pdf, page=page),
                outcome=outcome,
                voter=voter,
                created_at=clock.isoformat().replace("+00:00", "Z"),
            )
            append_vote(root, vote)
    references = inputs.parent / "references"
    for (slug, page), (_, phrase) in truth.items():
        (references / slug).mkdir(parents=True, exist_ok=True)
        (references / slug / f"{page}.md").write_text(f"# Page\n\n{phrase}\n", encoding="utf-8")
    tests = inputs.parent / "tests.jsonl"
    with tests.open("w", encoding="utf-8") as fh:
        for (slug, page), (kind, phrase) in sorted(truth.items()):
            fh.write(
                json.dumps({"pdf": f"{kind}/{slug}.pdf", "page": page, "id": f"{slug}-{page}", "type": "present", "text": phrase}) + "\n"
            )
    return {"tests": tests, "references": references, "inputs": inputs}
