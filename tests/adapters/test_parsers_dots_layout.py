"""dots.ocr layout JSON: layoutjson2md semantics, furniture, and the official OutputCleaner repair."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tracr.adapters.parsers import dots_layout
from tracr.adapters.replies import ReplyFormatError

FIXTURES = Path(__file__).parent / "fixtures" / "dots"
HEADER = "JOURNAL OF APPLIED HYDROLOGY, VOL. 12, NO. 3 (2024)"
FOOTER = "Copyright 2024 Applied Hydrology Society. All rights reserved."
TABLE_END = "<tr><td>D (Outlet)</td><td>1,364</td><td>41.2</td><td>163.7</td></tr></tbody></table>"


def _fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def _cell(category: str, text: str | None = None, bbox: list[Any] | None = None) -> dict[str, Any]:
    cell: dict[str, Any] = {"bbox": bbox or [10, 10, 100, 40], "category": category}
    if text is not None:
        cell["text"] = text
    return cell


SMALL = [
    _cell("Page-header", "Annual Report 2024"),
    _cell("Title", "# Flood Review"),
    _cell("Text", "  `$x$`  "),
    _cell("Text", "The value `$x$` is small.\n"),
    _cell("Formula", "\\[ a + b \\]"),
    _cell("Picture", bbox=[1.7, 2, 30, 40]),
    _cell("Table", "<table><tr><td>1</td></tr></table>"),
    _cell("Page-footer", "3"),
]


def test_small_page_exact() -> None:
    parsed = dots_layout.parse(json.dumps(SMALL))
    assert parsed.markdown == (
        "# Flood Review\n\n$x$\n\nThe value `$x$` is small.\n\n$$\na + b\n$$\n\n![](picture_1_2_30_40.png)\n\n<table><tr><td>1</td></tr></table>"
    )
    assert parsed.dropped == ("page_header", "page_footer")
    assert dict(parsed.meta) == {"repaired": False, "cells": len(SMALL)}


def test_keep_furniture_keeps_header_and_footer_text() -> None:
    markdown = dots_layout.parse(json.dumps(SMALL), keep_furniture=True).markdown
    assert markdown.startswith("Annual Report 2024\n\n# Flood Review")
    assert markdown.endswith("</table>\n\n3")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$$x$$", "$$\nx\n$$"),
        (" $$ a $ b $$ ", "$$ a $ b $$"),
        ("\\[ x^2 \\]", "$$\nx^2\n$$"),
        ("a \\[x\\] b", "a \\[x\\] b"),
        ("$x$ and y", "$x$ and y"),
        ("plain text", "plain text"),
        ("\\alpha + 1", "$$\n\\alpha + 1\n$$"),
        ("`\\frac{a}{b}`", "$$\n\\frac{a}{b}\n$$"),
        ("\\documentclass{article}\\usepackage{amsmath}\\begin{document}x^2\\end{document}", "$$\nx^2\n$$"),
        ("\\(x\\)", "$$\n\\(x\\)\n$$"),
    ],
)
def test_formula_rules(text: str, expected: str) -> None:
    assert dots_layout.formula_to_markdown(text) == expected


def test_full_page() -> None:
    parsed = dots_layout.parse(_fixture("full_page.json"))
    markdown = parsed.markdown
    assert parsed.dropped == ("page_header", "page_footer")
    assert dict(parsed.meta) == {"repaired": False, "cells": 13}
    assert HEADER not in markdown and FOOTER not in markdown and not markdown.endswith("217")
    assert markdown.startswith("## 4. Results and Discussion\n\nDischarge at the four gauging stations")
    assert 'the so-called "rating curve" method' in markdown
    assert "<table><thead><tr><th>Station</th><th>Area (km²)</th>" in markdown and TABLE_END in markdown
    assert "\n\n$$\nQ = \\frac{1}{n} A R^{2/3} S^{1/2}\n$$\n\n" in markdown
    assert "where `$n$` is the Manning" in markdown  # clean_text unwraps only a whole-cell `$…$`
    assert "![](picture_130_1310_1520_1702.png)" in markdown
    assert '"bbox"' not in markdown and '"category"' not in markdown and "\\n" not in markdown
    kept = dots_layout.parse(_fixture("full_page.json"), keep_furniture=True)
    assert kept.dropped == ()
    assert kept.markdown.startswith(HEADER + "\n\n## 4.")
    assert kept.markdown.endswith(f"{FOOTER}\n\n217")


def test_truncated_reply_is_repaired() -> None:
    parsed = dots_layout.parse(_fixture("truncated.json"))
    assert dict(parsed.meta) == {"repaired": True, "cells": 7}
    assert parsed.dropped == ("page_header",)
    assert HEADER not in parsed.markdown
    assert TABLE_END in parsed.markdown
    assert "Field surveys" not in parsed.markdown  # the cut-off last cell is left out
    assert parsed.markdown.endswith("$$")
    # Official quirk kept: the delimiter fix rewrites every "}{" (or "} {"), LaTeX included.
    assert "\\frac{1},{n}" in parsed.markdown


def test_repetition_loop_is_deduplicated() -> None:
    parsed = dots_layout.parse(_fixture("repetition.json"))
    assert dict(parsed.meta) == {"repaired": True, "cells": 4}
    assert parsed.markdown.count("Station D exceeded the warning threshold.") == 1
    assert parsed.markdown.endswith("statistics.\n\n- Station D exceeded the warning threshold.")


def test_missing_delimiters_are_fixed() -> None:
    cells = [_cell("Text", "One", [0, 0, 1, 1]), _cell("Text", "Two", [0, 2, 1, 3]), _cell("Text", "Three", [0, 4, 1, 5])]
    reply = "[" + "".join(json.dumps(cell).replace('{"bbox"', '{ "bbox"') for cell in cells) + "]"
    parsed = dots_layout.parse(reply)
    assert parsed.markdown == "One\n\nTwo\n\nThree"
    assert parsed.meta["repaired"] is True


def test_lone_cut_off_cell_is_salvaged_with_its_escapes_decoded() -> None:
    parsed = dots_layout.parse('[{"bbox": [1, 2, 3, 4], "category": "Text", "text": "Line one\\nLine tw')
    assert parsed.markdown == "Line one\nLine tw"
    assert parsed.meta["repaired"] is True


def test_malformed_cells_get_the_list_rules() -> None:
    reply = json.dumps([{"bbox": [1, 2, 3], "category": "Text", "text": "a"}, "junk", {"bbox": [1, 2], "text": "lost"}, _cell("Text", "b")])
    parsed = dots_layout.parse(reply)
    assert parsed.markdown == "a\n\nb"
    assert dict(parsed.meta) == {"repaired": True, "cells": 2}


def test_empty_list_is_an_empty_page() -> None:
    parsed = dots_layout.parse("[]")
    assert (parsed.markdown, parsed.meta["repaired"], parsed.dropped) == ("", False, ())


@pytest.mark.parametrize("name", ["not_json.txt", "object.json"])
def test_unrecoverable_replies_fail(name: str) -> None:
    with pytest.raises(ReplyFormatError) as caught:
        dots_layout.parse(_fixture(name))
    assert caught.value.reason == "not a JSON list of layout cells"


@pytest.mark.parametrize("reply", ["", '"text"', "[1, 2, 3]", '[{"text": "no box or category"}]'])
def test_other_non_layouts_fail(reply: str) -> None:
    with pytest.raises(ReplyFormatError):
        dots_layout.parse(reply)


def test_repair_cells_matches_the_official_order_of_steps() -> None:
    duplicate = json.dumps(_cell("Text", "same"))
    reply = f"[{duplicate}, {json.dumps(_cell('Text', 'other', [5, 5, 9, 9]))}, {duplicate}, " + '{"bbox": [1, 1'
    assert [cell["text"] for cell in dots_layout.repair_cells(reply)] == ["same", "other"]
