"""MinerU2.5's two steps with one model: a layout call on the squashed page, then one call per block.

The layout call sends the page squashed to 1036×1036 with ``"\\nLayout Detection:"``; each block the
official client sends goes as a crop of the page (at the adapter's DPI: rotated, padded to 50:1, shorter
side at least 28 px) with its task prompt and sampling, all at once: the client's own semaphore bounds
the requests in flight. The page's raw record is one JSON text, ``{"layout": reply, "replies": [...]}``
with one entry per block of ``parse_layout(layout)`` (null: not sent), so the page can be re-read later.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from tasks.documents.render_pool import RenderPool
from tasks.ocr.request import OcrClient, OcrResult, with_usage_of
from tracr.adapters.parsers import mineru
from tracr.adapters.replies import ReplyFormatError
from tracr.adapters.requests import build_messages
from tracr.adapters.spec import Adapter
from tracr.config.render import RenderSettings
from tracr.errors import ErrorClass

__all__ = ["LayoutThenBlocksEngine"]


class _BlockFailed(Exception):
    """A block's call (or crop) failed: the page fails with its class."""

    def __init__(self, block: mineru.LayoutBlock, result: OcrResult) -> None:
        super().__init__(f"{block.type} block at {[round(v, 3) for v in block.bbox]}: {result.error}")
        self.result = result


@dataclass
class LayoutThenBlocksEngine:
    """Layout, then blocks, then :func:`mineru.assemble`; every call's attempts, tokens and time summed in the result."""

    pool: RenderPool
    client: OcrClient
    render: RenderSettings
    adapter: Adapter
    keep_furniture: bool = False

    async def _ask(self, image_url: str, prompt: str, step: str) -> OcrResult:
        messages = build_messages(self.adapter.with_overrides(prompt=prompt, prefix=""), image_url)
        return await self.client.complete(messages, {"max_tokens": self.adapter.sampling.max_tokens, **mineru.sampling_for(step)})

    async def _block(self, pdf_path: str, page: int, block: mineru.LayoutBlock, prompt: str) -> OcrResult:
        angle = block.angle if block.angle in (90, 180, 270) else 0
        try:
            crop = await self.pool.crop_data_url(
                pdf_path,
                page,
                block.bbox,
                self.render,
                angle=angle,
                min_side_px=mineru.MIN_IMAGE_EDGE,
                max_aspect=mineru.MAX_IMAGE_EDGE_RATIO,
            )
        except Exception as exc:  # a crop PyMuPDF cannot draw fails the page alone
            failed = OcrResult(text=None, attempts=0, error=f"render failed: {exc}"[:300], error_class=ErrorClass.RENDER)
            raise _BlockFailed(block, failed) from None
        result = await self._ask(crop, prompt, block.type)
        if not result.ok:
            raise _BlockFailed(block, result)
        return result

    async def run_page(self, pdf_path: str, page: int) -> OcrResult:
        size = mineru.LAYOUT_IMAGE_SIZE[0]  # a square: exact_px squashes both sides to it
        try:
            image = await self.pool.data_url(pdf_path, page, self.render.model_copy(update={"exact_px": size, "rotation": 0}))
        except Exception as exc:
            return OcrResult(text=None, attempts=0, error=f"render failed: {exc}"[:300], error_class=ErrorClass.RENDER)
        layout = await self._ask(image, mineru.LAYOUT_PROMPT, mineru.LAYOUT_STEP)
        if not layout.ok:
            return layout
        raw = layout.text or ""
        try:
            blocks = mineru.parse_layout(raw)
        except ReplyFormatError as exc:
            return _failed(layout, [layout], ErrorClass.UNPARSEABLE, f"not MinerU layout output: {exc.reason}", raw, [])
        replies: list[str | None] = [None] * len(blocks)
        sent = [(i, block, prompt) for i, block in enumerate(blocks) if (prompt := mineru.prompt_for(block)) is not None]
        tasks = [asyncio.ensure_future(self._block(pdf_path, page, block, prompt)) for _, block, prompt in sent]
        failure: _BlockFailed | None = None
        try:
            await asyncio.gather(*tasks)
        except _BlockFailed as exc:  # the first block that failed fails the page; the others are cancelled
            failure = exc
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        answered = {
            i: task.result() for (i, _, _), task in zip(sent, tasks, strict=True) if not task.cancelled() and task.exception() is None
        }
        for i, answer in answered.items():
            replies[i] = answer.text
        if failure is not None:
            error_class = failure.result.error_class or ErrorClass.UNKNOWN
            return _failed(layout, [layout, *answered.values(), failure.result], error_class, str(failure), raw, replies)
        parsed = mineru.assemble(zip(blocks, replies, strict=True), keep_furniture=self.keep_furniture)
        result = _summed(layout, [layout, *answered.values()], raw, replies)
        result.text, result.dropped = parsed.markdown, parsed.dropped
        result.reply_meta = {**parsed.meta, "sent": len(sent)}
        return result


def _summed(layout: OcrResult, results: list[OcrResult], raw: str, replies: list[str | None]) -> OcrResult:
    """The page's result: attempts, tokens and time of every call; the layout's time to first token; the raw record."""
    finish = "length" if any(r.finish_reason == "length" for r in results) else layout.finish_reason
    page = OcrResult(
        text=None,
        attempts=0,
        ttft_s=layout.ttft_s,
        finish_reason=finish,
        raw=json.dumps({"layout": raw, "replies": replies}, ensure_ascii=False),
    )
    return with_usage_of(page, results)


def _failed(
    layout: OcrResult, results: list[OcrResult], error_class: ErrorClass, error: str, raw: str, replies: list[str | None]
) -> OcrResult:
    result = _summed(layout, results, raw, replies)
    result.error, result.error_class = error[:300], error_class
    return result
