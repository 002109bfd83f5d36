"""granite-docling / SmolDocling DocTags → Markdown through docling-core (tracr/adapters/parsers/doctags.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tracr.adapters.parsers import doctags
from tracr.adapters.replies import ReplyFormatError

FIXTURES = Path(__file__).parent / "fixtures" / "doctags"
HEADER = "Journal of Materials Recycling, Vol. 14 (2024) 211–229"
FOOTER = "© 2024 The Authors. Published under a CC BY 4.0 licence."


def page() -> str:
    return (FIXTURES / "page.dt").read_text(encoding="utf-8")


def test_small_reply_exact() -> None:
    reply = (
        "<doctag><page_header><loc_10><loc_5><loc_200><loc_12>Annual report 2024</page_header>"
        "<section_header_level_1><loc_10><loc_20><loc_300><loc_30>1. Scope</section_header_level_1>"
        "<text><loc_10><loc_35><loc_490><loc_60>This report covers snake_case names.</text>"
        "<formula><loc_10><loc_65><loc_490><loc_80>E = mc^2</formula>"
        "<page_footer><loc_240><loc_480><loc_260><loc_490>3</page_footer></doctag>"
    )
    parsed = doctags.parse(reply)
    assert parsed.markdown == "## 1. Scope\n\nThis report covers snake\\_case names.\n\n$$E = mc^2$$"
    assert parsed.dropped == ("page_header", "page_footer")
    assert parsed.meta == {"truncated": False}

    kept = doctags.parse(reply, keep_furniture=True)
    assert kept.markdown == "Annual report 2024\n\n## 1. Scope\n\nThis report covers snake\\_case names.\n\n$$E = mc^2$$\n\n3"
    assert kept.dropped == ()


def test_table_comes_out_as_markdown() -> None:
    reply = "<doctag><otsl><loc_1><loc_2><loc_3><loc_4><ched>Alloy<ched>k<nl><fcel>A356<fcel>151.2<nl></otsl></doctag>"
    assert doctags.parse(reply).markdown == "| Alloy   |     k |\n|---------|-------|\n| A356    | 151.2 |"


def test_full_page_drops_furniture_by_default() -> None:
    parsed = doctags.parse(page())
    md = parsed.markdown
    assert parsed.dropped == ("page_header", "page_footer")
    assert HEADER not in md and FOOTER not in md and "\n217" not in md
    assert md.startswith("## 3. Results and discussion\n\n")
    assert "$$k = \\alpha \\, \\rho \\, c_p$$" in md
    assert "- Specimens with visible porosity were excluded.\n- All values are corrected for thermal expansion." in md
    assert "Figure 4. Micrograph of alloy A356 after six cycles.\n\n<!-- image -->" in md
    assert "* Corresponding author: r.almeida@example.org" in md  # docling's Markdown keeps footnotes
    assert "<loc_" not in md and "<ched>" not in md and "<text>" not in md and "doctag" not in md
    assert len(md.split()) > 250


def test_full_page_table_spans_repeat_in_markdown() -> None:
    lines = [line for line in doctags.parse(page()).markdown.splitlines() if line.startswith("|")]
    assert len(lines) == 8  # header, rule, then the second header row and five data rows
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert cells[0] == ["Alloy", "Remelting cycles", "Fe (wt.%)", "k (W/m·K)", "k (W/m·K)"]  # colspan repeated
    assert cells[2] == ["Alloy", "Remelting cycles", "Fe (wt.%)", "mean", "s.d."]  # rowspan repeated
    assert [row[0] for row in cells[3:]] == ["A356", "A356", "A356", "AlSi10Mg", "AlSi10Mg"]
    assert cells[7] == ["AlSi10Mg", "6", "0.64", "128.7", "2.2"]


def test_full_page_keeps_furniture_when_asked() -> None:
    parsed = doctags.parse(page(), keep_furniture=True)
    assert parsed.dropped == ()
    assert parsed.markdown.startswith(f"{HEADER}\n\n217\n\n## 3. Results")
    assert parsed.markdown.endswith(FOOTER)


def test_stop_tokens_are_ignored() -> None:
    reply = "<doctag><text><loc_1><loc_2><loc_3><loc_4>Done.</text></doctag><|end_of_text|>"
    assert doctags.parse(reply).markdown == "Done."
    assert doctags.parse("<doctag><text>Done.</text><end_of_utterance>").markdown == "Done."


def test_reply_without_closing_doctag_is_not_truncated() -> None:
    # vLLM strips the stop string "</doctag>" from the reply
    parsed = doctags.parse("<doctag><text><loc_1><loc_2><loc_3><loc_4>Done.</text>")
    assert parsed.markdown == "Done."
    assert parsed.meta == {"truncated": False}


def test_truncated_reply_keeps_the_cut_element() -> None:
    parsed = doctags.parse((FIXTURES / "truncated.dt").read_text(encoding="utf-8"))
    assert parsed.meta == {"truncated": True}
    lines = parsed.markdown.splitlines()
    assert lines[0] == "## 3. Results and discussion"
    assert [c.strip() for c in lines[-1].strip("|").split("|")] == ["A356", "3", "14"]


def test_truncated_text_is_closed() -> None:
    parsed = doctags.parse("<doctag><text><loc_1><loc_2><loc_3><loc_4>Hello</text><text><loc_1><loc_2><loc_3><loc_4>unfinished sen")
    assert parsed.markdown == "Hello\n\nunfinished sen"
    assert parsed.meta == {"truncated": True}


def test_cut_after_an_empty_header_cell_falls_back_to_docling_behaviour() -> None:
    # docling-core's OTSL reader fails on a table ending in "<ched>"; the reply as it came drops the cut table
    reply = "<doctag><text><loc_1><loc_2><loc_3><loc_4>Before.</text><otsl><loc_1><loc_2><loc_3><loc_4><ched>Alloy<ched>"
    parsed = doctags.parse(reply)
    assert parsed.markdown == "Before."
    assert parsed.meta == {"truncated": True}


@pytest.mark.parametrize("reply", ["<doctag><otsl><fcel>a<fcel></otsl></doctag>", "<doctag><otsl><ched></otsl></doctag>"])
def test_tables_docling_core_cannot_load_are_a_format_error(reply: str) -> None:
    with pytest.raises(ReplyFormatError) as err:
        doctags.parse(reply)
    assert err.value.reason == "DocTags not loadable"


def test_close_truncated() -> None:
    assert doctags.close_truncated("<doctag><text>a</text>") == ("<doctag><text>a</text>", False)
    assert doctags.close_truncated("<doctag><text>a</text><te") == ("<doctag><text>a</text>", True)
    assert doctags.close_truncated("<picture><loc_1><caption>Fig") == ("<picture><loc_1><caption>Fig</caption></picture>", True)


@pytest.mark.parametrize("reply", ["", "   ", "Just some prose.", "<p>html</p>"])
def test_no_doctags_is_a_format_error(reply: str) -> None:
    with pytest.raises(ReplyFormatError) as err:
        doctags.parse(reply)
    assert err.value.reason == "no DocTags"


def test_markdown_reply_is_a_format_error() -> None:
    with pytest.raises(ReplyFormatError):
        doctags.parse((FIXTURES / "markdown_reply.txt").read_text(encoding="utf-8"))


def test_empty_doctags_is_an_empty_page() -> None:
    parsed = doctags.parse("<doctag></doctag>")
    assert parsed.markdown == ""
    assert parsed.dropped == ()


def test_importing_the_parser_does_not_import_docling_core() -> None:
    code = "import sys, tracr.adapters.parsers.doctags; print('docling_core' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
