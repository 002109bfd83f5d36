"""Mistral OCR ``/v1/ocr`` responses → Markdown, and the request body (tracr/adapters/parsers/mistral_ocr.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracr.adapters.parsers import mistral_ocr
from tracr.adapters.replies import ReplyFormatError

FIXTURES = Path(__file__).parent / "fixtures" / "mistral_ocr"
HEADER = "Journal of Materials Recycling, Vol. 14 (2024) 211–229 217"
FOOTER = "© 2024 The Authors. Published under a CC BY 4.0 licence."


def read(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def test_page_markdown_unchanged_but_images() -> None:
    body = {
        "pages": [
            {
                "index": 0,
                "markdown": "# Title\n\n![img-0.jpeg](img-0.jpeg)\n\nText with a [link](https://x.org).",
                "images": [{"id": "img-0.jpeg"}],
            }
        ]
    }
    parsed = mistral_ocr.parse_response(body)
    assert parsed.markdown == "# Title\n\n![image](image)\n\nText with a [link](https://x.org)."
    assert parsed.meta == {"page_index": 0, "images": 1, "tables": 0}
    assert parsed.dropped == ()


def test_data_url_images_replaced() -> None:
    body = {"pages": [{"index": 0, "markdown": "a ![img-0.png](data:image/png;base64,iVBORw0KGgo=) b", "images": []}]}
    assert mistral_ocr.parse_response(body).markdown == "a ![image](image) b"


def test_full_response_drops_extracted_header_and_footer() -> None:
    parsed = mistral_ocr.parse_response(read("response.json"), page_index=1)
    md = parsed.markdown
    assert parsed.dropped == ("page_header", "page_footer")
    assert parsed.meta == {"page_index": 1, "images": 1, "tables": 0}
    assert HEADER not in md and FOOTER not in md
    assert md.startswith("# 3. Results and discussion\n\nThe thermal conductivity $k$")
    assert "| A356 | 0 | 0.09 | 151.2 | 1.1 |" in md
    assert "$$\nk=\\alpha \\rho c_{p}\n$$" in md
    assert "\n\n![image](image)\n\nFigure 4." in md
    assert "img-0.jpeg" not in md and "base64" not in md
    assert md.endswith("* Corresponding author: r.almeida@example.org")
    assert len(md.split()) > 250


def test_full_response_keeps_header_and_footer_when_asked() -> None:
    parsed = mistral_ocr.parse_response(read("response.json"), page_index=1, keep_furniture=True)
    assert parsed.dropped == ()
    assert parsed.markdown.startswith(f"{HEADER}\n\n# 3. Results and discussion")
    assert parsed.markdown.endswith(f"r.almeida@example.org\n\n{FOOTER}")


def test_page_is_chosen_by_index() -> None:
    body = json.loads(read("response.json"))
    body["pages"].reverse()
    assert (
        mistral_ocr.parse_response(body, page_index=0).markdown
        == "# Recycled aluminium alloys for heat sinks\n\nR. Almeida, K. Osei and M. Lindqvist"
    )


def test_pages_without_index_are_taken_by_position() -> None:
    body = {"pages": [{"markdown": "first"}, {"markdown": "second"}]}
    assert mistral_ocr.parse_response(body, page_index=1).markdown == "second"


def test_legacy_response_keeps_furniture_in_the_body() -> None:
    parsed = mistral_ocr.parse_response(read("response_legacy.json"))
    assert parsed.dropped == ()  # mistral-ocr-2503 returns headers and footers inside the Markdown
    assert parsed.markdown.startswith("Journal of Materials Recycling, Vol. 14 (2024) 211–229\n\n# 3. Results")
    assert parsed.markdown.endswith(f"{FOOTER}\n\n217")
    assert "base64" not in parsed.markdown and "![image](image)" in parsed.markdown


def test_separate_tables_put_back() -> None:
    parsed = mistral_ocr.parse_response(read("response_html_tables.json"))
    assert parsed.markdown == (
        "Results are summarised below.\n\n"
        "<table><tr><th>Alloy</th><th>k</th></tr><tr><td>A356</td><td>151.2</td></tr></table>\n\n"
        "See also ![image](image)."
    )
    assert parsed.meta == {"page_index": 0, "images": 1, "tables": 1}


def test_table_content_with_backslashes_inserted_verbatim() -> None:
    body = {
        "pages": [
            {
                "index": 0,
                "markdown": "[tbl-0.md](tbl-0.md)",
                "tables": [{"id": "tbl-0.md", "content": "| $\\alpha$ \\1 |", "format": "markdown"}],
            }
        ]
    }
    assert mistral_ocr.parse_response(body).markdown == "| $\\alpha$ \\1 |"


@pytest.mark.parametrize(
    ("fixture", "page_index", "reason"),
    [
        ("truncated.json", 0, "not JSON"),
        ("error.json", 0, "pages missing"),
        ("response.json", 2, "page missing"),
        ("response_legacy.json", 1, "page missing"),
    ],
)
def test_malformed_responses(fixture: str, page_index: int, reason: str) -> None:
    with pytest.raises(ReplyFormatError) as err:
        mistral_ocr.parse_response(read(fixture), page_index=page_index)
    assert err.value.reason == reason


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("[]", "not a JSON object"),
        ({"pages": "none"}, "pages missing"),
        ({"pages": [{"index": 0}]}, "page markdown missing"),
        ({"pages": []}, "page missing"),
    ],
)
def test_malformed_bodies(body: object, reason: str) -> None:
    with pytest.raises(ReplyFormatError) as err:
        mistral_ocr.parse_response(body)  # type: ignore[arg-type]
    assert err.value.reason == reason


def test_request_body_for_a_document() -> None:
    assert mistral_ocr.request_body("mistral-ocr-2512", "https://files.example/p.pdf?sig=1", include_header_footer=True) == {
        "model": "mistral-ocr-2512",
        "document": {"type": "document_url", "document_url": "https://files.example/p.pdf?sig=1"},
        "include_image_base64": False,
        "extract_header": True,
        "extract_footer": True,
    }


@pytest.mark.parametrize(
    "url", ["data:image/png;base64,iVBORw0KGgo=", "https://files.example/page-3.PNG?sig=1", "https://x.example/a.jpeg"]
)
def test_request_body_for_an_image(url: str) -> None:
    assert mistral_ocr.request_body("mistral-ocr-2503", url, include_header_footer=False) == {
        "model": "mistral-ocr-2503",
        "document": {"type": "image_url", "image_url": url},
        "include_image_base64": False,
    }
