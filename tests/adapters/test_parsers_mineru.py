"""MinerU2.5 two-step replies → Markdown (tracr/adapters/parsers/mineru.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.adapters.test_parsers_otsl import cell, grid_widths
from tracr.adapters.parsers import mineru
from tracr.adapters.parsers.mineru import LayoutBlock
from tracr.adapters.replies import ReplyFormatError

FIXTURES = Path(__file__).parent / "fixtures" / "mineru"
FURNITURE_TEXT = {
    "header": "Journal of Materials Recycling",
    "page_number": "217",
    "aside_text": "Downloaded from the publisher",
    "page_footnote": "Corresponding author",
    "footer": "CC BY 4.0 licence",
}


def box(x1: int, y1: int, x2: int, y2: int, kind: str, tail: str = "<|rotate_up|>") -> str:
    return f"<|box_start|>{x1} {y1} {x2} {y2}<|box_end|><|ref_start|>{kind}<|ref_end|>{tail}"


def fixture_page() -> list[tuple[LayoutBlock, str | None]]:
    blocks = mineru.parse_layout((FIXTURES / "layout.txt").read_text(encoding="utf-8"))
    replies = json.loads((FIXTURES / "blocks.json").read_text(encoding="utf-8"))
    assert [b.type for b in blocks] == [r["type"] for r in replies]
    return [(b, r["reply"]) for b, r in zip(blocks, replies, strict=True)]


# --- step 1: layout ---------------------------------------------------------------------------------------


def test_layout_entry_exact() -> None:
    reply = box(100, 200, 300, 400, "text", "<|rotate_up|>txt_contd_tgt") + "\n" + box(100, 450, 900, 500, "table", "<|rotate_right|>")
    assert mineru.parse_layout(reply) == [
        LayoutBlock("text", (0.1, 0.2, 0.3, 0.4), 0, True),
        LayoutBlock("table", (0.1, 0.45, 0.9, 0.5), 90, False),
    ]


def test_layout_rotations_and_missing_rotation() -> None:
    reply = "".join(
        box(10, 10 + 100 * i, 500, 90 + 100 * i, "text", tail) for i, tail in enumerate(["<|rotate_down|>", "<|rotate_left|>", ""])
    )
    assert [b.angle for b in mineru.parse_layout(reply)] == [180, 270, None]


def test_merge_marker_only_for_text() -> None:
    (block,) = mineru.parse_layout(box(10, 10, 500, 90, "title", "<|rotate_up|>txt_contd_tgt"))
    assert block == LayoutBlock("title", (0.01, 0.01, 0.5, 0.09), 0, False)


def test_inline_formula_skipped_and_unknown_is_image() -> None:
    reply = box(10, 10, 500, 90, "inline_formula") + box(10, 100, 500, 190, "unknown")
    assert mineru.parse_layout(reply) == [LayoutBlock("image", (0.01, 0.1, 0.5, 0.19), 0)]


def test_text_and_equations_inside_a_table_removed() -> None:
    reply = (
        box(100, 100, 900, 500, "table")
        + box(150, 150, 400, 200, "text")
        + box(150, 300, 400, 350, "equation")
        + box(100, 480, 900, 600, "text")
    )
    assert [b.type for b in mineru.parse_layout(reply)] == ["table", "text"]  # the last text is only partly inside


def test_caption_inside_an_image_removed() -> None:
    reply = box(100, 100, 900, 500, "image") + box(150, 450, 850, 490, "image_caption") + box(150, 510, 850, 540, "image_caption")
    assert [b.bbox[1] for b in mineru.parse_layout(reply)] == [0.1, 0.51]


def test_bad_boxes_and_unknown_types_skipped() -> None:
    blocks = mineru.parse_layout((FIXTURES / "layout_bad_boxes.txt").read_text(encoding="utf-8"))
    assert blocks == [
        LayoutBlock("header", (0.08, 0.03, 0.6, 0.048), 0),
        LayoutBlock("text", (0.08, 0.255, 0.92, 0.33), 90),  # corners given in the wrong order are put right
        LayoutBlock("table", (0.08, 0.39, 0.92, 0.41), None),  # type read case-insensitively
    ]


def test_truncated_layout_keeps_whole_entries() -> None:
    blocks = mineru.parse_layout((FIXTURES / "layout_truncated.txt").read_text(encoding="utf-8"))
    assert [b.type for b in blocks] == ["header", "title", "text"]


def test_layout_without_boxes_is_a_format_error() -> None:
    with pytest.raises(ReplyFormatError) as err:
        mineru.parse_layout((FIXTURES / "layout_malformed.txt").read_text(encoding="utf-8"))
    assert err.value.reason == "no layout boxes"


def test_empty_layout_is_a_blank_page() -> None:
    assert mineru.parse_layout("  \n") == []
    assert mineru.assemble([]).markdown == ""


# --- step 2: prompts, sampling, crops -------------------------------------------------------------------------


def block(kind: str, bbox: tuple[float, float, float, float] = (0.1, 0.1, 0.9, 0.5), angle: int | None = 0) -> LayoutBlock:
    return LayoutBlock(kind, bbox, angle)


@pytest.mark.parametrize(
    ("kind", "prompt"),
    [
        ("text", "\nText Recognition:"),
        ("title", "\nText Recognition:"),
        ("list_item", "\nText Recognition:"),
        ("code", "\nText Recognition:"),
        ("header", "\nText Recognition:"),  # the official client sends furniture; the pipeline drops it later
        ("page_number", "\nText Recognition:"),
        ("table", "\nTable Recognition:"),
        ("equation", "\nFormula Recognition:"),
        ("list", None),
        ("equation_block", None),
        ("image_block", None),
        ("image", None),
        ("chart", None),
    ],
)
def test_prompt_for(kind: str, prompt: str | None) -> None:
    assert mineru.prompt_for(block(kind)) == prompt


def test_image_analysis_prompt_only_for_big_enough_images() -> None:
    assert mineru.prompt_for(block("chart"), image_analysis=True) == "\nImage Analysis:"
    assert mineru.prompt_for(block("image", (0.1, 0.1, 0.15, 0.15)), image_analysis=True) is None


def test_fixture_blocks_sent_as_upstream() -> None:
    for layout_block, reply in fixture_page():
        assert (mineru.prompt_for(layout_block) is None) == (reply is None), layout_block


def test_sampling_exact() -> None:
    assert mineru.sampling_for("table") == {
        "temperature": 0.0,
        "top_p": 0.01,
        "presence_penalty": 1.0,
        "frequency_penalty": 0.005,
        "extra_body": {"top_k": 1, "repetition_penalty": 1.0, "vllm_xargs": {"no_repeat_ngram_size": 100}, "skip_special_tokens": False},
    }


@pytest.mark.parametrize(
    ("step", "penalties"),
    [(mineru.LAYOUT_STEP, (0.0, 0.0)), ("text", (1.0, 0.05)), ("title", (1.0, 0.05)), ("equation", (1.0, 0.05)), ("image", (1.0, 0.05))],
)
def test_sampling_penalties(step: str, penalties: tuple[float, float]) -> None:
    params = mineru.sampling_for(step)
    assert (params["presence_penalty"], params["frequency_penalty"]) == penalties


def test_constants() -> None:
    assert mineru.LAYOUT_IMAGE_SIZE == (1036, 1036)
    assert mineru.LAYOUT_PROMPT == "\nLayout Detection:"
    assert (mineru.MIN_IMAGE_EDGE, mineru.MAX_IMAGE_EDGE_RATIO) == (28, 50.0)


def test_crop_box_px() -> None:
    assert mineru.crop_box_px(block("text", (0.1, 0.2, 0.3, 0.4)), 1700, 2200) == (170, 440, 510, 880)
    assert mineru.crop_box_px(block("text", (0.0125, 0.0, 1.0, 1.0)), 1000, 500) == (12, 0, 1000, 500)  # Pillow's round()


@pytest.mark.parametrize(
    ("size", "angle", "expected"),
    [
        ((300, 200), 0, (300, 200, 300, 200)),
        ((10, 10), 0, (10, 10, 28, 28)),
        ((100, 1), 0, (100, 2, 1400, 28)),
        ((5000, 60), None, (5000, 100, 5000, 100)),
        ((30, 2000), 90, (2000, 40, 2000, 40)),
        ((30, 2000), 180, (40, 2000, 40, 2000)),
    ],
)
def test_crop_size(size: tuple[int, int], angle: int | None, expected: tuple[int, int, int, int]) -> None:
    assert mineru.crop_size(*size, angle) == expected


# --- step 2 replies → Markdown ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "reply", "markdown"),
    [
        ("table", "<fcel>a<lcel><nl><fcel>b<fcel>c<nl>", '<table><tr><td colspan="2">a</td></tr><tr><td>b</td><td>c</td></tr></table>'),
        ("equation", "\\[\nE = mc^2\n\\]", "$$\nE = mc^2\n$$"),
        ("equation", "E = mc^2", "$$\nE = mc^2\n$$"),
        ("title", "3. Results and\n  discussion", "# 3. Results and discussion"),
        ("text", "where \\( x_i \\) is the mean", "where $x_i$ is the mean"),
        ("text", "as shown \\[12, 13\\] before", "as shown [12, 13] before"),
        ("text", "so \\[a+b\\] holds", "so $a+b$ holds"),
        ("code", "```python\nprint(1)\n```", "```python\nprint(1)\n```"),
        ("text", "[Non-Text]", ""),
        ("text", "  ", ""),
    ],
)
def test_content_markdown(kind: str, reply: str, markdown: str) -> None:
    assert mineru.content_markdown(block(kind), reply) == markdown


def test_assemble_small_exact() -> None:
    blocks = [
        (LayoutBlock("header", (0.1, 0.01, 0.9, 0.03)), "Running head"),
        (LayoutBlock("title", (0.1, 0.05, 0.9, 0.08)), "Intro"),
        (LayoutBlock("text", (0.1, 0.1, 0.9, 0.2)), "First half of a"),
        (LayoutBlock("image", (0.1, 0.2, 0.9, 0.3)), None),
        (LayoutBlock("text", (0.1, 0.3, 0.9, 0.4), merge_prev=True), "sentence."),
        (LayoutBlock("text", (0.1, 0.4, 0.9, 0.5)), "中文段落"),
        (LayoutBlock("text", (0.1, 0.5, 0.9, 0.6), merge_prev=True), "继续"),
        (LayoutBlock("page_number", (0.4, 0.95, 0.6, 0.98)), "12"),
    ]
    parsed = mineru.assemble(blocks)
    assert parsed.markdown == "# Intro\n\nFirst half of a sentence.\n\n中文段落继续"
    assert parsed.dropped == ("page_header", "page_number")
    assert parsed.meta == {"blocks": 8, "merged": 2}
    kept = mineru.assemble(blocks, keep_furniture=True)
    assert kept.markdown == "Running head\n\n# Intro\n\nFirst half of a sentence.\n\n中文段落继续\n\n12"
    assert kept.dropped == ()


def test_merge_without_a_previous_text_block_stands_alone() -> None:
    blocks = [(LayoutBlock("title", (0.1, 0.05, 0.9, 0.08)), "Intro"), (LayoutBlock("text", (0.1, 0.1, 0.9, 0.2), merge_prev=True), "tail")]
    assert mineru.assemble(blocks).markdown == "# Intro\n\ntail"


def test_full_page_default() -> None:
    parsed = mineru.assemble(fixture_page())
    md = parsed.markdown
    assert parsed.dropped == ("page_header", "page_number", "aside_text", "footnote", "page_footer")
    for text in FURNITURE_TEXT.values():
        assert text not in md
    assert md.startswith("# 3. Results and discussion\n\nThe thermal conductivity $k$ of the recycled alloys")
    assert "plate-shaped intermetallic phases. These phases scatter conduction electrons" in md  # txt_contd_tgt
    assert "\n\n$$\nk = \\alpha \\, \\rho \\, c_p\n$$\n\n" in md
    assert "comparable secondary alloys [12, 13]." in md
    assert "- Specimens with visible porosity were excluded.\n\n- All values are corrected for thermal expansion." in md
    assert "<|" not in md and "\\(" not in md and "<fcel>" not in md and "<nl>" not in md
    assert parsed.meta == {"blocks": 17, "merged": 1}
    assert len(md.split()) > 250


def test_full_page_table() -> None:
    md = mineru.assemble(fixture_page()).markdown
    (table,) = [part for part in md.split("\n\n") if part.startswith("<table>")]
    assert cell(table, "Alloy")[2:] == (2, 1)
    assert cell(table, "k (W/m·K)")[2:] == (1, 2)
    assert cell(table, "A356")[2:] == (3, 1)
    assert cell(table, "AlSi10Mg")[2:] == (2, 1)
    assert grid_widths(table) == [5] * 7


def test_full_page_keeps_furniture_when_asked() -> None:
    parsed = mineru.assemble(fixture_page(), keep_furniture=True)
    assert parsed.dropped == ()
    for text in FURNITURE_TEXT.values():
        assert text in parsed.markdown
    assert parsed.markdown.startswith("Journal of Materials Recycling, Vol. 14 (2024) 211–229\n\n217\n\n")
