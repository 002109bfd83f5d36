"""A small scored job for the scoring tests, written through the same run writer as ``tracr import``.

Three models over two PDFs (``docs/report.pdf`` page 1, ``letters/letter.pdf`` pages 1-2):
``good`` is right everywhere, ``loopy`` loops on the report and failed letter page 2,
``bad`` wrote almost nothing (letter page 2 is ``"The"``, which passes olmOCR-Bench's ``present`` test by its known flaw.
"""

from __future__ import annotations

from pathlib import Path

from tasks.scoring.importing import ensure_job, write_run
from tracr.outputs.layout import OutputLayout

FIXTURES = Path(__file__).parent / "fixtures"
JOB = FIXTURES / "job"
GOOD = (FIXTURES / "outputs" / "good.md").read_text(encoding="utf-8")
LOOP = (FIXTURES / "outputs" / "loop.md").read_text(encoding="utf-8")
LETTER_2 = (JOB / "refs" / "letter" / "2.md").read_text(encoding="utf-8")


def build_job(root: Path, job_id: str = "scored") -> OutputLayout:
    layout = OutputLayout(root)
    pdfs = [Path("/data/bench/docs/report.pdf"), Path("/data/bench/letters/letter.pdf")]
    ensure_job(layout, job_id, pdfs, page_counts={pdfs[0]: 1, pdfs[1]: 2})
    write_run(
        layout,
        job_id,
        "good",
        {("report", 1): GOOD, ("letter", 1): "Dear reader,", ("letter", 2): LETTER_2},
        tokens={("report", 1): (1000, 500), ("letter", 1): (1000, 10), ("letter", 2): (1000, 30)},
    )
    write_run(
        layout,
        job_id,
        "loopy",
        {("report", 1): LOOP, ("letter", 1): "Dear reader,", ("letter", 2): None},
        finish_reasons={("report", 1): "length"},
    )
    write_run(layout, job_id, "bad", {("report", 1): "The", ("letter", 1): "D", ("letter", 2): "The"})
    return layout
