"""Mistral OCR: not a chat endpoint. Each page goes to ``POST {base_url}/ocr`` as a one-page PDF.

The page is cut out in a render worker (PyMuPDF ``insert_pdf``) and sent as a ``data:application/pdf``
``document_url``; the JSON answer is read by :func:`mistral_ocr.parse_response` and kept whole as the
page's raw reply. Transport failures are retried as the chat client retries them (same policy, same
classes); a bad key or an unknown model stops the run.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import httpx

from tasks.documents.render_pool import RenderPool
from tasks.ocr.request import OcrResult, with_retries
from tracr.adapters.parsers.mistral_ocr import parse_response, request_body
from tracr.adapters.replies import ReplyFormatError
from tracr.config.models import EndpointModel
from tracr.errors import ErrorClass
from tracr.ratelimits.gate import AdaptiveGate
from tracr.run.retry import RetryPolicy

__all__ = ["MistralOcrEngine"]

#: Models from before ``extract_header``/``extract_footer`` (mistral-ocr-2512); whether they accept them is unconfirmed.
_NO_HEADER_FIELDS = re.compile(r"mistral-ocr-25(03|05)")


class MistralOcrEngine:
    """One ``POST /ocr`` per page, with bounded concurrency and the model's retry policy."""

    def __init__(self, pool: RenderPool, spec: EndpointModel, base_url: str, api_key: str) -> None:
        self.pool = pool
        self.model = spec.model
        self.url = base_url.rstrip("/") + "/ocr"
        self.timeout_s = spec.timeout_s
        self.policy = RetryPolicy(spec.retries, spec.retry_backoff_s, spec.retry_backoff_max_s)
        self.keep_furniture = spec.keep_furniture
        # Without furniture, ask for headers and footers apart so the parser can leave them out.
        self.header_footer = not spec.keep_furniture and not _NO_HEADER_FIELDS.search(spec.model.lower())
        self.in_flight: asyncio.Semaphore | AdaptiveGate = asyncio.Semaphore(spec.max_concurrent_requests)
        limits = httpx.Limits(max_connections=spec.max_concurrent_requests, max_keepalive_connections=spec.max_concurrent_requests)
        timeout = httpx.Timeout(spec.timeout_s, connect=min(30.0, spec.timeout_s))
        self._http = httpx.AsyncClient(headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout, limits=limits)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _post_once(self, body: dict[str, Any]) -> tuple[str, Any, float]:
        async with asyncio.timeout(self.timeout_s):
            started = time.perf_counter()
            response = await self._http.post(self.url, json=body)
            response.raise_for_status()
            return response.text, json.loads(response.text), time.perf_counter() - started

    async def run_page(self, pdf_path: str, page: int) -> OcrResult:
        try:
            document = await self.pool.page_pdf_data_url(pdf_path, page)
        except Exception as exc:  # a page PyMuPDF cannot copy fails alone
            return OcrResult(text=None, attempts=0, error=f"page extraction failed: {exc}"[:300], error_class=ErrorClass.RENDER)
        body = request_body(self.model, document, include_header_footer=self.header_footer)
        answer = await with_retries(lambda: self._post_once(body), self.model, self.policy, self.timeout_s, self.in_flight)
        if isinstance(answer, OcrResult):
            return answer
        (raw, data, latency), attempts = answer
        result = OcrResult(text=None, attempts=attempts, latency_s=latency, finish_reason="stop", raw=raw)
        try:
            parsed = parse_response(data, 0, keep_furniture=self.keep_furniture)
        except ReplyFormatError as exc:
            result.error, result.error_class = f"not Mistral OCR output: {exc.reason}"[:300], ErrorClass.UNPARSEABLE
            return result
        usage = data.get("usage_info") if isinstance(data, dict) else None
        result.text, result.dropped = parsed.markdown, parsed.dropped
        result.reply_meta = {**parsed.meta, **({"usage_info": usage} if isinstance(usage, dict) else {})}
        return result
