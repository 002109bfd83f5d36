"""How one page becomes text, per kind of model.

``ChatPageEngine`` renders the page and asks an OpenAI-compatible endpoint (hosted
API, vLLM, or the built-in CPU OCR server). ``TextLayerEngine`` is the zero-cost
baseline: the PDF's own text layer as Markdown. Both return an :class:`OcrResult`.
:func:`engine_for` picks the engine, and its endpoint, by the model's kind and the
adapter's engine (MinerU2.5's layout then blocks: ``layout_engine.py``; Mistral OCR: ``mistral_engine.py``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any, Protocol

import openai
from prefect import get_run_logger
from prefect.exceptions import MissingContextError

from tasks.documents.render_pool import RenderPool
from tasks.ocr.batch_engine import BatchJournal, BatchPageEngine
from tasks.ocr.layout_engine import LayoutThenBlocksEngine
from tasks.ocr.mistral_engine import MistralOcrEngine
from tasks.ocr.model_targets import block_endpoint
from tasks.ocr.rate_limits import ProviderPacer
from tasks.ocr.request import FatalModelError, OcrClient, OcrResult, with_usage_of
from tracr.adapters.registry import GENERIC
from tracr.adapters.requests import build_messages
from tracr.adapters.retry_rules import Attempt, first_attempt, judge_reply
from tracr.adapters.spec import Adapter, EngineKind, ImagePrep, Sampling
from tracr.config.models import ApiModel, BlockModel, EndpointModel, KeyedModel, LocalServerModel, ProviderLimits, TextLayerModel
from tracr.config.render import RenderSettings
from tracr.documents.images import data_url_image_size
from tracr.errors import ErrorClass
from tracr.ratelimits.aimd import ConcurrencyChange
from tracr.ratelimits.budget import RateBudget, budget_base_name
from tracr.ratelimits.gate import AdaptiveGate
from tracr.run.plan import RunPlan
from tracr.run.retry import RetryPolicy
from tracr.serving.server_errors import ServerDeath, never_dies

__all__ = ["PageEngine", "ChatPageEngine", "TextLayerEngine", "ServedEndpoint", "engine_for"]


class ServedEndpoint(Protocol):
    """What a run needs from a local server it started or joined."""

    @property
    def base_url(self) -> str: ...

    @property
    def death(self) -> ServerDeath: ...


class PageEngine(Protocol):
    """Turns one page of one PDF into an :class:`OcrResult`."""

    async def run_page(self, pdf_path: str, page: int) -> OcrResult: ...


@dataclass
class ChatPageEngine:
    """Render in the pool, then ask as the model's family asks, and read the reply its way.

    The family's retry rule may ask again (another temperature, the page re-rendered
    rotated); transport retries happen inside the client. A reply the parser changed is
    kept raw beside the page; one it cannot read fails the page with the raw reply kept.
    """

    pool: RenderPool
    client: OcrClient
    render: RenderSettings
    adapter: Adapter
    keep_furniture: bool = False

    async def _image(self, pdf_path: str, page: int, rotation: int) -> str:
        render = self.render if not rotation else self.render.model_copy(update={"rotation": rotation})
        return await self.pool.data_url(pdf_path, page, render)

    async def _ask(self, pdf_path: str, page: int, attempt: Attempt, anchor: str) -> OcrResult:
        try:
            image_url = await self._image(pdf_path, page, attempt.rotation)
        except Exception as exc:  # a page PyMuPDF cannot draw fails alone
            return OcrResult(text=None, attempts=0, error=f"render failed: {exc}"[:300], error_class=ErrorClass.RENDER)
        width, height = data_url_image_size(image_url) if self.adapter.fills_image_size else (0, 0)
        messages = build_messages(self.adapter, image_url, width=width, height=height, anchor_text=anchor)
        sampling = self.adapter.sampling.request_kwargs()
        sampling["temperature"] = attempt.temperature
        if attempt.top_p is not None:
            sampling["top_p"] = attempt.top_p
        return await self.client.complete(messages, sampling)

    async def run_page(self, pdf_path: str, page: int) -> OcrResult:
        adapter = self.adapter
        anchor = await self.pool.anchor_text(pdf_path, page) if "{anchor_text}" in adapter.text else ""
        attempt = first_attempt(adapter)
        requests: list[OcrResult] = []
        while True:
            result = await self._ask(pdf_path, page, attempt, anchor)
            requests.append(replace(result))  # as reported, before the page's totals go into ``result``
            result = with_usage_of(result, requests)
            if not result.ok or adapter.parser == "none":
                return result
            raw = result.text or ""
            # Structured replies (HTML, DocTags) take milliseconds to read: off the event loop, so other pages stream on.
            judge = functools.partial(judge_reply, adapter, attempt, raw, result.finish_reason, keep_furniture=self.keep_furniture)
            verdict = judge() if adapter.parser == "plain" else await asyncio.to_thread(judge)
            if verdict.retry is not None:
                attempt = verdict.retry
                continue
            result.raw = raw
            if verdict.page is None:
                result.text, result.error, result.error_class = None, verdict.reason[:300], verdict.failure
                return result
            result.text = verdict.page.markdown
            result.dropped = verdict.page.dropped
            result.reply_meta = dict(verdict.page.meta) or None
            return result


class TextLayerEngine:
    """The PDF's embedded text as Markdown: no model, no cost, the floor to beat."""

    def __init__(self, pool: RenderPool, timeout_s: float) -> None:
        self.pool = pool
        self.timeout_s = timeout_s

    async def run_page(self, pdf_path: str, page: int) -> OcrResult:
        try:
            text, elapsed = await asyncio.wait_for(self.pool.timed_text_markdown(pdf_path, page), self.timeout_s)
        except TimeoutError:
            return OcrResult(
                text=None, attempts=1, error=f"text extraction took over {self.timeout_s:.0f}s", error_class=ErrorClass.TIMEOUT
            )
        except Exception as exc:
            return OcrResult(text=None, attempts=1, error=f"text extraction failed: {exc}"[:300], error_class=ErrorClass.RENDER)
        # The extraction's own time (a page waiting for a free worker is not slower); no tokens are streamed: no TTFT.
        return OcrResult(text=text, attempts=1, latency_s=elapsed, ttft_s=None, input_tokens=0, output_tokens=0, finish_reason="stop")


def _plan_adapter(plan: RunPlan) -> Adapter:
    """The plan's adapter; a plan made without one asks the generic way with the plan's own settings."""
    if plan.adapter is not None:
        return plan.adapter
    return GENERIC.with_overrides(
        prompt=plan.prompt,
        sampling=Sampling(temperature=plan.temperature, max_tokens=plan.max_tokens),
        image=ImagePrep(longest_side_px=plan.render.longest_side_px),
    )


def _env_key(spec: KeyedModel) -> str:
    """The key, read from the environment inside the run (never a parameter).

    A hosted API refuses to start without its variable; a local server may need none.
    """
    key = os.environ.get(spec.api_key_env) if spec.api_key_env else None
    if key:
        return key
    if isinstance(spec, ApiModel) and spec.api_key_env:
        raise FatalModelError(f"environment variable {spec.api_key_env} is not set", error_class=ErrorClass.AUTH)
    return "EMPTY"


async def _endpoint(
    spec: EndpointModel, stack: AsyncExitStack, serve: Callable[[], AbstractAsyncContextManager[ServedEndpoint]]
) -> tuple[str, str, ServerDeath]:
    """Base URL, key and server watch of a chat kind; a local server lives as long as ``stack``."""
    match spec:
        case BlockModel():
            block = await block_endpoint(spec)  # ModelTarget block: read here, inside the run
            return block.base_url, block.api_key, never_dies
        case ApiModel():
            return spec.base_url or "", _env_key(spec), never_dies
        case LocalServerModel():
            endpoint = await stack.enter_async_context(serve())
            return endpoint.base_url, _env_key(spec), endpoint.death
    raise TypeError(f"no endpoint for {spec.kind} models")


def _log_change(model: str, change: ConcurrencyChange) -> None:
    """One log line per move of a run's requests in flight, with its reason."""
    try:
        logger: logging.Logger | logging.LoggerAdapter[Any] = get_run_logger()
    except MissingContextError:
        logger = logging.getLogger(__name__)
    logger.info("%s: requests in flight %d -> %d (%s)", model, change.old, change.new, change.reason)


async def _request_controls(spec: EndpointModel, base_url: str, api_key: str) -> tuple[AdaptiveGate, ProviderPacer | None]:
    """The run's requests in flight (adaptive for hosted models) and the key's shared per-minute budget, if declared."""
    if not isinstance(spec, ProviderLimits):
        return AdaptiveGate(spec.max_concurrent_requests), None
    gate = AdaptiveGate(
        spec.max_concurrent_requests,
        adaptive=spec.adaptive_concurrency,
        latency_limit_s=spec.adaptive_latency_s,
        on_change=functools.partial(_log_change, spec.slug),
    )
    if not (spec.requests_per_minute or spec.tokens_per_minute):
        return gate, None
    provider = spec.provider if isinstance(spec, ApiModel) else "block"
    name = budget_base_name(provider, base_url, api_key, spec.rate_limit_key)
    pacer = ProviderPacer(RateBudget(name, spec.requests_per_minute, spec.tokens_per_minute))
    await pacer.ensure()
    return gate, pacer


def _batch_engine(plan: RunPlan, spec: EndpointModel, pool: RenderPool, adapter: Adapter, base_url: str, api_key: str) -> BatchPageEngine:
    assert isinstance(spec, ProviderLimits)
    client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=2, timeout=spec.timeout_s)
    return BatchPageEngine(
        pool=pool,
        client=client,
        model=spec.model,
        render=plan.render,
        adapter=adapter,
        journal=BatchJournal(plan.location.run_dir),
        max_pages=spec.max_concurrent_requests,
        poll_s=spec.batch_poll_s,
        retries=spec.retries,
        keep_furniture=spec.keep_furniture,
    )


@asynccontextmanager
async def engine_for(
    plan: RunPlan, pool: RenderPool, serve: Callable[[], AbstractAsyncContextManager[ServedEndpoint]]
) -> AsyncIterator[tuple[PageEngine, ServerDeath]]:
    """The page engine of the plan's model kind, and how to tell that its local server died.

    ``serve`` starts or joins the local server of kinds that serve locally; it lives
    exactly as long as the engine, and the client is closed before it stops.
    """
    spec = plan.model
    if isinstance(spec, TextLayerModel):
        yield TextLayerEngine(pool, spec.timeout_s), never_dies
        return
    async with AsyncExitStack() as stack:
        base_url, api_key, death = await _endpoint(spec, stack, serve)
        adapter = _plan_adapter(plan)
        if isinstance(spec, ProviderLimits) and spec.batch:  # the Batch API instead of live calls
            batch = _batch_engine(plan, spec, pool, adapter, base_url, api_key)
            stack.push_async_callback(batch.aclose)
            yield batch, death
            return
        gate, pacer = await _request_controls(spec, base_url, api_key)
        if adapter.engine is EngineKind.MISTRAL_OCR:  # POST /ocr, not a chat completion
            mistral = MistralOcrEngine(pool, spec, base_url, api_key)
            mistral.in_flight = gate  # adaptive like chat; its per-minute budget is not applied (docs/rate-limits.md)
            stack.push_async_callback(mistral.aclose)
            yield mistral, death
            return
        client = OcrClient(
            base_url=base_url,
            api_key=api_key,
            model=spec.model,
            max_concurrent_requests=spec.max_concurrent_requests,
            timeout_s=spec.timeout_s,
            policy=RetryPolicy(spec.retries, spec.retry_backoff_s, spec.retry_backoff_max_s),
            gate=gate,
            pacer=pacer,
        )
        stack.push_async_callback(client.aclose)
        if adapter.engine is EngineKind.LAYOUT_THEN_BLOCKS:  # MinerU2.5: a layout call, then one call per block
            yield LayoutThenBlocksEngine(pool, client, plan.render, adapter, spec.keep_furniture), death
        else:
            yield ChatPageEngine(pool, client, plan.render, adapter, spec.keep_furniture), death
