"""The one OCR call path: an OpenAI-compatible streaming chat completion per page.

Hosted providers, vLLM and the built-in CPU server are all reached through
``openai.AsyncOpenAI``, whose streamed body is read by ``tasks/ocr/chat_stream.py``.
Streaming gives time to first token; retries with backoff
cover 429s, 5xx, timeouts, dropped connections and malformed bodies; the outcome is
always a result (text or error), never an exception, so one bad page cannot stop a run.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import httpx2
import openai

from tasks.ocr.chat_stream import IncompleteResponse, read_chat_stream
from tasks.ocr.rate_limits import ProviderPacer
from tracr.documents.images import data_url_image_size
from tracr.errors import ErrorClass, TracrError
from tracr.ratelimits.budget import estimate_request_tokens
from tracr.ratelimits.gate import AdaptiveGate
from tracr.run.retry import FATAL_FOR_RUN, RetryPolicy

__all__ = [
    "OcrClient",
    "OcrResult",
    "FatalModelError",
    "classify_error",
    "describe_error",
    "retry_after_s",
    "status_class",
    "with_retries",
    "with_usage_of",
]

T = TypeVar("T")


@dataclass(slots=True)
class OcrResult:
    """One page's outcome after all attempts."""

    text: str | None
    attempts: int
    latency_s: float | None = None
    ttft_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str | None = None
    error: str | None = None
    error_class: ErrorClass | None = None
    raw: str | None = None  # the reply as it came, when the family's parser changed it (kept beside the page)
    dropped: tuple[str, ...] = ()
    reply_meta: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.text is not None


def _total(values: list[Any]) -> Any:
    """A sum of what was reported; None when no request reported it."""
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def with_usage_of(result: OcrResult, requests: list[OcrResult]) -> OcrResult:
    """``result`` with the attempts, seconds and tokens of every request a page took (several calls or retries)."""
    result.attempts = sum(r.attempts for r in requests)
    result.latency_s = _total([r.latency_s for r in requests])
    result.input_tokens = _total([r.input_tokens for r in requests])
    result.output_tokens = _total([r.output_tokens for r in requests])
    return result


class FatalModelError(TracrError, RuntimeError):
    """The target rejects every request alike (bad key, unknown model): the run stops."""

    default_class = ErrorClass.AUTH


def retry_after_s(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def status_class(status: int) -> ErrorClass:
    """The class of an HTTP error status (as the SDK's error types map them)."""
    if status == 429:
        return ErrorClass.RATE_LIMITED
    if status in (401, 403):
        return ErrorClass.AUTH
    if status == 404:
        return ErrorClass.NOT_FOUND
    if status == 408:
        return ErrorClass.TIMEOUT
    return ErrorClass.SERVER_ERROR if status >= 500 else ErrorClass.BAD_REQUEST


def classify_error(exc: BaseException) -> ErrorClass:
    """Map an exception from the client or stream (or a plain httpx call, ``raise_for_status`` included) to an :class:`ErrorClass`."""
    if isinstance(exc, httpx.HTTPStatusError):
        return status_class(exc.response.status_code)
    if isinstance(exc, (openai.APITimeoutError, asyncio.TimeoutError, httpx2.TimeoutException, httpx.TimeoutException)):
        return ErrorClass.TIMEOUT
    if isinstance(exc, openai.RateLimitError):
        return ErrorClass.RATE_LIMITED
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        return ErrorClass.AUTH
    if isinstance(exc, openai.NotFoundError):
        return ErrorClass.NOT_FOUND
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status == 408:
            return ErrorClass.TIMEOUT
        if status >= 500:
            return ErrorClass.SERVER_ERROR
        return ErrorClass.BAD_REQUEST
    if isinstance(exc, (openai.APIConnectionError, httpx2.TransportError, httpx.TransportError)):
        return ErrorClass.CONNECTION
    if isinstance(exc, (json.JSONDecodeError, openai.APIResponseValidationError, IncompleteResponse, ValueError, KeyError)):
        return ErrorClass.MALFORMED
    return ErrorClass.UNKNOWN


def describe_error(exc: BaseException, timeout_s: float | None = None) -> str:
    """A short error text for metadata that says what happened; never includes request headers."""
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {str(exc.message)[:300]}"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}: {exc.response.text[:300]}"
    if timeout_s is not None and isinstance(
        exc, (asyncio.TimeoutError, openai.APITimeoutError, httpx2.TimeoutException, httpx.TimeoutException)
    ):
        return f"no complete answer within the request timeout (timeout_s: {timeout_s:g} s)"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:300]}"


async def _gated(call: Callable[[], Awaitable[T]], in_flight: asyncio.Semaphore | AdaptiveGate) -> T:
    """``call`` holding a place in flight; an adaptive gate hears how it ended (429s move it, Retry-After pauses it)."""
    if isinstance(in_flight, asyncio.Semaphore):
        async with in_flight:
            return await call()
    started = await in_flight.acquire()
    try:
        value = await call()
    except BaseException as exc:
        throttled = isinstance(exc, Exception) and classify_error(exc) is ErrorClass.RATE_LIMITED
        in_flight.release(started, throttled=throttled, retry_after_s=retry_after_s(exc) if throttled else None)
        raise
    in_flight.release(started, ok=True)
    return value


async def with_retries(
    call: Callable[[], Awaitable[T]], model: str, policy: RetryPolicy, timeout_s: float, in_flight: asyncio.Semaphore | AdaptiveGate
) -> tuple[T, int] | OcrResult:
    """``call`` under ``in_flight``, retried by ``policy``: its value and the attempts, or the page's failed result.

    The one retry loop of every endpoint kind (chat completions, Mistral's OCR). Raises
    :class:`FatalModelError` for errors every page would hit (auth, unknown model).
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return await _gated(call, in_flight), attempt
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every client/stream failure becomes a classified outcome
            error_class = classify_error(exc)
            if error_class in FATAL_FOR_RUN:
                raise FatalModelError(f"{model}: {describe_error(exc)}", error_class=error_class) from None
            if not policy.should_retry(error_class, attempt):
                tries = f"after {attempt} attempt{'s' if attempt > 1 else ''}"
                return OcrResult(text=None, attempts=attempt, error=f"{describe_error(exc, timeout_s)} ({tries})", error_class=error_class)
            await asyncio.sleep(policy.delay(attempt, retry_after_s(exc)))


def _estimate_tokens(messages: list[dict[str, Any]], sampling: dict[str, Any]) -> int:
    """A request's tokens before the reply says: its text, its images' sizes and ``max_tokens``."""
    chars, sizes = 0, []
    for message in messages:
        content = message.get("content")
        parts: list[dict[str, Any]] = content if isinstance(content, list) else [{"type": "text", "text": content or ""}]
        for part in parts:
            if part.get("type") == "text":
                chars += len(str(part.get("text") or ""))
            elif part.get("type") == "image_url":
                try:
                    sizes.append(data_url_image_size(part["image_url"]["url"]))
                except Exception:  # an image whose header cannot be read counts as one tile
                    sizes.append((0, 0))
    return estimate_request_tokens(chars, sizes, sampling.get("max_tokens"))


class OcrClient:
    """Sends page images to one model target with bounded concurrency and retries."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        model: str,
        max_concurrent_requests: int,
        timeout_s: float,
        policy: RetryPolicy,
        gate: AdaptiveGate | None = None,
        pacer: ProviderPacer | None = None,
    ) -> None:
        # The SDK's own client (httpx2): with many connections kept alive, httpx's pool checks every
        # idle socket on each request, which cost more CPU than the pages' streams (bench/stream_reader.py).
        limits = httpx2.Limits(max_connections=max_concurrent_requests, max_keepalive_connections=max_concurrent_requests)
        http = openai.DefaultAsyncHttpx2Client(limits=limits, timeout=httpx2.Timeout(timeout_s, connect=min(30.0, timeout_s)))
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, http_client=http)
        self.model = model
        self.timeout_s = timeout_s
        self.policy = policy
        # Fixed unless the caller gives an adaptive gate (hosted models: 429s and Retry-After move it).
        self.in_flight = gate or AdaptiveGate(max_concurrent_requests)
        self.pacer = pacer  # the key's per-minute budget, shared through Prefect (None: no budget declared)

    async def aclose(self) -> None:
        await self._client.close()
        if self.pacer is not None:
            await self.pacer.aclose()

    async def _attempt(self, messages: list[dict[str, Any]], sampling: dict[str, Any]) -> OcrResult:
        if self.pacer is None:
            return await self._send(messages, sampling)
        taken = await self.pacer.before(_estimate_tokens(messages, sampling))
        try:
            result = await self._send(messages, sampling)
        except BaseException:
            try:  # a refused or cut request is not billed its estimate
                await asyncio.shield(self.pacer.settle(taken, 0))
            except Exception:  # the Prefect server gone: the tokens come back by decay
                pass
            raise
        used = (
            None
            if result.input_tokens is None and result.output_tokens is None
            else (result.input_tokens or 0) + (result.output_tokens or 0)
        )
        await self.pacer.settle(taken, used)
        return result

    async def _send(self, messages: list[dict[str, Any]], sampling: dict[str, Any]) -> OcrResult:
        started = time.perf_counter()
        async with asyncio.timeout(self.timeout_s):
            request: dict[str, Any] = {"model": self.model, "messages": messages, **sampling}
            async with self._client.chat.completions.with_streaming_response.create(
                stream=True, stream_options={"include_usage": True}, **request
            ) as response:
                reply = await read_chat_stream(response.http_response, started)
        return OcrResult(
            text=reply.text(),
            attempts=0,
            latency_s=time.perf_counter() - started,
            ttft_s=reply.ttft_s,
            input_tokens=reply.prompt_tokens,
            output_tokens=reply.completion_tokens,
            finish_reason=reply.finish_reason,
        )

    async def ocr(self, image_url: str, *, prompt: str, max_tokens: int, temperature: float) -> OcrResult:
        """One page image with a prompt, text first: the generic request (and the judge's)."""
        content = [{"type": "text", "text": prompt}, {"type": "image_url", "image_url": {"url": image_url}}]
        return await self.complete([{"role": "user", "content": content}], {"max_tokens": max_tokens, "temperature": temperature})

    async def complete(self, messages: list[dict[str, Any]], sampling: dict[str, Any]) -> OcrResult:
        """One streamed chat completion; retries transient failures, returns a failed result otherwise.

        ``sampling`` holds the completion's settings (``max_tokens``, ``temperature``, ``top_p``,
        ``stop``, ``extra_body``). Raises :class:`FatalModelError` for errors every page would
        hit (auth, unknown model).
        """
        outcome = await with_retries(lambda: self._attempt(messages, sampling), self.model, self.policy, self.timeout_s, self.in_flight)
        if isinstance(outcome, OcrResult):
            return outcome
        result, attempts = outcome
        result.attempts = attempts
        return result
