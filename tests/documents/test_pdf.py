"""PDF access: rendering size and rotation, the text-layer baseline, clear errors."""

from __future__ import annotations

import base64
import io

import pymupdf
import pytest
from PIL import Image

from tests.conftest import make_pdf
from tracr.documents.pdf import (
    MAX_DRAWINGS_FOR_LAYOUT,
    PdfError,
    inspect_pdf,
    layout_pass_suits,
    page_text_markdown,
    render_page,
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
