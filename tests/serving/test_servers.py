"""Real-process tests of tracr's OpenAI-compatible servers (fault stub and RapidOCR).

Every server runs as a subprocess on a free loopback port and is driven with the
real ``openai.AsyncOpenAI`` client, so these tests pin down the exact client-side
exceptions that tracr's retry classifier has to handle.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
from PIL import Image

from tracr.servers import openai_protocol as oai
from tracr.servers.rapidocr_server import reading_order_text
from tracr.testing.openai_stub import FaultRule, StubConfig, pick_fault, reply_text
from tracr.testing.processes import start_server_process, stop_process_group

STUB = "tracr.testing.openai_stub"
OCR = "tracr.servers.rapidocr_server"


# ---------------------------------------------------------------- helpers


def make_png(width: int, height: int = 32, color: str = "white") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "PNG")
    return buf.getvalue()


def make_jpeg(width: int, height: int = 32) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), "gray").save(buf, "JPEG")
    return buf.getvalue()


def messages(image: bytes, mime: str = "image/png", prompt: str = "Transcribe this page.") -> list[dict[str, Any]]:
    url = f"data:{mime};base64,{base64.b64encode(image).decode()}"
    return [
        {
            "role": "user",
            "content": [{"type": "text", "text": prompt}, {"type": "image_url", "image_url": {"url": url}}],
        }
    ]


def sha12(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def client(port: int, api_key: str = "unused", timeout: float = 30.0) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=api_key, max_retries=0, timeout=timeout)


async def complete(c: openai.AsyncOpenAI, image: bytes, model: str = "stub-ocr", stream: bool = False, **kw: Any) -> str:
    """One completion; for streams, also consumes the stream (where drop/malformed surface)."""
    resp = await c.chat.completions.create(model=model, messages=messages(image), stream=stream, **kw)
    if not stream:
        return resp.choices[0].message.content or ""
    parts = []
    async for chunk in resp:
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
    return "".join(parts)


def stats(port: int) -> dict[str, Any]:
    return httpx.get(f"http://127.0.0.1:{port}/_stats").json()


@pytest.fixture
def stub() -> Iterator[Callable[..., int]]:
    """Factory: ``stub(**StubConfig fields) -> port``; stops every stub it started."""
    procs = []

    def start(**config: Any) -> int:
        StubConfig.model_validate(config)  # fail fast on a bad test config
        proc, port = start_server_process([STUB, "--port", "0", "--config", json.dumps(config)], timeout=30)
        procs.append(proc)
        return port

    yield start
    for proc in procs:
        stop_process_group(proc)


@pytest.fixture(scope="module")
def ocr_port() -> Iterator[int]:
    """One RapidOCR server for the module, waited on until /health says the engine is loaded."""
    proc, port = start_server_process([OCR, "--port", "0", "--model-name", "tracr-ocr"], timeout=60)
    try:
        deadline = time.monotonic() + 120
        while httpx.get(f"http://127.0.0.1:{port}/health").status_code != 200:
            assert proc.poll() is None, "rapidocr server died while loading"
            assert time.monotonic() < deadline, "rapidocr engine did not load"
            time.sleep(0.1)
        yield port
    finally:
        stop_process_group(proc)


# ---------------------------------------------------------------- pure functions


def test_parse_chat_request_plain_string_and_parts() -> None:
    img = make_png(10)
    req = oai.parse_chat_request(
        {
            "model": "m",
            "messages": [{"role": "system", "content": "sys"}, *messages(img, prompt="read it")],
            "max_tokens": 5,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )
    assert (req.prompt, req.images, req.max_tokens, req.stream, req.include_usage) == ("read it", [img], 5, True, True)
    plain = oai.parse_chat_request({"model": "m", "messages": [{"role": "user", "content": "hello"}]})
    assert plain.prompt == "hello" and plain.images == []
    with pytest.raises(oai.ProtocolError):
        oai.parse_chat_request(
            {
                "model": "m",
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "https://example.com/x.png"}}],
                    }
                ],
            }
        )


def test_truncate_and_split() -> None:
    assert oai.truncate_tokens("a b, c d", 3) == ("a b,", True)
    assert oai.truncate_tokens("a b", 5) == ("a b", False)
    text = "one two  three\nfour"
    assert "".join(oai.split_for_stream(text, 2)) == text


def test_reading_order_groups_lines_and_blocks() -> None:
    def box(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
        return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]

    results = [
        [box(300, 102, 400, 120), "world", 0.9],  # same line as "hello", slightly lower
        [box(10, 100, 100, 120), "hello", 0.9],
        [box(10, 125, 200, 145), "second line", 0.9],
        [box(10, 200, 200, 220), "new block", 0.9],
    ]
    assert reading_order_text(results) == "hello world\nsecond line\n\nnew block"
    assert reading_order_text(None) == ""


def test_pick_fault_consumes_attempts_in_order() -> None:
    rules = [
        FaultRule(fault="429", times=1),
        FaultRule(fault="500", times=2),
        FaultRule(fault="drop", times=1, image_width=7),
    ]
    assert [r.fault if (r := pick_fault(rules, n, 100)) else None for n in range(1, 6)] == [
        "429",
        "500",
        "500",
        None,
        None,
    ]
    assert [r.fault if (r := pick_fault(rules, n, 7)) else None for n in range(1, 6)] == [
        "429",
        "500",
        "500",
        "drop",
        None,
    ]
    assert pick_fault([FaultRule(fault="500", times=-1)], 1000, 1).fault == "500"


def test_a_fault_rate_picks_a_reproducible_share_of_images() -> None:
    keys = [f"{n:012x}" for n in range(2000)]
    rule = FaultRule(fault="500", rate=0.2, seed=3)
    hit = {k for k in keys if pick_fault([rule], 1, 100, k) is not None}
    assert 0.17 < len(hit) / len(keys) < 0.23
    assert hit == {k for k in keys if pick_fault([rule], 1, 100, k) is not None}  # the same images every time
    other_seed = {k for k in keys if pick_fault([FaultRule(fault="500", rate=0.2, seed=4)], 1, 100, k) is not None}
    assert other_seed != hit
    # a rule an image was not drawn for consumes none of its attempts
    mix = [FaultRule(fault="429", rate=0.5, seed=1), FaultRule(fault="drop", rate=1.0)]
    missed = next(k for k in keys if pick_fault(mix[:1], 1, 100, k) is None)
    assert pick_fault(mix, 1, 100, missed).fault == "drop"


# ---------------------------------------------------------------- stub: happy paths


async def test_stub_models_and_nonstreaming(stub: Callable[..., int]) -> None:
    port = stub(output_tokens=12)
    c = client(port)
    assert [m.id for m in (await c.models.list()).data] == ["stub-ocr"]
    img = make_png(123, 45)
    resp = await c.chat.completions.create(model="stub-ocr", messages=messages(img))
    text = resp.choices[0].message.content
    assert text == reply_text(sha12(img), 123, 45, 12)
    assert text.startswith(f"stub page sha256={sha12(img)} w=123 h=45 ")
    assert len(text.split()) == 12
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage and resp.usage.completion_tokens > 0 and resp.usage.prompt_tokens > 0
    jpg = make_jpeg(77, 33)
    resp = await c.chat.completions.create(model="stub-ocr", messages=messages(jpg, "image/jpeg"))
    assert "w=77 h=33" in resp.choices[0].message.content
    with pytest.raises(openai.NotFoundError):
        await c.chat.completions.create(model="other-model", messages=messages(img))


async def test_stub_streaming_with_usage(stub: Callable[..., int]) -> None:
    port = stub(output_tokens=10, chunk_words=3, ttft_s=0.05, latency_s=0.2)
    c = client(port)
    img = make_png(200)
    t0 = time.monotonic()
    stream = await c.chat.completions.create(model="stub-ocr", messages=messages(img), stream=True, stream_options={"include_usage": True})
    chunks = [ch async for ch in stream]
    assert time.monotonic() - t0 >= 0.2
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == reply_text(sha12(img), 200, 32, 10)
    assert len([ch for ch in chunks if ch.choices and ch.choices[0].delta.content]) == 4  # ceil(10 / 3)
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None and last.usage.completion_tokens == oai.count_tokens(text)
    # without include_usage there is no usage chunk
    stream = await c.chat.completions.create(model="stub-ocr", messages=messages(img), stream=True)
    assert all(ch.usage is None for ch in [ch async for ch in stream])


# ---------------------------------------------------------------- stub: faults


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("429", openai.RateLimitError),
        ("500", openai.InternalServerError),
        ("503", openai.InternalServerError),
        ("400", openai.BadRequestError),
    ],
)
async def test_stub_status_faults(stub: Callable[..., int], fault: str, error: type[Exception], stream: bool) -> None:
    port = stub(rules=[{"fault": fault, "times": -1, "retry_after_s": 3}])
    with pytest.raises(error) as info:
        await complete(client(port), make_png(50), stream=stream)
    assert info.value.status_code == int(fault)
    assert info.value.body["code"] is not None or fault == "500"
    if fault == "429":
        assert info.value.response.headers["retry-after"] == "3"
        assert info.value.response.headers["retry-after-ms"] == "3000"


@pytest.mark.parametrize("stream", [False, True])
async def test_stub_timeout_fault_is_api_timeout(stub: Callable[..., int], stream: bool) -> None:
    port = stub(timeout_sleep_s=30, rules=[{"fault": "timeout", "times": -1}])
    t0 = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await complete(client(port, timeout=0.5), make_png(50), stream=stream)
    assert time.monotonic() - t0 < 5
    # The stub notices the client hung up and stops stalling (so it shuts down promptly).
    deadline = time.monotonic() + 5
    while stats(port)["in_flight"] and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert stats(port)["outcomes"] == {"timeout_client_gone": 1}


async def test_stub_timeout_fault_answers_after_stall(stub: Callable[..., int]) -> None:
    port = stub(timeout_sleep_s=0.3, rules=[{"fault": "timeout", "times": 1}])
    t0 = time.monotonic()
    assert (await complete(client(port), make_png(50))).startswith("stub page")
    assert time.monotonic() - t0 >= 0.3


@pytest.mark.parametrize("stream", [False, True])
async def test_stub_malformed_is_json_decode_error(stub: Callable[..., int], stream: bool) -> None:
    # The openai client does NOT wrap this: a bare json.JSONDecodeError (a ValueError)
    # escapes, from .create() for plain responses and while iterating a stream.
    port = stub(rules=[{"fault": "malformed", "times": 1}])
    c = client(port)
    img = make_png(60)
    with pytest.raises(json.JSONDecodeError):
        await complete(c, img, stream=stream)
    assert (await complete(c, img, stream=stream)).startswith("stub page")


@pytest.mark.parametrize("stream", [False, True])
async def test_stub_drop_is_api_connection_error(stub: Callable[..., int], stream: bool) -> None:
    # A connection cut mid-body surfaces as openai.APIConnectionError (cause: the
    # transport's RemoteProtocolError), for streams too, and is not a timeout.
    port = stub(rules=[{"fault": "drop", "times": 1}])
    c = client(port)
    img = make_png(60)
    with pytest.raises(openai.APIConnectionError) as info:
        await complete(c, img, stream=stream)
    assert not isinstance(info.value, openai.APITimeoutError)
    assert "RemoteProtocolError" in type(info.value.__cause__).__name__
    assert (await complete(c, img, stream=stream)).startswith("stub page")
    assert stats(port)["outcomes"] == {"drop": 1, "ok": 1}


async def test_stub_times_counts_per_distinct_image(stub: Callable[..., int]) -> None:
    port = stub(rules=[{"fault": "500", "times": 2}])
    c = client(port)
    a, b = make_png(40), make_png(41)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            await complete(c, a)
    with pytest.raises(openai.InternalServerError):  # b has its own counter
        await complete(c, b)
    assert (await complete(c, a)).startswith(f"stub page sha256={sha12(a)}")
    with pytest.raises(openai.InternalServerError):
        await complete(c, b)
    assert (await complete(c, b)).startswith(f"stub page sha256={sha12(b)}")
    s = stats(port)
    assert s["attempts_by_image"] == {sha12(a): 3, sha12(b): 3}
    assert s["outcomes"] == {"500": 4, "ok": 2} and s["total_requests"] == 6
    # _reset clears the attempt counters, so the faults come back
    assert httpx.post(f"http://127.0.0.1:{port}/_reset").status_code == 200
    assert stats(port)["total_requests"] == 0
    with pytest.raises(openai.InternalServerError):
        await complete(c, a)


async def test_stub_rules_chain_and_image_width(stub: Callable[..., int]) -> None:
    port = stub(rules=[{"fault": "429", "times": 1}, {"fault": "503", "times": -1, "image_width": 333}])
    c = client(port)
    narrow, wide = make_png(100), make_png(333)
    with pytest.raises(openai.RateLimitError):
        await complete(c, narrow)
    assert (await complete(c, narrow)).startswith("stub page")
    with pytest.raises(openai.RateLimitError):
        await complete(c, wide)
    for _ in range(3):  # the width rule never runs out
        with pytest.raises(openai.InternalServerError):
            await complete(c, wide, stream=True)


async def test_stub_auth(stub: Callable[..., int]) -> None:
    secret = "sk-test-secret-123"
    port = stub(api_key=secret)
    with pytest.raises(openai.AuthenticationError):
        await complete(client(port, api_key="wrong"), make_png(10))
    with pytest.raises(openai.AuthenticationError):
        await client(port, api_key="wrong").models.list()
    assert (await complete(client(port, api_key=secret), make_png(10))).startswith("stub page")
    raw = httpx.get(f"http://127.0.0.1:{port}/_stats").text
    assert secret not in raw and "wrong" not in raw
    assert json.loads(raw)["outcomes"] == {"401": 1, "ok": 1}
    assert httpx.get(f"http://127.0.0.1:{port}/health").json() == {"status": "ok"}


async def test_stub_config_file(tmp_path: Any) -> None:
    path = tmp_path / "stub.json"
    path.write_text(json.dumps({"model": "file-model", "output_tokens": 6}))
    proc, port = start_server_process([STUB, "--port", "0", "--config-file", str(path)], timeout=30)
    try:
        text = await complete(client(port), make_png(5), model="file-model")
        assert len(text.split()) == 6
    finally:
        stop_process_group(proc)


async def test_stub_max_in_flight_under_concurrency(stub: Callable[..., int]) -> None:
    port = stub(latency_s=0.5)
    c = client(port)
    images = [make_png(100 + i) for i in range(16)]
    t0 = time.monotonic()
    texts = await asyncio.gather(*(complete(c, img, stream=i % 2 == 0) for i, img in enumerate(images)))
    elapsed = time.monotonic() - t0
    assert [t.split()[2] for t in texts] == [f"sha256={sha12(img)}" for img in images]
    assert elapsed < 0.5 * 4  # concurrent, not serialised
    s = stats(port)
    assert s["max_in_flight"] == 16 and s["in_flight"] == 0 and s["outcomes"] == {"ok": 16}


async def test_stub_64_concurrent_streams(stub: Callable[..., int]) -> None:
    port = stub(latency_s=0.1)
    c = client(port)
    images = [make_png(10 + i) for i in range(64)]
    kw = {"stream": True, "stream_options": {"include_usage": True}}
    texts = await asyncio.gather(*(complete(c, img, **kw) for img in images * 3))
    assert len(texts) == 192 and all(t.startswith("stub page") for t in texts)
    s = stats(port)
    assert s["outcomes"] == {"ok": 192} and s["max_in_flight"] >= 32


# ---------------------------------------------------------------- RapidOCR server


BODY_LINES = [
    "the quick brown fox jumps over the lazy dog while optical character recognition models",
    "read every line of this paragraph so that tracr can compare them on your own documents",
    "dense body text is where an orientation classifier can wrongly flip a line upside down",
]


@pytest.fixture(scope="module")
def text_page() -> bytes:
    pymupdf = pytest.importorskip("pymupdf")
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), "Hello tracr 2026", fontsize=24)
    page.insert_text((72, 200), "Benchmark OCR models", fontsize=18)
    for k, line in enumerate(BODY_LINES):  # tight 10pt lines: RapidOCR's line classifier flips the middle one
        page.insert_text((72, 260 + 13 * k), line, fontsize=10)
    return page.get_pixmap(dpi=150).tobytes("png")


def _squash(text: str) -> str:
    return "".join(text.lower().split())


async def test_ocr_server_health_and_models(ocr_port: int) -> None:
    assert httpx.get(f"http://127.0.0.1:{ocr_port}/health").json() == {"status": "ok"}
    assert [m.id for m in (await client(ocr_port).models.list()).data] == ["tracr-ocr"]


async def test_ocr_server_nonstreaming(ocr_port: int, text_page: bytes) -> None:
    resp = await client(ocr_port, timeout=120).chat.completions.create(model="tracr-ocr", messages=messages(text_page))
    text = resp.choices[0].message.content or ""
    lines = text.splitlines()
    # RapidOCR often drops spaces, so compare with whitespace removed.
    assert [_squash(ln) for ln in lines if ln] == [_squash(t) for t in ["Hello tracr 2026", "Benchmark OCR models", *BODY_LINES]]
    assert lines[1] == "" and lines[3] == ""  # large vertical gaps -> blank lines between blocks
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage and resp.usage.completion_tokens == oai.count_tokens(text)


async def test_ocr_server_streaming_usage_and_length(ocr_port: int, text_page: bytes) -> None:
    c = client(ocr_port, timeout=120)
    stream = await c.chat.completions.create(
        model="tracr-ocr", messages=messages(text_page), stream=True, stream_options={"include_usage": True}
    )
    chunks = [ch async for ch in stream]
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert "hellotracr2026" in _squash(text)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"
    resp = await c.chat.completions.create(model="tracr-ocr", messages=messages(text_page), max_tokens=2)
    assert resp.choices[0].finish_reason == "length"
    assert oai.count_tokens(resp.choices[0].message.content or "") == 2


async def test_ocr_server_event_loop_stays_responsive(ocr_port: int, text_page: bytes) -> None:
    c = client(ocr_port, timeout=120)
    jobs = [asyncio.create_task(complete(c, text_page, model="tracr-ocr")) for _ in range(2)]
    await asyncio.sleep(0.2)  # both requests are in (one running, one waiting for the engine lock)
    async with httpx.AsyncClient() as h:
        t0 = time.monotonic()
        assert (await h.get(f"http://127.0.0.1:{ocr_port}/health")).status_code == 200
        health_latency = time.monotonic() - t0
    assert not all(j.done() for j in jobs)
    assert health_latency < 0.5
    texts = await asyncio.gather(*jobs)
    assert texts[0] == texts[1]


async def test_ocr_server_errors(ocr_port: int, text_page: bytes) -> None:
    c = client(ocr_port)
    with pytest.raises(openai.NotFoundError) as info:
        await c.chat.completions.create(model="gpt-4o", messages=messages(text_page))
    assert info.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        await c.chat.completions.create(model="tracr-ocr", messages=[{"role": "user", "content": "no image here"}])


# ---------------------------------------------------------------- RapidOCR on dense and very tall pages

WORDS = "tracr reads every line of this page so that models can be compared on dense documents".split()


def _render_for_tracr_ocr(doc: Any, tmp_path: Any) -> bytes:
    """The page as a job renders it for ``provider: tracr-ocr`` (its default render, tracr's renderer)."""
    from tracr.config.models import OcrServerModel
    from tracr.config.render import RenderSettings
    from tracr.documents.pdf import render_page

    path = tmp_path / "page.pdf"
    doc.save(path)
    return render_page(str(path), 1, *OcrServerModel(model="m", mode="local").page_render(RenderSettings()).args())


async def test_ocr_server_reads_a_dense_page_in_strips(ocr_port: int, tmp_path: Any) -> None:
    """Small text on a large page: one RapidOCR pass shrinks it past reading; strips keep its size."""
    pymupdf = pytest.importorskip("pymupdf")
    from tracr.servers.rapidocr_server import OcrEngine

    doc = pymupdf.open()
    page = doc.new_page(width=1200, height=1900)  # a newspaper's size
    lines = [" ".join(WORDS[(k + i) % len(WORDS)] for i in range(9)) for k in range(24)]
    for k, line in enumerate(lines):
        page.insert_text((30 + 390 * (k % 3), 60 + 75 * k), line, fontsize=6.5)
    image = _render_for_tracr_ocr(doc, tmp_path)
    want = _squash("".join(lines))
    resp = await client(ocr_port, timeout=300).chat.completions.create(model="tracr-ocr", messages=messages(image))
    tiled = _squash(resp.choices[0].message.content or "")
    one_pass = _squash(await asyncio.to_thread(OcrEngine(tile=False).read, image))
    assert sum(line in tiled for line in map(_squash, lines)) >= 20  # nearly every line, whole
    assert sum(line in one_pass for line in map(_squash, lines)) <= 4
    assert len(tiled) >= 0.9 * len(want)


async def test_ocr_server_reads_a_very_tall_page(ocr_port: int, tmp_path: Any) -> None:
    """A page 15 times taller than wide: one pass enlarged it many times over and found nothing."""
    pymupdf = pytest.importorskip("pymupdf")
    doc = pymupdf.open()
    page = doc.new_page(width=400, height=6000)
    names = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima".split()
    lines = [f"line {name} of a very tall receipt" for name in names]
    for k, line in enumerate(lines):
        page.insert_text((40, 200 + 480 * k), line, fontsize=12)
    image = _render_for_tracr_ocr(doc, tmp_path)
    resp = await client(ocr_port, timeout=300).chat.completions.create(model="tracr-ocr", messages=messages(image))
    text = resp.choices[0].message.content or ""
    assert [_squash(ln) for ln in text.splitlines() if ln] == [_squash(ln) for ln in lines]  # each once, in order


def test_strips_overlap_and_cover_the_page() -> None:
    from tracr.servers.ocr_tiling import OVERLAP_PX, TILE_PX, strips

    assert strips(900) == [(0, 900)]
    rows = strips(16000)
    assert rows[0][0] == 0 and rows[-1][1] == 16000
    assert all(b - a <= TILE_PX + 1 for a, b in rows)
    assert all(prev[1] - nxt[0] >= OVERLAP_PX - 1 for prev, nxt in zip(rows, rows[1:], strict=False))
