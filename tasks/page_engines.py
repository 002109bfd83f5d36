"""How one page becomes text, per kind of model.

``ChatPageEngine`` renders the page and asks an OpenAI-compatible endpoint (hosted
API, vLLM, or the built-in CPU OCR server). ``TextLayerEngine`` is the zero-cost
baseline: the PDF's own text layer as Markdown. Both return an :class:`OcrResult`.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from tasks.ocr_request import OcrClient, OcrResult
from tasks.render_pool import RenderPool
from tracr.config.job import RenderSettings
from tracr.run.retry import ErrorClass

__all__ = ["PageEngine", "ChatPageEngine", "TextLayerEngine"]


class PageEngine(Protocol):
    """Turns one page of one PDF into an :class:`OcrResult`."""

    async def run_page(self, pdf_path: str, page: int) -> OcrResult: ...


class ChatPageEngine:
    """Render in the pool, then one streaming chat completion with the image."""

    def __init__(self, pool: RenderPool, client: OcrClient, render: RenderSettings, prompt: str, max_tokens: int, temperature: float) -> None:
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
            return OcrResult(text=None, attempts=1, error=f"text extraction took over {self.timeout_s:.0f}s", error_class=ErrorClass.TIMEOUT)
        except Exception as exc:
            return OcrResult(text=None, attempts=1, error=f"text extraction failed: {exc}"[:300], error_class=ErrorClass.RENDER)
        # The extraction's own time (a page waiting for a free worker is not slower); no tokens are streamed: no TTFT.
        return OcrResult(text=text, attempts=1, latency_s=elapsed, ttft_s=None, input_tokens=0, output_tokens=0, finish_reason="stop")
