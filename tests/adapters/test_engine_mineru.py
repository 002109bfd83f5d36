"""MinerU2.5 end to end: a layout call on the squashed page, one call per block, the page assembled.

The stub serves MinerU's real model id and answers by prompt (``replies_by_prompt``): the layout
prompt gets a layout reply, each task prompt its own format; every request is kept as it arrived
(images as ``<image WxH>``), so the test checks what the endpoint received, the page written, the
raw record kept beside it and the run's page record.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.adapters.family_jobs import KEY_ENV, job_config, run_job, stub_requests
from tests.conftest import TEST_API_KEY, write_config
from tracr.adapters.parsers import mineru
from tracr.documents.images import data_url_image_size
from tracr.documents.pdf import render_clip_data_url
from tracr.outputs.journal import read_page_journal

pytestmark = pytest.mark.usefixtures("prefect_server")

MODEL = "opendatalab/MinerU2.5-2509-1.2B"
SLUG = "opendatalab-mineru2.5-2509-1.2b"
A4 = (595, 842)  # points; 200 dpi → 1653 x 2339 px
ZOOM = 200 / 72


def box(x1: int, y1: int, x2: int, y2: int, kind: str, tail: str = "<|rotate_up|>") -> str:
    return f"<|box_start|>{x1} {y1} {x2} {y2}<|box_end|><|ref_start|>{kind}<|ref_end|>{tail}"


# (box, type): a header, a title, a text and its continuation, a table, an equation, a figure (not sent), a page number.
BLOCKS = [
    ((100, 20, 900, 40), "header"),
    ((100, 60, 900, 100), "title"),
    ((100, 120, 900, 300), "text"),
    ((100, 310, 900, 400), "text"),
    ((150, 420, 850, 600), "table"),
    ((300, 620, 700, 680), "equation"),
    ((100, 700, 900, 900), "image"),
    ((450, 950, 550, 980), "page_number"),
]
LAYOUT = "\n".join(box(*b, kind, "<|rotate_up|>txt_contd_tgt" if i == 3 else "<|rotate_up|>") for i, (b, kind) in enumerate(BLOCKS))
OTSL = "<fcel>Metal<fcel>Share<nl><fcel>Cu<fcel>12%<nl>"
TABLE_HTML = "<table><tr><td>Metal</td><td>Share</td></tr><tr><td>Cu</td><td>12%</td></tr></table>"
REPLIES = {
    "Layout Detection:": [LAYOUT],
    "Table Recognition:": [OTSL],
    "Formula Recognition:": ["\\[E = mc^2\\]"],
    "Text Recognition:": ["crop {width}x{height}"],
}
LAYOUT_EXTRAS = {"top_k": 1, "repetition_penalty": 1.0, "vllm_xargs": {"no_repeat_ngram_size": 100}, "skip_special_tokens": False}


def _size(b: tuple[int, int, int, int]) -> tuple[float, float]:
    """A block's crop size at 200 dpi on an A4 page, before PyMuPDF rounds it outwards."""
    return (b[2] - b[0]) / 1000 * A4[0] * ZOOM, (b[3] - b[1]) / 1000 * A4[1] * ZOOM


def _near(actual: tuple[int, int], expected: tuple[float, float]) -> bool:
    return all(abs(a - e) <= 2 for a, e in zip(actual, expected, strict=True))


def _image(request: dict[str, Any]) -> tuple[int, int]:
    url = next(part["image_url"]["url"] for part in request["messages"][-1]["content"] if part["type"] == "image_url")
    width, height = re.fullmatch(r"<image (\d+)x(\d+)>", url).groups()  # type: ignore[union-attr]
    return int(width), int(height)


def _text(request: dict[str, Any]) -> str:
    return next(part["text"] for part in request["messages"][-1]["content"] if part["type"] == "text")


async def test_layout_then_blocks_asks_mineru_its_way_and_assembles_the_page(tmp_path, stub_server, pdf_factory, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    stub = stub_server(model=MODEL, replies_by_prompt=REPLIES, capture=True)
    pdf_factory("paper.pdf", 1, width=A4[0], height=A4[1])
    config = write_config(tmp_path / "job.yaml", job_config("mineru", str(tmp_path / "inputs"), stub.base_url, MODEL))
    state = await run_job(config, tmp_path / "out")
    assert state.is_completed(), state.message

    requests = stub_requests(stub.base_url)
    layout = [r for r in requests if _text(r) == mineru.LAYOUT_PROMPT]
    blocks = [r for r in requests if _text(r) != mineru.LAYOUT_PROMPT]
    assert len(layout) == 1 and len(blocks) == 7  # the figure is not sent (image analysis is off)

    (ask,) = layout
    assert ask["model"] == MODEL
    assert ask["messages"][0] == {"role": "system", "content": "You are a helpful assistant."}
    assert ask["messages"][1]["content"] == [
        {"type": "image_url", "image_url": {"url": "<image 1036x1036>"}},  # the page squashed to a square
        {"type": "text", "text": "\nLayout Detection:"},
    ]
    assert (ask["temperature"], ask["top_p"], ask["presence_penalty"], ask["frequency_penalty"], ask["max_tokens"]) == (
        0.0,
        0.01,
        0.0,
        0.0,
        4096,
    )
    assert {key: ask[key] for key in LAYOUT_EXTRAS} == LAYOUT_EXTRAS

    prompts = sorted(_text(r) for r in blocks)
    assert prompts == sorted(["\nText Recognition:"] * 5 + ["\nTable Recognition:", "\nFormula Recognition:"])
    for request in blocks:
        assert request["messages"][0]["role"] == "system" and request["messages"][1]["content"][0]["type"] == "image_url"
        assert {key: request[key] for key in LAYOUT_EXTRAS} == LAYOUT_EXTRAS
        frequency = 0.005 if _text(request) == "\nTable Recognition:" else 0.05
        assert (request["presence_penalty"], request["frequency_penalty"]) == (1.0, frequency)
    sent = [b for b, kind in BLOCKS if kind != "image"]
    sizes = sorted(_image(r) for r in blocks)
    # each crop is its block of the 200 dpi page; the header's 47 px and the page number's sides stay above 28 px
    assert all(any(_near(size, _size(b)) for b in sent) for size in sizes), sizes

    page_dir = tmp_path / "out" / "mineru" / SLUG / "run-1" / "paper"
    page = (page_dir / "1.md").read_text()
    # title, the text with its continuation joined, the table as HTML, the equation: header and page number left out
    match = re.fullmatch(r"# crop (\d+)x(\d+)\n\ncrop (\d+)x(\d+) crop (\d+)x(\d+)\n\n(.*)\n\n\$\$\nE = mc\^2\n\$\$", page, re.S)
    assert match, page
    numbers = [int(n) for n in match.groups()[:6]]
    for (width, height), (b, _) in zip(zip(numbers[::2], numbers[1::2], strict=True), BLOCKS[1:4], strict=True):
        assert _near((width, height), _size(b)), (width, height, b)
    assert match.group(7) == TABLE_HTML

    raw = json.loads((page_dir / "1.reply.txt").read_text())
    assert raw["layout"] == LAYOUT
    assert [r is None for r in raw["replies"]] == [kind == "image" for _, kind in BLOCKS]
    assert raw["replies"][4] == OTSL and raw["replies"][0].startswith("crop ")

    (record,) = read_page_journal(page_dir / "pages.jsonl")
    assert record.status == "done" and record.attempts == 8  # the layout call and seven blocks
    assert record.dropped == ["page_header", "page_number"]
    assert record.reply_meta == {"blocks": 8, "merged": 1, "sent": 7}
    assert record.input_tokens and record.output_tokens and record.output_tokens >= 8


async def test_a_layout_reply_that_does_not_parse_fails_the_page_and_keeps_the_raw(tmp_path, stub_server, pdf_factory, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    garbage = "The page shows a title and two paragraphs."
    stub = stub_server(model=MODEL, replies_by_prompt={**REPLIES, "Layout Detection:": [garbage]}, capture=True)
    pdf_factory("paper.pdf", 1)
    config = write_config(tmp_path / "job.yaml", job_config("mineru", str(tmp_path / "inputs"), stub.base_url, MODEL))
    assert (await run_job(config, tmp_path / "out")).is_completed()

    assert [_text(r) for r in stub_requests(stub.base_url)] == [mineru.LAYOUT_PROMPT]  # no block is asked
    page_dir = tmp_path / "out" / "mineru" / SLUG / "run-1" / "paper"
    (record,) = read_page_journal(page_dir / "pages.jsonl")
    assert (record.status, record.error_class, record.attempts) == ("failed", "unparseable_reply", 1)
    assert "no layout boxes" in (record.error or "")
    assert not (page_dir / "1.md").exists()
    assert json.loads((page_dir / "1.reply.txt").read_text()) == {"layout": garbage, "replies": []}


async def test_a_block_that_fails_fails_the_page_with_its_class(tmp_path, stub_server, pdf_factory, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    pdf = pdf_factory("paper.pdf", 1, width=A4[0], height=A4[1])
    table = next(b for b, kind in BLOCKS if kind == "table")
    clip = tuple(v / 1000 for v in table)
    width, _ = data_url_image_size(render_clip_data_url(str(pdf), 1, clip, 0, 28, 50.0, 1288, "png", 90, 200.0))  # type: ignore[arg-type]
    assert all(abs(_size(b)[0] - width) > 5 for b, kind in BLOCKS if kind != "table")  # the rule hits the table's crop only
    stub = stub_server(model=MODEL, replies_by_prompt=REPLIES, rules=[{"fault": "500", "times": -1, "image_width": width}])
    config = write_config(tmp_path / "job.yaml", job_config("mineru", str(tmp_path / "inputs"), stub.base_url, MODEL))
    assert (await run_job(config, tmp_path / "out")).is_completed()

    page_dir = tmp_path / "out" / "mineru" / SLUG / "run-1" / "paper"
    (record,) = read_page_journal(page_dir / "pages.jsonl")
    assert (record.status, record.error_class) == ("failed", "server_error")
    assert (record.error or "").startswith("table block at [0.15, 0.42, 0.85, 0.6]: HTTP 500")
    assert not (page_dir / "1.md").exists()
    assert json.loads((page_dir / "1.reply.txt").read_text())["layout"] == LAYOUT


def test_block_crops_are_rotated_padded_and_at_least_28_px(pdf_factory):
    pdf = str(pdf_factory("crops.pdf", 1, width=A4[0], height=A4[1]))

    def crop(clip: tuple[float, float, float, float], angle: int = 0) -> tuple[int, int]:
        return data_url_image_size(render_clip_data_url(pdf, 1, clip, angle, 28, 50.0, 1288, "png", 90, 200.0))

    width, height = crop((0.1, 0.1, 0.9, 0.3))
    assert _near((width, height), (0.8 * A4[0] * ZOOM, 0.2 * A4[1] * ZOOM))
    assert crop((0.1, 0.1, 0.9, 0.3), 90) == (height, width)  # turned a quarter: sides swap
    thin = crop((0.1, 0.1, 0.9, 0.101))  # 2 px high at 200 dpi: padded to 1:50, then grown to 28 px
    assert thin[1] == 28 and thin[0] / thin[1] <= 50
    small = crop((0.1, 0.1, 0.11, 0.11))  # 17 x 23 px at 200 dpi
    assert min(small) == 28
