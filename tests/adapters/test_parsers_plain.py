"""Generic chat replies: stripped, one enclosing Markdown fence removed, nothing else touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracr.adapters.parsers import plain

FIXTURES = Path(__file__).parent / "fixtures" / "plain"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("  # Title\n\nBody.  \n", "# Title\n\nBody."),
        ("```markdown\n# Title\n\nBody.\n```", "# Title\n\nBody."),
        ("```md\nBody.\n```\n", "Body."),
        ("```\nBody.\n```", "Body."),
        ("```Markdown  \n\n Body.\n\n```  ", "Body."),
        ("```markdown\nText\n\n```python\nprint(1)\n```\n\nMore\n```", "Text\n\n```python\nprint(1)\n```\n\nMore"),
    ],
)
def test_strips_and_unwraps_one_enclosing_fence(reply: str, expected: str) -> None:
    assert plain.parse(reply).markdown == expected


@pytest.mark.parametrize(
    "reply",
    [
        "```python\nprint(1)\n```",  # a code block, not a Markdown wrapper
        "```\na\n```\n\nb\n\n```\nc\n```",  # two blocks with text between
        "```markdown\nunclosed",
        "Text\n```\ncode\n```",
        "```markdown\nText\n```python\nunclosed nested\n```",  # the bare fence closes the nested block, not the outer one
    ],
)
def test_leaves_other_fences_alone(reply: str) -> None:
    assert plain.parse(reply).markdown == reply.strip()


def test_empty_reply_is_an_empty_page() -> None:
    parsed = plain.parse("   \n")
    assert (parsed.markdown, dict(parsed.meta), parsed.dropped) == ("", {}, ())


def test_gpt_fenced_page_keeps_nested_code_and_table() -> None:
    parsed = plain.parse((FIXTURES / "gpt_fenced.md").read_text(encoding="utf-8"))
    assert parsed.markdown.startswith("# 4. Results and Discussion\n\nDischarge at the four gauging stations")
    assert parsed.markdown.endswith("presented here.")
    assert "```markdown" not in parsed.markdown
    assert "```python\nprint('rating curve')\n```" in parsed.markdown
    assert "<td>D (Outlet)</td><td>1,364</td>" in parsed.markdown


def test_unfenced_page_is_only_stripped() -> None:
    reply = (FIXTURES / "qwen_page.md").read_text(encoding="utf-8")
    assert plain.parse(reply, keep_furniture=True).markdown == reply.strip()
    assert plain.unwrap_fence(reply) == reply.strip()
