"""A loopback OpenAI-compatible server with controllable latency and faults.

Tests and benchmarks of tracr's client side (retries, concurrency, timeouts,
stream parsing) need a model that misbehaves on demand and is fast enough not
to be the bottleneck.  Run it as a real process:

    python -m tracr.testing.openai_stub --port 0 --config '{"latency_s": 0.1}'
    python -m tracr.testing.openai_stub --port 0 --config-file stub.json

It prints ``TRACR_SERVER_READY port=N`` once listening.

Config (``StubConfig``; all fields optional):

- ``model``: served model name (default ``"stub-ocr"``); other names get 404.
- ``api_key``: when set, ``/v1/*`` requires ``Authorization: Bearer <key>``
  (else 401 OpenAI-style).
- ``latency_s``: total time per chat request (default 0).
- ``ttft_s``: delay before the first content chunk when streaming (default 0);
  the rest of ``latency_s`` is spread over the content chunks.
- ``output_tokens``: words in the reply (default 8).
- ``chunk_words``: words per streamed content chunk (default 4).
- ``timeout_sleep_s``: how long the ``timeout`` fault stalls (default 30).
- ``finish_reason``: what every reply ends with (default ``stop``; ``length`` plays a model cut off at its token limit).
- ``judge``: answer as a pairwise judge (prompts of :func:`tracr.scoring.judge.build_prompt`):
  ``{"prefer": TEXT}`` picks the output containing TEXT (tie when both or neither do);
  ``{"position": "A"|"B"}`` always picks that position (a position-biased judge);
  ``{"strengths": {TEXT: s, ...}, "seed": N}`` is a noisy judge: each output's
  strength is that of the TEXT it contains, and A wins with the Bradley–Terry
  probability ``1 / (1 + exp(s_B - s_A))``, drawn from a hash of seed and prompt
  (the same prompt always gets the same verdict, as at temperature 0).
- ``replies``: answer in a model family's format: the reply to attempt n on an image is
  ``replies[n-1]`` (the last one repeats), ``{key}`` replaced by the image's id;
  ``finish_reasons`` likewise per attempt. ``capture``: keep each request body, images
  replaced by ``<image WxH>`` and OCR documents by ``<document N bytes>``, served by
  ``GET /_requests`` (the request as the endpoint saw it).
- ``replies_by_prompt``: ``{TEXT: [reply, ...]}``: a request whose user text contains TEXT is
  answered from that list (the first TEXT that matches, by attempt on the image as ``replies``),
  ``{key}``, ``{width}`` and ``{height}`` replaced by the image's id and size; other requests are
  answered as before. It plays models asked several ways, like MinerU2.5's two steps
  (``"Layout Detection:"`` → a layout reply, ``"Table Recognition:"`` → OTSL, ``"Text Recognition:"`` → text).
- ``rules``: fault rules, each
  ``{"fault": "429"|"500"|"503"|"400"|"401"|"timeout"|"malformed"|"drop"|"html"|"empty"|"length"|"huge",
  "times": N, "image_width": W, "retry_after_s": S, "rate": R, "seed": N}``.

Fault semantics: attempts are counted per distinct image (sha256 of the image
bytes; text-only requests count by prompt).  The rules that match an image
(``image_width`` unset, or equal to the pixel width read from the PNG/JPEG
header) apply in order and consume attempts: with ``[429 times 1, 500 times 2]``
attempt 1 gets 429, attempts 2-3 get 500, attempt 4 succeeds.  ``times: -1``
fails every attempt.  ``rate`` (default 1) is the share of images a rule applies to,
drawn per image from a hash of ``seed``, the rule's position and the image, so a
list of rules with rates mixes fault kinds over a job reproducibly.  ``timeout`` stalls ``timeout_sleep_s`` and then answers
normally; ``malformed`` answers 200 with invalid JSON (or an SSE stream with a
garbage ``data:`` line); ``drop`` closes the connection mid-response (after the
headers and one chunk when streaming, after a partial body otherwise); ``html``
answers 502 with a proxy's HTML page; ``empty`` answers 200 with no choices;
``length`` answers normally but ends ``finish_reason=length``; ``huge`` answers
``huge_words`` words (a runaway model).

The reply text identifies the page deterministically:
``"stub page sha256=<12 hex> w=<width> h=<height>"`` plus filler words up to
``output_tokens`` words.

``POST /v1/ocr`` answers as Mistral OCR does: ``{"pages": [{"index", "markdown", "images": [],
"dimensions": {"dpi", "width", "height"}}], "model", "usage_info": {"pages_processed",
"doc_size_bytes"}}``, one page per page of the ``document_url`` PDF (an image document is one
page). Each page's markdown is ``"stub page sha256=<12 hex of the document> bytes=<N> page=<i>/<n>"``
and, after a blank line, that page's own text layer (``replies``, when set, gives the markdown
instead, by attempt on the document). A body with ``extract_header``/``extract_footer`` gets
``header``/``footer`` fields (``"stub header <key>"``, ``"stub footer <key>"``). Auth, ``model``,
``latency_s``, ``capture`` and the fault ``rules`` apply as for chat, counted per document
(``image_width`` rules never match a document); ``empty`` answers no pages, ``malformed`` half a body.

Provider budgets: ``requests_per_minute`` and ``tokens_per_minute`` (prompt plus reply tokens of
the requests it answered) over a sliding ``budget_window_s`` (default 60): a request beyond either
gets 429 with ``Retry-After`` (whole seconds until the window frees enough). ``storm``:
``{"after_requests": N, "seconds": S, "retry_after_s": R, "capacity": C}`` makes a 429 storm start at
the N-th chat request (or, with ``after_s``, that many seconds after the first) and last S seconds: during it only C requests (default 0) are served at once,
the others get 429 with ``Retry-After: R``. ``GET /_arrivals`` lists every chat request as
``[seconds since the first, tokens, outcome]`` (``outcome`` is ``"ok"``, ``"budget"`` or ``"storm"``),
so a test can measure requests per sliding minute as the provider saw them.

``batch``: the Files and Batches endpoints of the Batch API, whose behaviour (delay, failing
requests, expiry) :class:`tracr.testing.batch_stub.BatchScript` sets; usage billed through them
is ``batch_usage`` in the stats.

``GET /_stats`` reports counts (never any Authorization value); ``POST /_reset``
clears them and the per-image attempt counters.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import logging
import math
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tracr.documents.images import image_size
from tracr.servers import openai_protocol as oai
from tracr.testing.batch_stub import BatchScript, batch_routes

FaultKind = Literal["429", "500", "503", "400", "401", "timeout", "malformed", "drop", "html", "empty", "length", "huge"]
_FILLER = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit")


class FaultRule(BaseModel):
    """One injected failure; see the module docstring for the semantics."""

    fault: FaultKind
    times: int = Field(default=1, ge=-1)
    image_width: int | None = None
    retry_after_s: float | None = None
    rate: float = Field(default=1.0, ge=0, le=1)
    seed: int = 0


class StormScript(BaseModel):
    """A timed 429 storm (see ``storm`` in the module docstring)."""

    after_requests: int = Field(default=0, ge=0)
    after_s: float | None = Field(default=None, ge=0)  # or: start this long after the first request
    seconds: float = Field(default=30.0, ge=0)
    retry_after_s: float = Field(default=1.0, ge=0)
    capacity: int = Field(default=0, ge=0)


class JudgeScript(BaseModel):
    """How the stub judges pairs (see ``judge`` in the module docstring)."""

    prefer: str | None = None
    position: Literal["A", "B"] | None = None
    strengths: dict[str, float] | None = None
    seed: int = 0


class StubConfig(BaseModel):
    """Behaviour of the stub server; see the module docstring."""

    model: str = "stub-ocr"
    api_key: str | None = None
    latency_s: float = Field(default=0.0, ge=0)
    ttft_s: float = Field(default=0.0, ge=0)
    output_tokens: int = Field(default=8, ge=0)
    chunk_words: int = Field(default=4, ge=1)
    timeout_sleep_s: float = Field(default=30.0, ge=0)
    finish_reason: str = "stop"  # "length" plays a model that hit its token limit
    huge_words: int = Field(default=200_000, ge=1)  # what the ``huge`` fault answers
    rules: list[FaultRule] = Field(default_factory=list)
    judge: JudgeScript | None = None
    replies: list[str] | None = None  # a family's replies by attempt on the same image (the last repeats); {key} is the image's id
    finish_reasons: list[str] | None = None  # finish_reason by attempt, like ``replies``
    capture: bool = False  # keep every request (images as "<image WxH>", documents as "<document N bytes>") for GET /_requests
    replies_by_prompt: dict[str, list[str]] | None = None  # replies by a text the request's prompt contains, then by attempt
    requests_per_minute: int | None = Field(default=None, ge=1)  # per ``budget_window_s``: 429 beyond it
    tokens_per_minute: int | None = Field(default=None, ge=1)
    budget_window_s: float = Field(default=60.0, gt=0)
    storm: StormScript | None = None
    batch: BatchScript = Field(default_factory=BatchScript)  # the Files and Batches endpoints (tracr/testing/batch_stub.py)


def judge_reply(script: JudgeScript, prompt: str) -> str:
    """A scripted verdict on the two outputs quoted in ``prompt``."""
    import re

    def output(name: str) -> str:
        found = re.search(rf"=== Output {name} ===\n(.*?)\n=== End of Output {name} ===", prompt, re.S)
        return found.group(1) if found else ""

    winner: str
    if script.position is not None:
        winner = script.position
    elif script.strengths:
        import math

        def strength(text: str) -> float:
            return next((s for marker, s in script.strengths.items() if marker in text), 0.0)  # type: ignore[union-attr]

        p_a = 1.0 / (1.0 + math.exp(strength(output("B")) - strength(output("A"))))
        draw = int.from_bytes(hashlib.sha256(f"{script.seed}|{prompt}".encode()).digest()[:8], "big") / 2**64
        winner = "A" if draw < p_a else "B"
    else:
        a, b = (script.prefer or "") in output("A"), (script.prefer or "") in output("B")
        winner = "A" if a and not b else "B" if b and not a else "tie"
    kind = "position" if script.position else "strengths" if script.strengths else "prefer"
    return json.dumps({"winner": winner, "reason": f"scripted ({kind})"})


class DropConnection(Exception):
    """Raised inside a response to make uvicorn close the socket mid-response."""


class _QuietDrops(logging.Filter):
    """Keep intentional drops out of uvicorn's error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, DropConnection):
                return False
            exc = exc.__cause__ or exc.__context__ or _first_of_group(exc)
        return True


def _first_of_group(exc: BaseException) -> BaseException | None:
    """Starlette may wrap errors raised while streaming in an ExceptionGroup."""
    inner = getattr(exc, "exceptions", None)
    return inner[0] if inner else None


class ProviderBudget:
    """A provider's sliding-window request and token budgets, and a timed 429 storm."""

    def __init__(self, config: StubConfig) -> None:
        self.config = config
        self.accepted: deque[tuple[float, int]] = deque()  # (monotonic time, tokens) of requests served
        self.arrivals: list[tuple[float, int, str]] = []
        self.first: float | None = None
        self.chat_requests = 0
        self.storm_started: float | None = None
        self.storm_in_flight = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.batch_prompt_tokens = 0  # billed through the Batch API (at the batch price)
        self.batch_completion_tokens = 0

    def admit(self, tokens: int) -> tuple[str, float]:
        """``("ok", 0)`` or why a request is refused and the Retry-After to send."""
        now = time.monotonic()
        self.first = now if self.first is None else self.first
        self.chat_requests += 1
        verdict = self._storm(now) or self._budget(now, tokens)
        outcome, retry_after = verdict or ("ok", 0.0)
        if outcome == "ok":
            self.accepted.append((now, tokens))
        self.arrivals.append((round(now - self.first, 4), tokens, outcome))
        return outcome, retry_after

    def _storm(self, now: float) -> tuple[str, float] | None:
        storm = self.config.storm
        if storm is None:
            return None
        due = self.chat_requests >= storm.after_requests if storm.after_s is None else now - (self.first or now) >= storm.after_s
        if self.storm_started is None and due:
            self.storm_started = now
        if self.storm_started is None or now - self.storm_started >= storm.seconds:
            return None
        if self.storm_in_flight < storm.capacity:
            return None
        return "storm", storm.retry_after_s

    def _budget(self, now: float, tokens: int) -> tuple[str, float] | None:
        window = self.config.budget_window_s
        while self.accepted and self.accepted[0][0] <= now - window:
            self.accepted.popleft()
        rpm, tpm = self.config.requests_per_minute, self.config.tokens_per_minute
        if rpm is not None and len(self.accepted) >= rpm:
            return "budget", self.accepted[0][0] + window - now
        if tpm is not None and sum(t for _, t in self.accepted) + tokens > tpm:
            return "budget", self.accepted[0][0] + window - now if self.accepted else window
        return None


class StubState:
    """Counters shared by all requests of one stub process."""

    def __init__(self, config: StubConfig | None = None) -> None:
        self.in_flight = 0
        self.config = config or StubConfig()
        self.reset()

    def reset(self) -> None:
        """Clear counters; ``in_flight`` is a live gauge, so it is kept."""
        self.total = 0
        self.outcomes: Counter[str] = Counter()
        self.attempts: Counter[str] = Counter()
        self.requests: list[Any] = []
        self.max_in_flight = self.in_flight
        self.budget = ProviderBudget(self.config)

    def enter(self) -> None:
        self.total += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self, outcome: str) -> None:
        self.in_flight -= 1
        self.outcomes[outcome] += 1

    def stats(self) -> dict[str, Any]:
        return {
            "total_requests": self.total,
            "outcomes": dict(self.outcomes),
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "attempts_by_image": dict(self.attempts),
            "usage": {"prompt_tokens": self.budget.prompt_tokens, "completion_tokens": self.budget.completion_tokens},
            "batch_usage": {"prompt_tokens": self.budget.batch_prompt_tokens, "completion_tokens": self.budget.batch_completion_tokens},
        }


def rule_hits(rule: FaultRule, position: int, key: str) -> bool:
    """Whether ``rule`` (the ``position``-th of its list) is drawn for the image ``key`` at its ``rate``."""
    if rule.rate >= 1:
        return True
    draw = hashlib.sha256(f"{rule.seed}|{position}|{key}".encode()).digest()[:8]
    return int.from_bytes(draw, "big") / 2**64 < rule.rate


def pick_fault(rules: Sequence[FaultRule], attempt: int, width: int, key: str = "") -> FaultRule | None:
    """The rule that applies to the ``attempt``-th (1-based) try of an image, if any."""
    used = 0
    for position, rule in enumerate(rules):
        if rule.image_width is not None and rule.image_width != width:
            continue
        if not rule_hits(rule, position, key):
            continue
        if rule.times < 0 or attempt <= used + rule.times:
            return rule
        used += rule.times
    return None


def reply_text(key: str, width: int, height: int, words: int) -> str:
    """Deterministic reply naming the page, padded with filler to ``words`` words."""
    head = ["stub", "page", f"sha256={key}", f"w={width}", f"h={height}"]
    filler = [_FILLER[i % len(_FILLER)] for i in range(max(words - len(head), 0))]
    return " ".join((head + filler)[: max(words, len(head))])


#: What a reverse proxy in front of a model answers when the model is down.
_PROXY_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"


def _throttled(retry_after_s: float, why: str) -> Response:
    """429 with Retry-After in whole seconds (rounded up) and in milliseconds, as providers send it."""
    headers = {"retry-after": str(max(math.ceil(retry_after_s), 0)), "retry-after-ms": str(int(retry_after_s * 1000))}
    return oai.error_response(429, f"Rate limit reached ({why}, stub)", "requests", "rate_limit_exceeded", headers)


def _error_for(rule: FaultRule) -> Response:
    """The HTTP error response of a status-code fault."""
    if rule.fault == "429":
        headers = {}
        if rule.retry_after_s is not None:
            headers["retry-after"] = str(max(int(round(rule.retry_after_s)), 0))
            headers["retry-after-ms"] = str(int(rule.retry_after_s * 1000))
        return oai.error_response(429, "Rate limit reached (stub)", "requests", "rate_limit_exceeded", headers)
    if rule.fault == "401":  # a key refused for some images only: a fault that ends the run, on demand
        return oai.error_response(401, "Incorrect API key provided (stub fault).", "invalid_request_error", "invalid_api_key")
    if rule.fault == "400":
        return oai.error_response(400, "Bad request (stub fault)", "invalid_request_error", "stub_fault")
    if rule.fault == "503":
        return oai.error_response(503, "Service unavailable (stub)", "server_error", "service_unavailable")
    return oai.error_response(500, "Internal server error (stub)", "server_error", None)


class _DroppedBody(Response):
    """Announces a full JSON body, sends part of it, then kills the connection."""

    def __init__(self, partial: bytes) -> None:
        super().__init__(media_type="application/json")
        self.partial = partial

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(self.partial) * 2).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.partial, "more_body": True})
        raise DropConnection("stub fault: drop")


def create_app(config: StubConfig) -> Starlette:
    """Build the stub's Starlette app for ``config``."""
    state = StubState(config)
    expected_auth = f"Bearer {config.api_key}" if config.api_key else None

    def auth_error(request: Request) -> Response | None:
        if expected_auth is not None and request.headers.get("authorization") != expected_auth:
            return oai.error_response(401, "Incorrect API key provided (stub).", "invalid_request_error", "invalid_api_key")
        return None

    async def health(request: Request) -> Response:
        return oai.json_response({"status": "ok"})

    async def models(request: Request) -> Response:
        return auth_error(request) or oai.json_response(oai.models_payload([config.model], "tracr-stub"))

    async def stats(request: Request) -> Response:
        return oai.json_response(state.stats())

    async def requests(request: Request) -> Response:
        return oai.json_response({"requests": state.requests})

    def batch_answer(body: dict[str, Any]) -> dict[str, Any]:
        """A batch request's completion: the reply a live request gets, billed as batch usage."""
        req = oai.parse_chat_request(body)
        data = req.images[0] if req.images else req.prompt.encode()
        key = hashlib.sha256(data).hexdigest()[:12]
        width, height = image_size(req.images[0]) if req.images else (0, 0)
        text = reply_text(key, width, height, config.output_tokens)
        state.budget.batch_prompt_tokens += req.prompt_tokens
        state.budget.batch_completion_tokens += oai.count_tokens(text)
        return oai.chat_completion(config.model, text, config.finish_reason, req.prompt_tokens)

    async def arrivals(request: Request) -> Response:
        return oai.json_response({"arrivals": state.budget.arrivals})

    async def reset(request: Request) -> Response:
        state.reset()
        return oai.json_response({"status": "reset"})

    async def streamed(
        writer: oai.StreamWriter,
        text: str,
        fault: FaultRule | None,
        req: oai.ChatRequest,
        started: float,
        finish_reason: str,
        storm_slot: bool = False,
    ) -> AsyncIterator[bytes]:
        outcome: str = fault.fault if fault else "ok"
        try:
            yield writer.role()
            if fault and fault.fault == "drop":
                raise DropConnection("stub fault: drop")
            if fault and fault.fault == "malformed":
                yield b"data: {this is not json\n\n" + oai.SSE_DONE
                return
            if fault and fault.fault == "empty":
                yield oai.SSE_DONE
                return
            pieces = oai.split_for_stream(text, config.chunk_words)
            total = max(config.latency_s, config.ttft_s)
            for i, piece in enumerate(pieces):
                due = config.ttft_s + (total - config.ttft_s) * i / len(pieces)
                await _sleep_until(started + due)
                yield writer.content(piece)
            await _sleep_until(started + total)
            yield writer.tail(finish_reason, req.include_usage, req.prompt_tokens, oai.count_tokens(text))
        except BaseException:
            outcome = outcome if outcome == "drop" else "client_disconnected"
            raise
        finally:
            state.leave(outcome)
            if storm_slot:
                state.budget.storm_in_flight -= 1

    async def chat(request: Request) -> Response:
        started = time.monotonic()
        state.enter()
        outcome = "ok"
        storm_slot = False  # this request counts against a storm's capacity until its reply ends
        try:
            denied = auth_error(request)
            if denied is not None:
                outcome = "401"
                return denied
            try:
                body = json.loads(await request.body())
                req = oai.parse_chat_request(body)
                if req.model != config.model:
                    raise oai.model_not_found(req.model)
            except ValueError as exc:
                raise oai.ProtocolError(400, f"request body is not valid JSON: {exc}") from exc
            data = req.images[0] if req.images else req.prompt.encode()
            key = hashlib.sha256(data).hexdigest()[:12]
            width, height = image_size(req.images[0]) if req.images else (0, 0)
            state.attempts[key] += 1
            fault = pick_fault(config.rules, state.attempts[key], width, key)
            if config.capture:
                state.requests.append(_captured(body))
            text = reply_text(key, width, height, config.output_tokens) if config.judge is None else judge_reply(config.judge, req.prompt)
            if config.replies:
                text = config.replies[min(state.attempts[key], len(config.replies)) - 1].replace("{key}", key)
            by_prompt = _reply_by_prompt(config.replies_by_prompt, req.prompt, state.attempts[key])
            if by_prompt is not None:
                text = by_prompt.replace("{key}", key).replace("{width}", str(width)).replace("{height}", str(height))
            if fault is not None and fault.fault in ("429", "500", "503", "400", "401"):
                outcome = fault.fault
                return _error_for(fault)
            tokens = req.prompt_tokens + oai.count_tokens(text)
            admitted, retry_after = state.budget.admit(tokens)
            if admitted != "ok":
                outcome = f"429_{admitted}"
                return _throttled(retry_after, admitted)
            state.budget.prompt_tokens += req.prompt_tokens
            state.budget.completion_tokens += oai.count_tokens(text)
            state.budget.storm_in_flight += 1
            storm_slot = True
            if fault is not None and fault.fault == "timeout":
                outcome = "timeout"
                if await _stall(request, config.timeout_sleep_s):
                    outcome = "timeout_client_gone"
                    return Response(status_code=499)
            if fault is not None and fault.fault == "html":
                outcome = "html"
                return Response(_PROXY_PAGE, status_code=502, media_type="text/html")
            finish_reason = "length" if fault is not None and fault.fault == "length" else config.finish_reason
            if config.finish_reasons:
                finish_reason = config.finish_reasons[min(state.attempts[key], len(config.finish_reasons)) - 1]
            if fault is not None and fault.fault == "huge":
                text = reply_text(key, width, height, config.huge_words)
            if req.stream:
                outcome = "streaming"  # the stream's own finally records the real outcome
                body = streamed(oai.StreamWriter(config.model), text, fault, req, started, finish_reason, storm_slot)
                return StreamingResponse(body, media_type="text/event-stream", headers=oai.SSE_HEADERS)
            await _sleep_until(started + config.latency_s)
            completion = oai.chat_completion(config.model, text, finish_reason, req.prompt_tokens)
            if fault is not None and fault.fault == "empty":
                outcome = "empty"
                completion["choices"] = []
            payload = oai.dumps(completion)
            if fault is not None and fault.fault == "malformed":
                outcome = "malformed"
                return Response(payload[: len(payload) // 2], media_type="application/json")
            if fault is not None and fault.fault == "drop":
                outcome = "drop"
                return _DroppedBody(payload[: len(payload) // 2])
            return Response(payload, media_type="application/json")
        except oai.ProtocolError as err:
            outcome = str(err.status)
            return err.response()
        except BaseException:
            outcome = "client_disconnected"
            raise
        finally:
            if outcome != "streaming":
                state.leave(outcome)
                if storm_slot:
                    state.budget.storm_in_flight -= 1

    async def ocr(request: Request) -> Response:
        started = time.monotonic()
        state.enter()
        outcome = "ok"
        try:
            denied = auth_error(request)
            if denied is not None:
                outcome = "401"
                return denied
            try:
                body = json.loads(await request.body())
            except ValueError as exc:
                raise oai.ProtocolError(400, f"request body is not valid JSON: {exc}") from exc
            if not isinstance(body, dict) or not isinstance(body.get("document"), dict):
                raise oai.ProtocolError(400, "'document' is required")
            if body.get("model") != config.model:
                raise oai.model_not_found(str(body.get("model")))
            document = body["document"]
            url = document.get("document_url") or document.get("image_url")
            if not isinstance(url, str) or not url.startswith("data:"):
                raise oai.ProtocolError(400, "the stub reads data: URLs only")
            data = _data_url_bytes(url)
            key = hashlib.sha256(data).hexdigest()[:12]
            state.attempts[key] += 1
            fault = pick_fault(config.rules, state.attempts[key], 0, key)
            if config.capture:
                state.requests.append(_captured(body))
            if fault is not None and fault.fault in ("429", "500", "503", "400", "401"):
                outcome = fault.fault
                return _error_for(fault)
            if fault is not None and fault.fault == "timeout":
                outcome = "timeout"
                if await _stall(request, config.timeout_sleep_s):
                    outcome = "timeout_client_gone"
                    return Response(status_code=499)
            if fault is not None and fault.fault == "html":
                outcome = "html"
                return Response(_PROXY_PAGE, status_code=502, media_type="text/html")
            reply = config.replies[min(state.attempts[key], len(config.replies)) - 1].replace("{key}", key) if config.replies else None
            pages = _ocr_pages(data, key, reply, body)
            await _sleep_until(started + config.latency_s)
            answer: dict[str, Any] = {"pages": [] if fault is not None and fault.fault == "empty" else pages, "model": config.model}
            answer["usage_info"] = {"pages_processed": len(pages), "doc_size_bytes": len(data)}
            payload = oai.dumps(answer)
            outcome = fault.fault if fault is not None else "ok"
            if fault is not None and fault.fault == "malformed":
                return Response(payload[: len(payload) // 2], media_type="application/json")
            if fault is not None and fault.fault == "drop":
                return _DroppedBody(payload[: len(payload) // 2])
            return Response(payload, media_type="application/json")
        except oai.ProtocolError as err:
            outcome = str(err.status)
            return err.response()
        except BaseException:
            outcome = "client_disconnected"
            raise
        finally:
            state.leave(outcome)

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/v1/models", models),
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/ocr", ocr, methods=["POST"]),
            Route("/_stats", stats),
            Route("/_requests", requests),
            Route("/_arrivals", arrivals),
            *batch_routes(config.batch, batch_answer, auth_error),
            Route("/_reset", reset, methods=["POST"]),
        ]
    )


def _reply_by_prompt(replies: dict[str, list[str]] | None, prompt: str, attempt: int) -> str | None:
    """The ``replies_by_prompt`` answer to the ``attempt``-th try: the first entry whose text the prompt contains."""
    for marker, answers in (replies or {}).items():
        if marker in prompt and answers:
            return answers[min(attempt, len(answers)) - 1]
    return None


def _data_url_bytes(url: str) -> bytes:
    """The bytes of a base64 ``data:`` URL of any media type (a PDF document included)."""
    try:
        return base64.b64decode(url.split(",", 1)[1], validate=False)
    except (IndexError, ValueError) as exc:
        raise oai.ProtocolError(400, f"invalid data URL: {exc}") from exc


def _ocr_pages(data: bytes, key: str, reply: str | None, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Mistral OCR's page objects for a document: its pages' sizes at 200 dpi and text layers (one page for an image)."""
    import pymupdf

    sizes_and_texts: list[tuple[int, int, str]] = []
    if data.startswith(b"%PDF"):
        with pymupdf.open(stream=data, filetype="pdf") as doc:
            sizes_and_texts = [(round(p.rect.width * 200 / 72), round(p.rect.height * 200 / 72), p.get_text().strip()) for p in doc]
    else:
        width, height = image_size(data)
        sizes_and_texts = [(width, height, "")]
    pages = []
    for index, (width, height, text) in enumerate(sizes_and_texts):
        head = f"stub page sha256={key} bytes={len(data)} page={index + 1}/{len(sizes_and_texts)}"
        page: dict[str, Any] = {
            "index": index,
            "markdown": reply if reply is not None else "\n\n".join(part for part in (head, text) if part),
            "images": [],
            "dimensions": {"dpi": 200, "width": width, "height": height},
        }
        if body.get("extract_header"):
            page["header"] = f"stub header {key}"
        if body.get("extract_footer"):
            page["footer"] = f"stub footer {key}"
        pages.append(page)
    return pages


def _captured(body: Any) -> Any:
    """The request body with each image data URL replaced by ``<image WxH>``, each OCR document by ``<document N bytes>``."""
    if isinstance(body, dict):
        if body.get("type") == "document_url" and isinstance(body.get("document_url"), str):
            url = body["document_url"]
            size = len(_data_url_bytes(url)) if url.startswith("data:") else 0
            return {**body, "document_url": f"<document {size} bytes>"}
        if body.get("type") == "image_url" and isinstance(body.get("image_url"), str):  # an OCR image document
            url = body["image_url"]
            width, height = image_size(_data_url_bytes(url)) if url.startswith("data:") else (0, 0)
            return {**body, "image_url": f"<image {width}x{height}>"}
        if body.get("type") == "image_url" and isinstance(body.get("image_url"), dict):
            url = str(body["image_url"].get("url", ""))
            data = base64.b64decode(url.split(",", 1)[1]) if url.startswith("data:") and "," in url else b""
            width, height = image_size(data) if data else (0, 0)
            return {"type": "image_url", "image_url": {"url": f"<image {width}x{height}>"}}
        return {key: _captured(value) for key, value in body.items()}
    if isinstance(body, list):
        return [_captured(item) for item in body]
    return body


async def _stall(request: Request, seconds: float) -> bool:
    """Sleep up to ``seconds``; stop early (returning True) once the client hangs up.

    Without this a stalled request would outlive the client that gave up on it
    and keep the stub's in-flight gauge (and its shutdown) busy for the full stall.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(min(0.05, max(deadline - time.monotonic(), 0)))
        if await request.is_disconnected():
            return True
    return False


async def _sleep_until(deadline: float) -> None:
    """Sleep until a monotonic deadline (no-op if it has passed)."""
    delay = deadline - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


def load_config(text: str | None = None, path: str | None = None) -> StubConfig:
    """Parse the stub config from a JSON string or file (both optional)."""
    if path:
        text = Path(path).read_text()
    return StubConfig.model_validate_json(text) if text else StubConfig()


def main(argv: Sequence[str] | None = None) -> None:
    """CLI entry point: serve the stub until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(description="Loopback OpenAI-compatible stub with fault injection.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--config", help="StubConfig as a JSON string")
    src.add_argument("--config-file", help="path to a StubConfig JSON file")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.config_file)
    except (OSError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        parser.error(f"invalid stub config: {exc}")
    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    oai.serve(create_app(config), args.host, args.port, args.log_level)


if __name__ == "__main__":
    main()
