"""Sample PDFs that exercise what makes OCR hard, generated with PyMuPDF.

``python -m tracr.documents.samples DIR`` writes them; the copies shipped in
``tracr/samples/`` are what ``job_configs/example.yaml`` runs on. Each covers one
case: running text, a table, an image-only "scan" with no text layer, and a page
stored rotated by 90 degrees.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pymupdf

__all__ = ["write_samples", "SAMPLE_NAMES"]

SAMPLE_NAMES = ("text_report.pdf", "table_invoice.pdf", "scanned_letter.pdf", "rotated_page.pdf")

_PARAGRAPHS = [
    "Quarterly Report 2026",
    "Revenue grew by twelve percent compared with the previous quarter, driven by new contracts in the logistics sector.",
    "Operating costs remained stable. The team completed the migration of the billing system ahead of schedule.",
    "Outlook: we expect demand to stay strong through the winter months.",
]


def _text_report(path: Path) -> None:
    doc = pymupdf.open()
    for number in (1, 2):
        page = doc.new_page(width=595, height=842)
        page.insert_text((72, 90), f"{_PARAGRAPHS[0]} - Part {number}", fontsize=20, fontname="helv")
        y = 130
        for paragraph in _PARAGRAPHS[1:]:
            rect = pymupdf.Rect(72, y, 523, y + 80)
            page.insert_textbox(rect, paragraph, fontsize=12, fontname="helv")
            y += 90
    doc.save(path)


def _table_invoice(path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((72, 80), "Invoice 0042", fontsize=20, fontname="helv")
    rows = [("Item", "Qty", "Price"), ("Paper", "10", "4.50"), ("Toner", "2", "39.90"), ("Stapler", "1", "12.00"), ("Total", "", "96.30")]
    x0, y0, widths, height = 72, 120, (220, 80, 100), 28
    for r, row in enumerate(rows):
        x = x0
        for c, cell in enumerate(row):
            rect = pymupdf.Rect(x, y0 + r * height, x + widths[c], y0 + (r + 1) * height)
            page.draw_rect(rect, color=(0, 0, 0), width=0.8)
            page.insert_text((rect.x0 + 6, rect.y1 - 9), cell, fontsize=12, fontname="hebo" if r == 0 else "helv")
            x += widths[c]
    doc.save(path)


def _scanned_letter(path: Path) -> None:
    """Text drawn, rasterised with a slight tilt and noise, then placed as the only content."""
    source = pymupdf.open()
    page = source.new_page(width=595, height=842)
    lines = [
        "Dear customer,",
        "",
        "Your order number 7781 has shipped.",
        "It will arrive within five days.",
        "",
        "Kind regards,",
        "The Shipping Team",
    ]
    for i, line in enumerate(lines):
        page.insert_text((80, 120 + i * 26), line, fontsize=16, fontname="tiro")
    pixmap = page.get_pixmap(matrix=pymupdf.Matrix(1.5, 1.5).prerotate(0.8), colorspace=pymupdf.csGRAY)
    rng = random.Random(7)
    for _ in range(1500):
        x, y = rng.randrange(pixmap.width), rng.randrange(pixmap.height)
        shade = rng.randrange(120, 220)
        pixmap.set_pixel(x, y, (shade,))
    doc = pymupdf.open()
    scan = doc.new_page(width=595, height=842)
    scan.insert_image(scan.rect, stream=pixmap.tobytes("jpeg", jpg_quality=70))
    doc.save(path)


def _rotated_page(path: Path) -> None:
    """Content drawn sideways and a /Rotate of 90, as scanners store landscape pages."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((100, 770), "This page is stored rotated by 90 degrees.", fontsize=16, fontname="helv", rotate=90)
    page.insert_text((130, 770), "A viewer shows it upright; OCR must see it that way too.", fontsize=12, fontname="helv", rotate=90)
    page.set_rotation(90)
    doc.save(path)


def write_samples(dest: Path) -> list[Path]:
    """Write every sample PDF into ``dest``; returns their paths."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    makers = (_text_report, _table_invoice, _scanned_letter, _rotated_page)
    paths = []
    for name, make in zip(SAMPLE_NAMES, makers, strict=False):
        path = dest / name
        make(path)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write_samples(Path(sys.argv[1] if len(sys.argv) > 1 else "tracr/samples")):
        print(written)
