"""PDF access: rendering size and rotation, the text-layer baseline, clear errors."""

from __future__ import annotations

import base64
import io

import pymupdf
import pytest
from PIL import Image

from tests.conftest import make_pdf
from tests.documents.paper_pdf import FIGURE_LABELS, make_paper_pdf
from tracr.documents.pdf import (
    MAX_DRAWINGS_FOR_LAYOUT,
    PdfError,
    inspect_pdf,
    layout_pass_suits,
    page_text_markdown,
    render_page,
    render_page_band,
    render_page_data_url,
)


def _size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def test_render_longest_side_and_rotation(tmp_path):
    portrait = make_pdf(tmp_path / "p.pdf", 1)
    rotated = make_pdf(tmp_path / "r.pdf", 1, rotate=90)
    assert _size(render_page(str(portrait), 1, 1288)) == (911, 1288)
    assert _size(render_page(str(rotated), 1, 1288)) == (1288, 911)  # shown as a viewer shows it
    jpeg = render_page(str(portrait), 1, 640, "jpeg", 70)
    assert jpeg[:2] == b"\xff\xd8" and max(_size(jpeg)) == 640
    url = render_page_data_url(str(portrait), 1, 300)
    assert url.startswith("data:image/png;base64,") and _size(base64.b64decode(url.split(",", 1)[1]))[1] == 300


def test_a_pdf_replaced_while_a_worker_holds_it_open_is_read_afresh(tmp_path):
    path = tmp_path / "doc.pdf"
    make_pdf(path, 1, label="first")
    first = render_page(str(path), 1, 300)
    assert "first 1 of doc" in page_text_markdown(str(path), 1)
    make_pdf(path, 2, label="second version")  # same path, new content: the open document is stale
    assert render_page(str(path), 1, 300) != first
    assert "second version 1 of doc" in page_text_markdown(str(path), 1)
    assert render_page(str(path), 2, 300)  # a page the old file did not have


def test_text_layer_baseline_handles_rotated_pages(tmp_path):
    rotated = make_pdf(tmp_path / "r.pdf", 1, rotate=90, label="sideways")
    assert "sideways 1 of r" in page_text_markdown(str(rotated), 1)


def test_text_layer_baseline_does_not_stall_on_drawing_heavy_pages(tmp_path):
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), "Site plan legend", fontsize=14)
    shape = page.new_shape()
    for i in range(MAX_DRAWINGS_FOR_LAYOUT + 500):
        x = 50 + (i % 500)
        shape.draw_line((x, 100 + i // 500), (x + 1, 101 + i // 500))
        shape.finish(width=0.1)
    shape.commit()
    doc.save(tmp_path / "map.pdf")
    heavy = pymupdf.open(tmp_path / "map.pdf")[0]
    assert not layout_pass_suits(heavy)  # the layout pass would take minutes on such pages
    assert layout_pass_suits(pymupdf.open(make_pdf(tmp_path / "plain.pdf", 1))[0])
    assert "Site plan legend" in page_text_markdown(str(tmp_path / "map.pdf"), 1)


def test_text_layer_baseline_is_plain_markdown(tmp_path):
    """pymupdf4llm marks this page up with ``<sup>`` and picture-text comments; the baseline writes plain Markdown."""
    text = page_text_markdown(str(make_paper_pdf(tmp_path / "paper.pdf")), 1)
    assert "<" not in text and "picture text" not in text, text  # no comment, no HTML tag: nothing names the model in the arena
    assert "Ada Lovelace¹" in text and "Alan Turing²" in text
    assert all(label in text for label in FIGURE_LABELS) and "Spatio-temporal graph" in text  # the figure's words stay
    assert "# **Structured Graphs for Sequence Models**" in text


def test_page_band_is_sized_by_width_so_a_very_tall_page_stays_readable(tmp_path):
    doc = pymupdf.open()
    page = doc.new_page(width=300, height=6000)  # a receipt
    page.insert_text((20, 40), "Line 001", fontsize=11)
    doc.save(tmp_path / "receipt.pdf")
    whole = _size(render_page_band(str(tmp_path / "receipt.pdf"), 1, width_px=600))
    assert whole == (600, 12000)  # by its longest side (render_page) it would be 64 px wide
    capped = _size(render_page_band(str(tmp_path / "receipt.pdf"), 1, width_px=600, max_pixels=1_000_000))
    assert capped[0] * capped[1] == pytest.approx(1_000_000, rel=0.01) and capped[1] / capped[0] == pytest.approx(20, rel=0.01)
    half = _size(render_page_band(str(tmp_path / "receipt.pdf"), 1, x0=0.5, x1=1.0, width_px=600))
    assert half == (600, 24000)  # half the width at the same pixels: twice the magnification


def test_page_band_of_a_rotated_page_is_the_part_a_viewer_shows(tmp_path):
    rotated = str(make_pdf(tmp_path / "r.pdf", 1, rotate=90, label="sideways"))
    assert _size(render_page_band(rotated, 1, width_px=842)) == (842, 595)  # landscape, as shown
    left = Image.open(io.BytesIO(render_page_band(rotated, 1, x0=0.0, x1=0.5, width_px=421))).convert("L")
    right = Image.open(io.BytesIO(render_page_band(rotated, 1, x0=0.5, x1=1.0, width_px=421))).convert("L")
    assert left.size == right.size == (421, 595)
    assert left.getextrema() == (255, 255) and right.getextrema()[0] < 128  # the text sits on the right as shown


def test_inspect_reports_specific_problems(tmp_path):
    assert inspect_pdf(make_pdf(tmp_path / "ok.pdf", 3)).page_count == 3
    (tmp_path / "junk.pdf").write_bytes(b"%PDF-1.4 garbage")
    with pytest.raises(PdfError, match="cannot open PDF junk.pdf"):
        inspect_pdf(tmp_path / "junk.pdf")
    locked = pymupdf.open()
    locked.new_page()
    locked.save(tmp_path / "locked.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="o", user_pw="u")
    with pytest.raises(PdfError, match="encrypted"):
        inspect_pdf(tmp_path / "locked.pdf")
