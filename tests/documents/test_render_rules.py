"""The size and rotation rules adapters render pages with (tracr/config/render.py, tracr/documents/pdf.py)."""

from __future__ import annotations

from pathlib import Path

import pymupdf

from tracr.config.render import RenderSettings
from tracr.documents.images import image_size
from tracr.documents.pdf import render_page


def _banded_page(path: Path) -> str:
    """A 200 x 300 pt page, black along its top edge."""
    doc = pymupdf.open()
    page = doc.new_page(width=200, height=300)
    page.draw_rect(pymupdf.Rect(0, 0, 200, 30), color=(0, 0, 0), fill=(0, 0, 0))
    doc.save(path)
    return str(path)


def _render(path: str, **rules: object) -> bytes:
    return render_page(path, 1, *RenderSettings.model_validate(rules).args())


def test_rotation_turns_counter_clockwise_as_olmocr_does(tmp_path):
    """olmOCR (v0.3 and later) turns a page with PIL's ROTATE_90 for a correction of 90: counter-clockwise."""
    png = _render(_banded_page(tmp_path / "band.pdf"), longest_side_px=300, rotation=90)
    pix = pymupdf.Pixmap(png)
    assert (pix.width, pix.height) == (300, 200)
    assert pix.pixel(5, 100) == (0, 0, 0) and pix.pixel(pix.width - 5, 100) == (255, 255, 255)  # the top went left


def test_size_rules_dpi_shortest_side_bounds_and_squash(tmp_path):
    path = _banded_page(tmp_path / "band.pdf")
    assert image_size(_render(path, dpi=144)) == (400, 600)
    assert image_size(_render(path, shortest_side_px=500)) == (500, 750)
    assert image_size(_render(path, dpi=72, min_shortest_side_px=400)) == (400, 600)
    width, height = image_size(_render(path, dpi=300, max_pixels=60_000))
    assert width * height <= 61_000 and abs(width / height - 2 / 3) < 0.01
    assert image_size(_render(path, exact_px=256)) == (256, 256)  # MinerU's layout step: aspect not kept
    assert image_size(_render(path, longest_side_px=600, format="jpeg")) == (400, 600)
