"""Reading outputs made elsewhere (``tracr import``): which file is which page of which job PDF.

Two layouts are recognised:

* plain: ``<pdf_slug>/<page>.md`` (the job's own PDF slugs), one repeat;
* olmOCR-Bench candidates: ``<sub/folders>/<pdf_stem>_pg<page>_repeat<r>.md``; the PDF
  ``<sub/folders>/<pdf_stem>.pdf`` is matched to the job's PDFs as tests are
  (:func:`tracr.scoring.job.match_pdf`), and every repeat is kept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath

from tracr.scoring.job import JobPdf, ScoringInputError, match_pdf

__all__ = ["CANDIDATE_NAME", "ImportPlan", "plan_import"]

CANDIDATE_NAME = re.compile(r"^(?P<stem>.+)_pg(?P<page>[1-9][0-9]*)_repeat(?P<repeat>[1-9][0-9]*)\.md$")
_PLAIN_PAGE = re.compile(r"^[1-9][0-9]*\.md$")

ImportPlan = tuple[str, list[dict[tuple[str, int], str]]]
"""``(layout name, per repeat: (pdf_slug, page) -> relative file path)``."""


def plan_import(files: Sequence[str], pdfs: Sequence[JobPdf], *, source: str) -> ImportPlan:
    """Map relative ``.md`` paths (POSIX) to job pages; a file that fits no PDF or page is an error naming it."""
    if not files:
        raise ScoringInputError(f"{source}: no .md files to import")
    slugs = {p.pdf_slug: p for p in pdfs}
    if any(CANDIDATE_NAME.match(PurePosixPath(f).name) for f in files):
        repeats: dict[int, dict[tuple[str, int], str]] = {}
        for f in sorted(files):
            path = PurePosixPath(f)
            found = CANDIDATE_NAME.match(path.name)
            if not found:
                raise ScoringInputError(f"{source}/{f}: not an olmOCR-Bench candidate name (<pdf_stem>_pg<page>_repeat<r>.md)")
            pdf = match_pdf(str(path.parent / f"{found['stem']}.pdf"), pdfs)
            if pdf is None:
                raise ScoringInputError(
                    f"{source}/{f}: names PDF {str(path.parent / (found['stem'] + '.pdf'))!r}, which is not (uniquely) in the job"
                )
            _check_page(pdf, int(found["page"]), f"{source}/{f}")
            repeats.setdefault(int(found["repeat"]), {})[(pdf.pdf_slug, int(found["page"]))] = f
        return "olmocr-bench", [repeats[r] for r in sorted(repeats)]
    pages: dict[tuple[str, int], str] = {}
    for f in sorted(files):
        path = PurePosixPath(f)
        if len(path.parts) != 2 or not _PLAIN_PAGE.match(path.name):
            raise ScoringInputError(f"{source}/{f}: expected <pdf_slug>/<page>.md or <pdf_stem>_pg<page>_repeat<r>.md")
        if path.parts[0] not in slugs:
            raise ScoringInputError(
                f"{source}/{f}: PDF slug {path.parts[0]!r} is not in the job (its slugs: {', '.join(sorted(slugs)[:8])})"
            )
        _check_page(slugs[path.parts[0]], int(path.stem), f"{source}/{f}")
        pages[(path.parts[0], int(path.stem))] = f
    return "plain", [pages]


def _check_page(pdf: JobPdf, page: int, where: str) -> None:
    if pdf.page_count is not None and page > pdf.page_count:
        raise ScoringInputError(f"{where}: page {page}, but {pdf.pdf_slug} has {pdf.page_count} page(s)")
