"""What the shared report shows beyond the rankings: the pages where models disagree most, and the scatter points.

Both renderers (:mod:`tracr.reporting.html`, :mod:`tracr.reporting.markdown`) take the
same :class:`ReportContent`, so the HTML and Markdown reports say the same thing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from tracr.config.collections import ALL
from tracr.documents.pdf import render_page
from tracr.outputs.layout import OutputLayout
from tracr.reporting.job_data import JobData
from tracr.reporting.rankings import CollectionBoard, collection_boards, quality_of, winner_flips
from tracr.review.pairing import text_similarity

__all__ = ["Disagreement", "Point", "ReportContent", "build_content", "OUTPUT_CHARS", "disagreements", "points"]

log = logging.getLogger(__name__)

OUTPUT_CHARS = 3000
"""Most characters of one output shown (a looping output must not swamp the report)."""
MAX_PAGES_COMPARED = 500
"""Pages compared when looking for disagreement (evenly spread over a larger job)."""


@dataclass
class Disagreement:
    """One page, how far apart the models' outputs are (0 = identical, 1 = nothing shared), and what each wrote."""

    pdf_slug: str
    page: int
    collections: tuple[str, ...]
    spread: float
    outputs: dict[str, str]  # model -> text (capped), or a "failed: ..." note
    failed: set[str] = field(default_factory=set)
    image: bytes | None = None  # JPEG of the page, or None when the PDF is not readable here


@dataclass(frozen=True)
class Point:
    model: str
    quality: float
    cost: float | None
    seconds: float | None


@dataclass
class ReportContent:
    data: JobData
    boards: list[CollectionBoard]
    flips: list[str]
    quality_label: str
    points: list[Point]
    pages: list[Disagreement]


def _cap(text: str) -> str:
    return text if len(text) <= OUTPUT_CHARS else text[:OUTPUT_CHARS] + f"\n… ({len(text) - OUTPUT_CHARS} more characters)"


def _read(layout: OutputLayout, data: JobData, model: str, run: int, pdf: str, page: int) -> str | None:
    try:
        return layout.run(data.job_id, model, run).page_markdown(pdf, page).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def disagreements(outputs_root: Path, data: JobData, *, limit: int = 4, image_px: int = 900) -> list[Disagreement]:
    """The ``limit`` pages whose outputs differ most (mean pairwise normalised edit distance; a failed page is as far as can be)."""
    layout = OutputLayout(Path(outputs_root))
    runs = {m.slug: m.run for m in data.models}
    keys = data.page_keys()
    if len(keys) > MAX_PAGES_COMPARED:
        step = len(keys) / MAX_PAGES_COMPARED
        keys = [keys[int(k * step)] for k in range(MAX_PAGES_COMPARED)]
    scored: list[Disagreement] = []
    for pdf, page in keys:
        texts: dict[str, str | None] = {}
        for model, run in runs.items():
            stat = data.pages.get((model, pdf, page))
            if stat is None:
                continue
            texts[model] = _read(layout, data, model, run, pdf, page) if stat.status == "done" else None
        if len(texts) < 2 or all(t is None for t in texts.values()):
            continue
        distances = [1.0 - text_similarity(a, b) if a is not None and b is not None else 1.0 for a, b in combinations(texts.values(), 2)]
        outputs = {}
        failed = set()
        for model, text in texts.items():
            if text is None:
                stat = data.pages[(model, pdf, page)]
                outputs[model] = f"failed: {stat.error_class or stat.status}"
                failed.add(model)
            else:
                outputs[model] = _cap(text)
        scored.append(Disagreement(pdf, page, data.collections.of(pdf, page), sum(distances) / len(distances), outputs, failed))
    scored.sort(key=lambda d: (-d.spread, d.pdf_slug, d.page))
    chosen = scored[:limit]
    for item in chosen:
        path = data.pdfs.get(item.pdf_slug)
        try:
            item.image = render_page(path, item.page, image_px, "jpeg", 80) if path else None
        except Exception as exc:  # a moved or unreadable PDF: the report shows the page without its image
            log.debug("no image of %s page %d: %s", item.pdf_slug, item.page, exc)
            item.image = None
    return chosen


def points(board: CollectionBoard) -> tuple[str, list[Point]]:
    """Each model's quality with its cost per 1,000 pages and seconds per page, for the scatter plots."""
    label, quality = quality_of(board)
    return label, [Point(m, q, board.cost_per_1000.get(m), board.seconds_per_page.get(m)) for m, q in sorted(quality.items())]


def build_content(outputs_root: Path, data: JobData, *, rounds: int = 1000, seed: int = 0, pages: int = 4) -> ReportContent:
    """Everything a report shows."""
    boards = collection_boards(data, rounds=rounds, seed=seed)
    whole = next(b for b in boards if b.name == ALL)
    label, pts = points(whole)
    return ReportContent(data, boards, winner_flips(boards), label, pts, disagreements(outputs_root, data, limit=pages))


def health_kinds(data: JobData) -> Sequence[str]:
    return list((data.summary or {}).get("issue_kinds") or [])
