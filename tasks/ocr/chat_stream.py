"""Reading a streamed chat completion as plain JSON objects, one server-sent event at a time.

The openai SDK still builds the request and turns HTTP errors into its
exceptions; only the body is read here, with httpx-sse. The SDK's own stream
builds a pydantic object per chunk: 1.6 times the CPU of this reader for
64-word replies and 5 times for 1,000 one-word chunks (``bench/stream_reader.py``),
and with many pages in flight that is the job process's largest cost, taken
from the render workers on a small machine.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import httpx2
import openai
from httpx_sse import EventSource, ServerSentEvent, SSEError

__all__ = ["IncompleteResponse", "StreamedReply", "read_chat_stream"]

#: What follows ``[DONE]`` (normally only the end of the body) is read for at most this long,
#: so the connection goes back to the pool instead of being closed.
_DRAIN_S = 1.0


class IncompleteResponse(Exception):
    """A 200 stream that was no answer: no choices at all, or neither text nor a ``finish_reason``.

    Such a stream was cut short (a proxy closing it, a server dying after the
    role chunk); storing it would record an empty page as done. A stream with
    text but no finish reason is kept: some OpenAI-compatible proxies (Gemini
    gateways among them) never send one. Treated as a malformed response:
    retried, then the page fails.
    """


@dataclass(slots=True)
class StreamedReply:
    """What the chunks of one streamed completion added up to."""

    started: float
    parts: list[str] = field(default_factory=list)
    ttft_s: float | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    saw_choice: bool = False

    def add(self, chunk: Any) -> None:
        """Fold one ``chat.completion.chunk`` in; anything that is not one is a malformed response."""
        if not isinstance(chunk, dict):
            raise ValueError(f"a stream chunk is not a JSON object: {str(chunk)[:100]}")
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.prompt_tokens = usage.get("prompt_tokens")
            self.completion_tokens = usage.get("completion_tokens")
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                raise ValueError(f"a stream choice is not a JSON object: {str(choice)[:100]}")
            self.saw_choice = True
            delta = choice.get("delta")
            content = delta.get("content") if isinstance(delta, dict) else None
            if content:
                if not isinstance(content, str):
                    raise ValueError(f"a stream delta's content is not text: {str(content)[:100]}")
                if self.ttft_s is None:
                    self.ttft_s = time.perf_counter() - self.started
                self.parts.append(content)
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])

    def text(self) -> str:
        """The reply's text; raises :class:`IncompleteResponse` for a stream that was no answer."""
        if not self.saw_choice:
            raise IncompleteResponse("the response stream carried no choices")
        if self.finish_reason is None and not self.parts:
            raise IncompleteResponse("the response stream ended with no text and no finish_reason (cut short)")
        return "".join(self.parts)


def _stream_error(event: ServerSentEvent, data: Any, request: httpx2.Request) -> openai.APIError | None:
    """An error the server sent inside a 200 stream, raised as the SDK's own stream raises it."""
    if not isinstance(data, dict) or not data.get("error"):
        return None
    error = data["error"]
    message = error.get("message") if isinstance(error, dict) else None
    if not isinstance(message, str) or not message:
        message = f"an error event in the response stream ({event.event or 'message'})"
    return openai.APIError(message, request, body=error)


async def _drain(events: AsyncGenerator[ServerSentEvent, None]) -> None:
    """Read the rest of the body (bounded) so an HTTP/1.1 connection can serve the next page."""
    try:
        async with asyncio.timeout(_DRAIN_S):
            async for _ in events:
                pass
    except (TimeoutError, httpx2.HTTPError):
        pass


async def read_chat_stream(response: httpx2.Response, started: float) -> StreamedReply:
    """Fold a ``text/event-stream`` chat completion body into a :class:`StreamedReply`."""
    reply = StreamedReply(started=started)
    # httpx-sse reads only the headers and ``aiter_text()``, which httpx2's response keeps from httpx.
    events = EventSource(cast(httpx.Response, response)).aiter_sse()
    try:
        async for event in events:
            if event.data.startswith("[DONE]"):
                await _drain(events)
                break
            data = json.loads(event.data)
            error = _stream_error(event, data, response.request)
            if error is not None:
                raise error
            reply.add(data)
    except SSEError as exc:  # a 200 that is not an event stream: an HTML page from a proxy, a JSON body
        raise IncompleteResponse(f"the response is not an event stream: {exc}") from None
    finally:
        await events.aclose()
    return reply
