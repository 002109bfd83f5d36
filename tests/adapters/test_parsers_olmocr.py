"""olmOCR front matter (FrontMatterParser + PageResponse rules) and olmOCR v1 JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tracr.adapters.parsers import olmocr
from tracr.adapters.replies import ReplyFormatError

FIXTURES = Path(__file__).parent / "fixtures" / "olmocr"
PAGE_META = {"primary_language": "en", "is_rotation_valid": True, "rotation_correction": 0, "is_table": False, "is_diagram": False}


def _fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def _reply(body: str = "Hello **world**\n", **fields: Any) -> str:
    values: dict[str, Any] = {
        "primary_language": "en",
        "is_rotation_valid": "True",
        "rotation_correction": "0",
        "is_table": "False",
        "is_diagram": "False",
    }
    values.update(fields)
    lines = [f"{name}: {value}" for name, value in values.items() if value is not None]
    return "---\n" + "\n".join(lines) + "\n---\n" + body


def test_small_reply_exact() -> None:
    parsed = olmocr.parse(_reply("\n  Hello **world**\n\n"))
    assert parsed.markdown == "Hello **world**"
    assert dict(parsed.meta) == PAGE_META
    assert parsed.dropped == ()


def test_full_page_body_and_fields() -> None:
    parsed = olmocr.parse(_fixture("full_page.md"))
    assert dict(parsed.meta) == PAGE_META
    assert parsed.markdown.startswith("## 4. Results and Discussion\n\nDischarge at the four")
    assert "primary_language" not in parsed.markdown
    assert "---" not in parsed.markdown
    assert "<tr><td>D (Outlet)</td><td>1,364</td><td>41.2</td><td>163.7</td></tr></tbody></table>" in parsed.markdown
    assert "\\[\nQ = \\frac{1}{n} A R^{2/3} S^{1/2}\n\\]" in parsed.markdown
    assert parsed.markdown.endswith("rating curves presented here.")
    assert olmocr.parse(_fixture("full_page.md"), keep_furniture=True) == parsed


def test_rotation_reply() -> None:
    parsed = olmocr.parse(_fixture("rotated.md"))
    assert parsed.meta["is_rotation_valid"] is False
    assert parsed.meta["rotation_correction"] == 90
    assert parsed.markdown == "Rg dlrow olleh siht"


def test_blank_page_is_empty_markdown() -> None:
    parsed = olmocr.parse(_fixture("blank_page.md"))
    assert parsed.markdown == ""
    assert parsed.meta["primary_language"] is None


@pytest.mark.parametrize(
    ("fields", "key", "value"),
    [
        ({"is_table": "TRUE"}, "is_table", True),
        ({"is_table": "'yes'"}, "is_table", False),  # a string is true only when it says "true"
        ({"is_diagram": "true"}, "is_diagram", True),
        ({"rotation_correction": "'180'"}, "rotation_correction", 180),
        ({"primary_language": "no"}, "primary_language", None),  # YAML reads Norwegian "no" as False; olmOCR makes it None
        ({"primary_language": "''"}, "primary_language", None),
        ({"primary_language": "null"}, "primary_language", None),
    ],
)
def test_front_matter_conversions(fields: dict[str, str], key: str, value: Any) -> None:
    assert olmocr.parse(_reply(**fields)).meta[key] == value


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (_fixture("no_front_matter.md"), "front matter missing"),
        ("\n" + _reply(), "front matter missing"),
        (_fixture("truncated.md"), "front matter not closed"),
        ("---\nprimary_language: [en\n---\nBody", "front matter is not valid YAML"),
        ("---\n- en\n- fr\n---\nBody", "front matter is not a mapping"),
        (_reply(is_diagram=None), "front matter field missing: is_diagram"),
        (_reply(page_type="letter"), "front matter has unexpected fields: page_type"),
        (_reply(rotation_correction="45"), "rotation_correction not in 0/90/180/270"),
        (_reply(rotation_correction="ninety"), "rotation_correction is not an integer"),
        (_reply(rotation_correction="90.0"), "rotation_correction is not an integer"),
        (_reply(is_table="1"), "is_table is not a boolean"),
        (_reply(primary_language="42"), "primary_language is not a string"),
    ],
)
def test_front_matter_errors(reply: str, reason: str) -> None:
    with pytest.raises(ReplyFormatError) as caught:
        olmocr.parse(reply)
    assert caught.value.reason == reason


def test_v1_json_page() -> None:
    parsed = olmocr.parse_v1_json(_fixture("v1_page.json"))
    assert dict(parsed.meta) == PAGE_META
    assert parsed.markdown == olmocr.parse(_fixture("full_page.md")).markdown
    assert '"natural_text"' not in parsed.markdown


def test_v1_json_null_text_is_an_empty_page() -> None:
    reply = json.dumps({**PAGE_META, "primary_language": None, "natural_text": None})
    parsed = olmocr.parse_v1_json(reply)
    assert parsed.markdown == ""
    assert parsed.meta["primary_language"] is None


def test_v1_json_keeps_text_as_written() -> None:
    assert olmocr.parse_v1_json(json.dumps({**PAGE_META, "natural_text": "Line\n"})).markdown == "Line\n"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ('{"natural_text": "cut', "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ({k: v for k, v in PAGE_META.items() if k != "is_table"} | {"natural_text": "x"}, "JSON field missing: is_table"),
        (PAGE_META, "JSON field missing: natural_text"),
        (PAGE_META | {"natural_text": "x", "page": 1}, "JSON has unexpected fields: page"),
        (PAGE_META | {"natural_text": "x", "rotation_correction": "90"}, "rotation_correction is not an integer"),
        (PAGE_META | {"natural_text": "x", "rotation_correction": 30}, "rotation_correction not in 0/90/180/270"),
        (PAGE_META | {"natural_text": "x", "is_table": "false"}, "is_table is not a boolean"),
        (PAGE_META | {"natural_text": 5}, "natural_text is not a string"),
    ],
)
def test_v1_json_errors(data: Any, reason: str) -> None:
    reply = data if isinstance(data, str) else json.dumps(data)
    with pytest.raises(ReplyFormatError) as caught:
        olmocr.parse_v1_json(reply)
    assert caught.value.reason == reason
