"""A one-page "paper" whose text layer pymupdf4llm marks up: author superscripts and a figure with words in it.

pymupdf4llm writes the authors' footnote marks as ``<sup>1</sup>`` and the figure's labels
between ``<!-- Start of picture text -->`` comments, joined by ``<br>`` (seen on real papers in
the olmOCR "gnarly" PDFs). Tests of the text-layer baseline and of the arena use it.
"""

from __future__ import annotations

import io
from pathlib import Path

import pymupdf
from PIL import Image, ImageDraw

__all__ = ["FIGURE_LABELS", "make_paper_pdf"]

FIGURE_LABELS = ("Activity", "Affordance", "RNN", "t-1", "t+1")


def _figure_png() -> bytes:
    image = Image.new("RGB", (600, 300), (230, 240, 255))
    draw = ImageDraw.Draw(image)
    for i in range(6):
        draw.rectangle([40 + i * 90, 100, 100 + i * 90, 200], outline=(0, 0, 120), width=4)
        draw.line([100 + i * 90, 150, 130 + i * 90, 150], fill=(0, 0, 0), width=3)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def make_paper_pdf(path: Path) -> Path:
    """Title, two authors with raised footnote marks, a paragraph, a figure with text labels on it, a caption."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((72, 80), "Structured Graphs for Sequence Models", fontsize=20, fontname="hebo")
    for x, name, mark in ((72, "Ada Lovelace", "1"), (160, "and Alan Turing", "2")):
        page.insert_text((x, 120), name, fontsize=11)
        page.insert_text((x + pymupdf.get_text_length(name, fontsize=11) + 1, 116), mark, fontsize=7)
    body = "The world we live in is inherently structured: its parts interact in space and time. "
    page.insert_textbox(pymupdf.Rect(72, 150, 523, 300), body * 4, fontsize=11)
    page.insert_image(pymupdf.Rect(72, 320, 523, 545), stream=_figure_png())
    for i, label in enumerate(FIGURE_LABELS):
        page.insert_text((90 + i * 80, 380), label, fontsize=9)
    page.insert_text((200, 520), "Spatio-temporal graph", fontsize=9)
    page.insert_textbox(pymupdf.Rect(72, 560, 523, 640), "Figure 1: From st-graph to S-RNN for an example problem.", fontsize=10)
    doc.save(path)
    doc.close()
    return path
