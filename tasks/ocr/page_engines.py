"""How one page becomes text, per kind of model.

``ChatPageEngine`` renders the page and asks an OpenAI-compatible endpoint (hosted
API, vLLM, or the built-in CPU OCR server). ``TextLayerEngine`` is the zero-cost
baseline: the PDF's own text layer as Markdown. Both return an :class:`OcrResult`.
:func:`engine_for` picks the engine, and its endpoint, by the model's kind.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Protocol

from tasks.documents.render_pool import RenderPool
from tasks.ocr.model_targets import block_endpoint
from tasks.ocr.request import FatalModelError, OcrClient, OcrResult
from tracr.config.models import ApiModel, BlockModel, EndpointModel, KeyedModel, LocalServerModel, TextLayerModel
from tracr.config.render import RenderSettings
from tracr.errors import ErrorClass
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


class ChatPageEngine:
    """Render in the pool, then one streaming chat completion with the image."""

    def __init__(
        self, pool: RenderPool, client: OcrClient, render: RenderSettings, prompt: str, max_tokens: int, temperature: float
    ) -> None:
        self.pool = pool
        self.client = client
        self.render = render
        self.prompt = prompt
        self.max_tokens = max_tokens
        self.temperature = temperature

    async def run_page(self, pdf_path: str, page: int) -> OcrResult:
        try:
            image_url = await self.pool.data_url(pdf_path, page, self.render)
        except Exception as exc:  # a page PyMuPDF cannot draw fails alone
            return OcrResult(text=None, attempts=0, error=f"render failed: {exc}"[:300], error_class=ErrorClass.RENDER)
        return await self.client.ocr(image_url, prompt=self.prompt, max_tokens=self.max_tokens, temperature=self.temperature)


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
        client = OcrClient(
            base_url=base_url,
            api_key=api_key,
            model=spec.model,
            max_concurrent_requests=spec.max_concurrent_requests,
            timeout_s=spec.timeout_s,
            policy=RetryPolicy(spec.retries, spec.retry_backoff_s, spec.retry_backoff_max_s),
        )
        stack.push_async_callback(client.aclose)
        yield ChatPageEngine(pool, client, plan.render, plan.prompt, plan.max_tokens, plan.temperature), death
