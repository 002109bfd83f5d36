"""The OCR client reads streamed completions as they come off the wire, against a real HTTP/1.1 server on loopback.

The server is a few lines of asyncio speaking HTTP/1.1 with keep-alive, so each
test controls the exact bytes (chunk boundaries, comments, error events, content
types) and counts the connections the client opened.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from tasks.ocr.request import OcrClient
from tracr.errors import ErrorClass
from tracr.run.retry import RetryPolicy

Body = Callable[[int], list[bytes]]  # request number -> the body's pieces, each written (and flushed) on its own


def _event(payload: dict) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _chunk(content: str | None = None, finish: str | None = None) -> dict:
    delta = {"content": content} if content is not None else {}
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def good_stream(_: int) -> list[bytes]:
    usage = {"object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 3}}
    return [
        _event({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant"}}]}),
        b": keep-alive comment\n\n",
        _event(_chunk("# Title"))[:9],  # one event split across two writes, mid-JSON
        _event(_chunk("# Title"))[9:],
        _event(_chunk("\n\nbody")) + _event(_chunk(finish="stop")),  # two events in one write
        _event(usage),
        b"data: [DONE]\n\n",
    ]


class _Server:
    """HTTP/1.1 with keep-alive: every POST answers ``body(n)`` as a chunked response of ``content_type``."""

    def __init__(self, body: Body, content_type: str = "text/event-stream") -> None:
        self.body, self.content_type = body, content_type
        self.connections = 0
        self.requests = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
                await reader.readexactly(length)
                self.requests += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: " + self.content_type.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n")
                for piece in self.body(self.requests):
                    writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    await writer.drain()
                    await asyncio.sleep(0.002)  # separate TCP segments, as a model's tokens arrive
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            server.close()


def _client(base_url: str, in_flight: int = 1, attempts: int = 1) -> OcrClient:
    return OcrClient(
        base_url=base_url,
        api_key="sk-test",
        model="m",
        max_concurrent_requests=in_flight,
        timeout_s=10,
        policy=RetryPolicy(retries=attempts - 1, base_delay_s=0.01, max_delay_s=0.01),
    )


async def _ocr(client: OcrClient) -> object:
    return await client.ocr("data:image/png;base64,AAAA", prompt="OCR", max_tokens=64, temperature=0.0)


async def test_a_stream_split_anywhere_with_comments_gives_text_usage_and_ttft():
    server = _Server(good_stream)
    async with server.running() as url:
        client = _client(url)
        result = await _ocr(client)
        await client.aclose()
    assert result.ok and result.text == "# Title\n\nbody"
    assert (result.input_tokens, result.output_tokens, result.finish_reason) == (11, 3, "stop")
    assert result.ttft_s is not None and 0 < result.ttft_s <= result.latency_s


async def test_pages_reuse_kept_alive_connections():
    server = _Server(good_stream)
    async with server.running() as url:
        client = _client(url, in_flight=2)
        results = await asyncio.gather(*(_ocr(client) for _ in range(12)))
        await client.aclose()
    assert all(r.ok for r in results) and server.requests == 12
    assert server.connections <= 2  # the body after [DONE] is read, so each connection serves the next page


async def test_an_error_event_inside_a_200_stream_fails_the_page_with_the_servers_message():
    def erroring(_: int) -> list[bytes]:
        return [_event(_chunk("partial")), _event({"error": {"message": "<b>model crashed</b> mid-stream"}})]

    server = _Server(erroring)
    async with server.running() as url:
        client = _client(url)
        result = await _ocr(client)
        await client.aclose()
    assert not result.ok and "<b>model crashed</b> mid-stream" in result.error


async def test_a_200_that_is_not_an_event_stream_is_a_malformed_answer_and_is_retried():
    def json_body(_: int) -> list[bytes]:
        return [json.dumps({"choices": [{"message": {"content": "x"}}]}).encode()]

    server = _Server(json_body, content_type="application/json")
    async with server.running() as url:
        client = _client(url, attempts=2)
        result = await _ocr(client)
        await client.aclose()
    assert not result.ok and result.error_class is ErrorClass.MALFORMED and result.attempts == 2
    assert "not an event stream" in result.error and "application/json" in result.error


async def test_chunks_that_are_not_completion_chunks_are_malformed():
    bodies = {1: [b"data: [1, 2, 3]\n\n"], 2: [_event({"choices": ["a string, not a choice"]})], 3: [b"data: {not json\n\n"]}
    server = _Server(lambda n: bodies[n])
    async with server.running() as url:
        client = _client(url)
        results = [await _ocr(client) for _ in bodies]
        await client.aclose()
    assert [r.error_class for r in results] == [ErrorClass.MALFORMED] * 3


async def test_a_stream_cut_after_the_role_chunk_is_incomplete_not_an_empty_page():
    server = _Server(lambda _: [_event({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})])
    async with server.running() as url:
        client = _client(url)
        result = await _ocr(client)
        await client.aclose()
    assert not result.ok and result.error_class is ErrorClass.MALFORMED
    assert "no text and no finish_reason" in result.error
