"""Shared pieces of the OpenAI chat-completions wire protocol.

tracr talks to every model (hosted API, vLLM, the built-in RapidOCR server, the
test stub) through the OpenAI client, so the servers tracr ships must speak the
exact same JSON and SSE shapes.  Keeping those shapes here means the built-in
OCR server and the test stub cannot drift apart from each other.

Token counts are an approximation: a "token" is a run of word characters or a
single punctuation character (``re.findall(r"\\w+|[^\\w\\s]")``).  That is close
enough for usage accounting and ``max_tokens`` truncation of OCR text.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.responses import Response

from tracr.errors import ErrorClass, TracrError

try:  # orjson is much faster; it is present with prefect but not required.
    import orjson

    def dumps(obj: Any) -> bytes:
        """Serialise ``obj`` to compact JSON bytes."""
        return orjson.dumps(obj)

except ImportError:  # pragma: no cover - depends on the environment

    def dumps(obj: Any) -> bytes:
        """Serialise ``obj`` to compact JSON bytes."""
        return json.dumps(obj, separators=(",", ":")).encode()


READY_PREFIX = "TRACR_SERVER_READY"
SSE_DONE = b"data: [DONE]\n\n"
_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_DATA_URL_RE = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?);base64,", re.I)


class ProtocolError(TracrError):
    """A client error that must be reported as an OpenAI-shaped error body."""

    default_class = ErrorClass.BAD_REQUEST

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.code = code

    def response(self, headers: dict[str, str] | None = None) -> Response:
        """Render this error as the HTTP response the OpenAI client expects."""
        return error_response(self.status, self.message, self.type, self.code, headers)


@dataclass
class ChatRequest:
    """The parts of a chat-completions request an OCR server cares about."""

    model: str
    prompt: str
    images: list[bytes] = field(default_factory=list)
    max_tokens: int | None = None
    temperature: float | None = None
    stream: bool = False
    include_usage: bool = False

    @property
    def prompt_tokens(self) -> int:
        """Approximate prompt size: text tokens plus a flat cost per image."""
        return count_tokens(self.prompt) + 1 + 85 * len(self.images)


def count_tokens(text: str) -> int:
    """Approximate token count (see the module docstring)."""
    return len(_TOKEN_RE.findall(text))


def truncate_tokens(text: str, max_tokens: int | None) -> tuple[str, bool]:
    """Cut ``text`` after ``max_tokens`` approximate tokens; report whether it was cut."""
    if max_tokens is None or max_tokens <= 0:
        return text, False
    for i, m in enumerate(_TOKEN_RE.finditer(text)):
        if i == max_tokens:
            return text[: m.start()].rstrip(), True
    return text, False


def decode_data_url(url: str) -> bytes:
    """Return the bytes of a base64 ``data:`` URL; servers here never fetch remote URLs."""
    m = _DATA_URL_RE.match(url)
    if not m:
        raise ProtocolError(400, "image_url must be a base64 data: URL (remote URLs are not fetched)")
    mime = (m.group("mime") or "").lower()
    if mime and not mime.startswith("image/"):
        raise ProtocolError(400, f"unsupported data URL media type {mime!r}")
    try:
        return base64.b64decode(url[m.end() :], validate=False)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError(400, f"invalid base64 image data: {exc}") from exc


def _content_parts(content: Any) -> tuple[list[str], list[bytes]]:
    """Split a message ``content`` (string or list of parts) into texts and images."""
    if content is None:
        return [], []
    if isinstance(content, str):
        return [content], []
    if not isinstance(content, list):
        raise ProtocolError(400, "message content must be a string or a list of parts")
    texts: list[str] = []
    images: list[bytes] = []
    for part in content:
        if not isinstance(part, dict):
            raise ProtocolError(400, "content parts must be objects")
        kind = part.get("type")
        if kind == "text":
            texts.append(str(part.get("text", "")))
        elif kind == "image_url":
            image_url = part.get("image_url")
            url = image_url.get("url") if isinstance(image_url, dict) else image_url
            if not isinstance(url, str):
                raise ProtocolError(400, "image_url.url must be a string")
            images.append(decode_data_url(url))
        else:
            raise ProtocolError(400, f"unsupported content part type {kind!r}")
    return texts, images


def parse_chat_request(body: Any) -> ChatRequest:
    """Validate a chat-completions body and pull out prompt text and images."""
    if not isinstance(body, dict):
        raise ProtocolError(400, "request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ProtocolError(400, "'model' is required", code="missing_model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ProtocolError(400, "'messages' must be a non-empty list")
    texts: list[str] = []
    images: list[bytes] = []
    for msg in messages:
        if not isinstance(msg, dict):
            raise ProtocolError(400, "each message must be an object")
        t, i = _content_parts(msg.get("content"))
        if msg.get("role", "user") == "user":
            texts.extend(t)
        images.extend(i)
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise ProtocolError(400, "'max_tokens' must be a positive integer")
    stream_options = body.get("stream_options") or {}
    return ChatRequest(
        model=model,
        prompt="\n".join(texts),
        images=images,
        max_tokens=max_tokens,
        temperature=body.get("temperature"),
        stream=bool(body.get("stream", False)),
        include_usage=bool(isinstance(stream_options, dict) and stream_options.get("include_usage")),
    )


def new_completion_id() -> str:
    """A fresh ``chatcmpl-`` id, as OpenAI issues."""
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    """The ``usage`` object of a completion."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_completion(
    model: str,
    text: str,
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int | None = None,
    completion_id: str | None = None,
) -> dict[str, Any]:
    """A non-streaming ``chat.completion`` object."""
    if completion_tokens is None:
        completion_tokens = count_tokens(text)
    return {
        "id": completion_id or new_completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage(prompt_tokens, completion_tokens),
    }


def chunk(
    completion_id: str,
    model: str,
    created: int,
    delta: dict[str, Any] | None,
    finish_reason: str | None = None,
    usage_obj: dict[str, int] | None = None,
) -> dict[str, Any]:
    """One ``chat.completion.chunk``; ``delta=None`` builds the usage-only chunk."""
    obj: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage_obj is not None:
        obj["usage"] = usage_obj
    return obj


def sse(obj: Any) -> bytes:
    """Frame one JSON object as a server-sent event ``data:`` line."""
    return b"data: " + dumps(obj) + b"\n\n"


class StreamWriter:
    """Builds the SSE byte frames of one streamed completion, in order."""

    def __init__(self, model: str, completion_id: str | None = None) -> None:
        self.model = model
        self.id = completion_id or new_completion_id()
        self.created = int(time.time())

    def role(self) -> bytes:
        """First chunk: announces the assistant role with empty content."""
        return sse(chunk(self.id, self.model, self.created, {"role": "assistant", "content": ""}))

    def content(self, text: str) -> bytes:
        """A content delta."""
        return sse(chunk(self.id, self.model, self.created, {"content": text}))

    def finish(self, finish_reason: str) -> bytes:
        """The chunk carrying ``finish_reason`` and an empty delta."""
        return sse(chunk(self.id, self.model, self.created, {}, finish_reason))

    def usage(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        """The ``choices: []`` chunk sent when ``stream_options.include_usage`` is set."""
        return sse(chunk(self.id, self.model, self.created, None, None, usage(prompt_tokens, completion_tokens)))

    def tail(self, finish_reason: str, include_usage: bool, prompt_tokens: int, completion_tokens: int) -> bytes:
        """Finish chunk, optional usage chunk and ``[DONE]`` in one write."""
        out = self.finish(finish_reason)
        if include_usage:
            out += self.usage(prompt_tokens, completion_tokens)
        return out + SSE_DONE


def split_for_stream(text: str, words_per_chunk: int = 1) -> list[str]:
    """Split text into content deltas that concatenate back to exactly ``text``."""
    pieces = re.findall(r"\S+\s*|\s+", text)
    if words_per_chunk <= 1:
        return pieces
    return ["".join(pieces[i : i + words_per_chunk]) for i in range(0, len(pieces), words_per_chunk)]


async def stream_text(
    writer: StreamWriter,
    pieces: Iterable[str],
    finish_reason: str,
    include_usage: bool,
    prompt_tokens: int,
) -> AsyncIterator[bytes]:
    """The whole SSE body of a completion whose text is already known."""
    yield writer.role()
    completion_tokens = 0
    for piece in pieces:
        completion_tokens += count_tokens(piece)
        yield writer.content(piece)
    yield writer.tail(finish_reason, include_usage, prompt_tokens, completion_tokens)


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def models_payload(names: Iterable[str], owned_by: str = "tracr") -> dict[str, Any]:
    """The ``GET /v1/models`` list object."""
    created = int(time.time())
    return {
        "object": "list",
        "data": [{"id": n, "object": "model", "created": created, "owned_by": owned_by} for n in names],
    }


def error_body(message: str, type_: str = "invalid_request_error", code: str | None = None) -> dict[str, Any]:
    """OpenAI's error envelope; the client reads ``error.message`` from it."""
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def error_response(
    status: int,
    message: str,
    type_: str = "invalid_request_error",
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """An OpenAI-shaped JSON error response."""
    return Response(dumps(error_body(message, type_, code)), status, headers, media_type="application/json")


def json_response(obj: Any, status: int = 200) -> Response:
    """A fast JSON response (orjson when available)."""
    return Response(dumps(obj), status, media_type="application/json")


def model_not_found(model: str) -> ProtocolError:
    """The 404 OpenAI returns for an unknown model."""
    return ProtocolError(404, f"The model `{model}` does not exist.", "invalid_request_error", "model_not_found")


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """Bind (and listen on) a TCP socket; port 0 lets the kernel pick a free port.

    Binding ourselves, instead of letting uvicorn do it, is what lets us learn
    the real port before announcing it, without a find-then-bind race.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


class _AnnouncingServer(uvicorn.Server):
    """uvicorn server that prints the READY line once it accepts connections."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if sockets and self.started:
            port = sockets[0].getsockname()[1]
            sys.stdout.write(f"{READY_PREFIX} port={port}\n")
            sys.stdout.flush()


def serve(app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
    """Serve ``app`` on ``host:port`` and print ``TRACR_SERVER_READY port=N`` when listening.

    Launchers (tests, the benchmark runner) parse that line to learn the port
    chosen for ``--port 0``.  Blocks until the server is told to stop (SIGINT/SIGTERM).
    """
    sock = bind_socket(host, port)
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=2,
        timeout_keep_alive=30,
        backlog=2048,
    )
    server = _AnnouncingServer(config)
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        sock.close()
