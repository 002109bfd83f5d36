"""Every chat family end to end: the job flow asks the stub the family's way, and reads its answer.

The stub serves the family's real model id, answers in the family's documented format
and keeps each request as it arrived (images as ``<image WxH>``), so each test checks
what the endpoint received (system message, part order, prompt, image size, sampling
extras), the page tracr wrote, the raw reply kept beside it, and the run's record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.adapters.family_jobs import KEY_ENV, job_config, run_job, stub_requests
from tests.conftest import TEST_API_KEY, write_config
from tracr.adapters.registry import adapter_by_name
from tracr.outputs.export import COLUMNS, page_rows
from tracr.outputs.files import read_json
from tracr.outputs.journal import read_page_journal
from tracr.outputs.layout import OutputLayout

pytestmark = pytest.mark.usefixtures("prefect_server")

A4 = (595, 842)  # points

OLMOCR_REPLY = (
    "---\nprimary_language: en\nis_rotation_valid: True\nrotation_correction: 0\nis_table: False\nis_diagram: False\n---\n"
    "Quarterly report {key}\n\nRevenue grew by 12% in the third quarter."
)
OLMOCR_V1_REPLY = json.dumps(
    {
        "primary_language": "en",
        "is_rotation_valid": True,
        "rotation_correction": 0,
        "is_table": False,
        "is_diagram": False,
        "natural_text": "Quarterly report {key}\n\nRevenue grew by 12% in the third quarter.",
    }
)
DOTS_REPLY = json.dumps(
    [
        {"bbox": [80, 40, 500, 70], "category": "Page-header", "text": "ACME Corp — internal"},
        {"bbox": [80, 100, 500, 140], "category": "Title", "text": "# Quarterly report {key}"},
        {"bbox": [80, 160, 500, 260], "category": "Text", "text": "Revenue grew by 12% in the third quarter."},
        {"bbox": [80, 800, 500, 830], "category": "Page-footer", "text": "Page 3 of 9"},
    ]
)
DEEPSEEK_REPLY = (
    "<|ref|>title<|/ref|><|det|>[[80, 40, 900, 90]]<|/det|>\n# Quarterly report {key}\n\n"
    "<|ref|>text<|/ref|><|det|>[[80, 120, 900, 300]]<|/det|>\nRevenue grew by 12% in the third quarter.\n\n\n\n"
)
NANONETS_REPLY = (
    "# Quarterly report {key}\n\nRevenue grew by 12% in the third quarter.\n\n"
    "<watermark>CONFIDENTIAL</watermark>\n\n<page_number>3</page_number>"
)
CHANDRA_REPLY = (
    '<div data-bbox="10 10 1000 60" data-label="Page-Header"><p>ACME Corp — internal</p></div>'
    '<div data-bbox="10 80 1000 140" data-label="Section-Header"><h1>Quarterly report {key}</h1></div>'
    '<div data-bbox="10 150 1000 400" data-label="Text"><p>Revenue grew by 12% in the third quarter.</p></div>'
    '<div data-bbox="10 980 1000 1020" data-label="Page-Footer"><p>Page 3 of 9</p></div>'
)
DOCTAGS_REPLY = (
    "<doctag><page_header><loc_30><loc_10><loc_470><loc_20>ACME Corp — internal</page_header>"
    "<section_header_level_1><loc_30><loc_40><loc_470><loc_60>Quarterly report {key}</section_header_level_1>"
    "<text><loc_30><loc_70><loc_470><loc_120>Revenue grew by 12% in the third quarter.</text>"
    "<page_footer><loc_30><loc_480><loc_470><loc_495>Page 3 of 9</page_footer></doctag>"
)
PLAIN_REPLY = "```markdown\n# Quarterly report {key}\n\nRevenue grew by 12% in the third quarter.\n```"
PADDLE_REPLY = "Quarterly report {key}\nRevenue grew by 12% in the third quarter.\nA formula \\(x^2\\) aside."

# family: (model id, reply, image size for an A4 page (PyMuPDF rounds outwards), words the page must not hold)
CASES: dict[str, tuple[str, str, tuple[int, int], tuple[str, ...]]] = {
    "olmocr-2": ("allenai/olmOCR-2-7B-1025-FP8", OLMOCR_REPLY, (911, 1288), ("primary_language", "---")),
    "olmocr-0825": ("allenai/olmOCR-7B-0825-FP8", OLMOCR_REPLY, (911, 1288), ("is_rotation_valid",)),
    "olmocr-v1": ("allenai/olmOCR-7B-0225-preview", OLMOCR_V1_REPLY, (724, 1024), ("natural_text", "primary_language")),
    "dots.ocr": ("rednote-hilab/dots.ocr", DOTS_REPLY, (1653, 2339), ("ACME", "Page 3 of 9", '"bbox"')),
    "deepseek-ocr": ("deepseek-ai/DeepSeek-OCR", DEEPSEEK_REPLY, (1190, 1684), ("<|ref|>", "<|det|>")),
    "deepseek-ocr-2": ("deepseek-ai/DeepSeek-OCR-2", DEEPSEEK_REPLY, (1190, 1684), ("<|ref|>", "<|det|>")),
    "nanonets-ocr2": ("nanonets/Nanonets-OCR2-3B", NANONETS_REPLY, (1280, 1812), ("CONFIDENTIAL", "<page_number>")),
    "lightonocr": ("lightonai/LightOnOCR-2-1B", PLAIN_REPLY, (1089, 1540), ("```",)),
    "chandra": ("datalab-to/chandra", CHANDRA_REPLY, (1587, 2246), ("ACME", "Page 3 of 9", "data-bbox")),
    "granite-docling": ("ibm-granite/granite-docling-258M", DOCTAGS_REPLY, (1190, 1684), ("ACME", "<loc_", "Page 3 of 9")),
    "smoldocling": ("docling-project/SmolDocling-256M-preview", DOCTAGS_REPLY, (1190, 1684), ("ACME", "<doctag>")),
    "paddleocr-vl": ("PaddlePaddle/PaddleOCR-VL", PADDLE_REPLY, (843, 1192), ("\\(",)),
    "qwen-vl": ("Qwen/Qwen2.5-VL-7B-Instruct", PLAIN_REPLY, (724, 1024), ("```",)),
    "gpt": ("gpt-4.1-mini", PLAIN_REPLY, (1448, 2048), ("```",)),
    "gemini": ("gemini-2.5-flash", PLAIN_REPLY, (1448, 2048), ("```",)),
    "claude": ("claude-sonnet-4-5", PLAIN_REPLY, (1448, 2048), ("```",)),
}


def _parts(request: dict[str, Any]) -> tuple[str | None, list[str], str, str]:
    """System text, part kinds in order, the text part and the image placeholder."""
    messages = request["messages"]
    system = messages[0]["content"] if messages[0]["role"] == "system" else None
    content = messages[-1]["content"]
    kinds = [part["type"] for part in content]
    text = next((part["text"] for part in content if part["type"] == "text"), "")
    image = next(part["image_url"]["url"] for part in content if part["type"] == "image_url")
    return system, kinds, text, image


@pytest.mark.parametrize("family", list(CASES))
async def test_family_is_asked_its_way_and_read_its_way(family, tmp_path, stub_server, pdf_factory, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    model, reply, size, debris = CASES[family]
    adapter = adapter_by_name(family)
    stub = stub_server(model=model, replies=[reply], capture=True)
    pdf_factory("report.pdf", 1, width=A4[0], height=A4[1])
    config = write_config(tmp_path / "job.yaml", job_config("families", str(tmp_path / "inputs"), stub.base_url, model))
    outputs = tmp_path / "out"

    state = await run_job(config, outputs)
    assert state.is_completed(), state.message

    (request,) = stub_requests(stub.base_url)
    system, kinds, text, image = _parts(request)
    assert system == adapter.system
    expected_kinds = {"text_first": ["text", "image_url"], "image_first": ["image_url", "text"], "image_only": ["image_url"]}
    assert kinds == expected_kinds[adapter.order.value]
    if adapter.order.value != "image_only":
        expected_text = adapter.prefix + adapter.prompt
        if adapter.fills_image_size:
            expected_text = expected_text.replace("{width}", str(size[0])).replace("{height}", str(size[1]))
        if "{anchor_text}" in expected_text:  # olmOCR v1: the page's own text layer, in olmOCR's anchor format
            head, tail = expected_text.split("{anchor_text}")
            assert text.startswith(head) and text.endswith(tail), text
            anchor = text[len(head) : len(text) - len(tail)]
            assert anchor.startswith(f"Page dimensions: {A4[0]:.1f}x{A4[1]:.1f}\n[") and "]page 1" in anchor, anchor
        else:
            assert text == expected_text
    assert image == f"<image {size[0]}x{size[1]}>"
    sampling = adapter.sampling
    assert request["max_tokens"] == sampling.max_tokens and request["temperature"] == sampling.temperature
    assert request.get("top_p") == sampling.top_p
    assert request.get("stop", []) == list(sampling.stop)
    for key, value in sampling.extra_body.items():  # vLLM's extras arrive as top-level fields of the body
        assert request[key] == value

    slug = model.replace("/", "_") if "/" in model else model
    run_dirs = list((outputs / "families").glob("*/run-1"))
    assert len(run_dirs) == 1, slug
    run_dir = run_dirs[0]
    page = (run_dir / "report" / "1.md").read_text()
    assert "Quarterly report" in page and "Revenue grew by 12% in the third quarter." in page
    for word in debris:
        assert word not in page, (word, page)
    raw = run_dir / "report" / "1.reply.txt"
    assert raw.is_file() and "Quarterly report" in raw.read_text()

    settings = read_json(run_dir / "run_metadata.json")["settings"]["adapter"]
    assert settings["name"] == family and settings["digest"] == adapter.digest(False) and settings["keep_furniture"] is False
    (record,) = read_page_journal(run_dir / "report" / "pages.jsonl")
    assert record.status == "done"
    assert sorted(record.dropped or []) == sorted(set(record.dropped or [])) and set(record.dropped or []) <= set(adapter.furniture)


async def test_keep_furniture_keeps_headers_and_is_recorded(tmp_path, stub_server, pdf_factory, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    stub = stub_server(model="rednote-hilab/dots.ocr", replies=[DOTS_REPLY])
    pdf_factory("report.pdf", 1)
    config = write_config(
        tmp_path / "job.yaml",
        job_config("families", str(tmp_path / "inputs"), stub.base_url, "rednote-hilab/dots.ocr", keep_furniture=True),
    )
    state = await run_job(config, tmp_path / "out")
    assert state.is_completed(), state.message
    (run_dir,) = (tmp_path / "out" / "families").glob("*/run-1")
    page = (run_dir / "report" / "1.md").read_text()
    assert "ACME Corp" in page and "Page 3 of 9" in page
    adapter = read_json(run_dir / "run_metadata.json")["settings"]["adapter"]
    assert adapter["keep_furniture"] is True and adapter["digest"] == adapter_by_name("dots.ocr").digest(True)
    names = [name for name, _ in COLUMNS]
    (row,) = (dict(zip(names, r, strict=True)) for r in page_rows(OutputLayout(tmp_path / "out"), "families"))
    assert (row["adapter"], row["adapter_digest"], row["dropped"]) == ("dots.ocr", adapter["digest"], None)
    assert row["reply_path"] and '"category": "Page-header"' in Path(row["reply_path"]).read_text()


async def test_unparseable_reply_fails_the_page_with_its_class_and_keeps_the_raw(tmp_path, stub_server, pdf_factory, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    garbage = "I cannot read this page, sorry."
    stub = stub_server(model="allenai/olmOCR-2-7B-1025-FP8", replies=[garbage])
    pdf_factory("report.pdf", 1)
    config = write_config(
        tmp_path / "job.yaml", job_config("families", str(tmp_path / "inputs"), stub.base_url, "allenai/olmOCR-2-7B-1025-FP8")
    )
    await run_job(config, tmp_path / "out")
    (run_dir,) = (tmp_path / "out" / "families").glob("*/run-1")
    (record,) = read_page_journal(run_dir / "report" / "pages.jsonl")
    assert record.status == "failed" and record.error_class == "unparseable_reply"
    assert record.attempts == 8  # olmOCR's own pipeline tries eight times with rising temperature
    assert not (run_dir / "report" / "1.md").exists()
    assert (run_dir / "report" / "1.reply.txt").read_text() == garbage


async def test_olmocr_retries_hotter_then_rerenders_a_rotated_page(tmp_path, stub_server, pdf_factory, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    rotated = OLMOCR_REPLY.replace("is_rotation_valid: True\nrotation_correction: 0", "is_rotation_valid: False\nrotation_correction: 90")
    # attempt 1: no front matter; attempt 2: valid but "turn me 90"; the re-rendered (new) image then gets the first reply again
    stub = stub_server(model="allenai/olmOCR-2-7B-1025-FP8", replies=["no front matter here", rotated], capture=True)
    pdf_factory("report.pdf", 1, width=A4[0], height=A4[1])
    config = write_config(
        tmp_path / "job.yaml", job_config("families", str(tmp_path / "inputs"), stub.base_url, "allenai/olmOCR-2-7B-1025-FP8")
    )
    state = await run_job(config, tmp_path / "out")
    assert state.is_completed(), state.message
    requests = stub_requests(stub.base_url)
    temperatures = [r["temperature"] for r in requests]
    images = [_parts(r)[3] for r in requests]
    assert temperatures[:3] == [0.1, 0.1, 0.2]
    assert images[0] == images[1] == "<image 911x1288>" and images[2] == "<image 1288x911>"  # turned a quarter
    (run_dir,) = (tmp_path / "out" / "families").glob("*/run-1")
    (record,) = read_page_journal(run_dir / "report" / "pages.jsonl")
    assert record.status == "done" and record.attempts == len(requests)
