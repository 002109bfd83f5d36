"""tracr's built-in CPU OCR model ("tracr-ocr"): RapidOCR behind the OpenAI chat API.

It lets a benchmark run end to end on a machine without a GPU or API keys, and
it goes through exactly the same client path as any vLLM or hosted model.

    python -m tracr.servers.rapidocr_server --host 127.0.0.1 --port 0 --model-name tracr-ocr

prints ``TRACR_SERVER_READY port=N`` once listening.  The ONNX models load in
the background right after; until they are loaded ``GET /health`` and
``GET /v1/models`` answer 503 (500 if loading failed), and chat requests that
arrive meanwhile wait for the load.

OCR is CPU-heavy and RapidOCR is not meant to be called concurrently, so it
runs in a worker thread under a lock: one page at a time, event loop free.

RapidOCR's 180-degree text-line classifier is off by default (``--use-cls``
turns it on): on ordinary upright document pages it flips some long body-text
lines upside down, which then fail recognition and silently vanish.

Pages are read in full-width strips at the size they were rendered (see
:mod:`tracr.servers.ocr_tiling`; ``--no-tile`` sends the whole image in one
pass, as RapidOCR alone would): one pass shrinks a dense page's text below what
the recogniser reads and blows a very tall page up many times over.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tracr.servers import openai_protocol as oai
from tracr.servers.ocr_tiling import tiled_ocr

DEFAULT_MODEL_NAME = "tracr-ocr"


@dataclass
class _Box:
    """An OCR'd text fragment with its axis-aligned bounds."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def height(self) -> float:
        return max(self.y1 - self.y0, 1.0)


def _to_boxes(results: Sequence[Any] | None) -> list[_Box]:
    """Convert RapidOCR's ``[points, text, score]`` triples to boxes."""
    boxes = []
    for item in results or []:
        points, text = item[0], str(item[1]).strip()
        if not text:
            continue
        xs = [float(p[0]) for p in points]
        ys = [float(p[1]) for p in points]
        boxes.append(_Box(text, min(xs), min(ys), max(xs), max(ys)))
    return boxes


def reading_order_text(results: Sequence[Any] | None, block_gap: float = 1.0) -> str:
    """Rebuild page text from OCR boxes in reading order.

    Boxes overlapping vertically by at least half the smaller height form one
    line (sorted left to right, joined by spaces); lines are joined by "\\n",
    with a blank line where the gap between lines exceeds ``block_gap`` times
    the median line height (a paragraph/block break).  Multi-column layouts are
    not separated: this is a baseline, not a layout model.
    """
    boxes = sorted(_to_boxes(results), key=lambda b: (b.y0 + b.y1) / 2)
    lines: list[list[_Box]] = []
    bounds: list[tuple[float, float]] = []
    for box in boxes:
        if lines:
            top, bottom = bounds[-1]
            overlap = min(bottom, box.y1) - max(top, box.y0)
            if overlap >= 0.5 * min(box.height, bottom - top):
                lines[-1].append(box)
                bounds[-1] = (min(top, box.y0), max(bottom, box.y1))
                continue
        lines.append([box])
        bounds.append((box.y0, box.y1))
    if not lines:
        return ""
    typical = median(b - t for t, b in bounds) or 1.0
    out: list[str] = []
    for i, line in enumerate(lines):
        if i and bounds[i][0] - bounds[i - 1][1] > block_gap * typical:
            out.append("")
        out.append(" ".join(b.text for b in sorted(line, key=lambda b: b.x0)))
    return "\n".join(out)


#: RapidOCR's ``max_side_len`` when tiling: large enough that it never shrinks a strip.
_NO_SHRINK = 1_000_000


def _decode(image: bytes) -> Any:
    """The image's pixels as a BGR array (what RapidOCR decodes to); ValueError if it is not an image."""
    import cv2
    import numpy as np

    pixels = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
    if pixels is None:
        raise ValueError("not a decodable image")
    return pixels


class OcrEngine:
    """Loads RapidOCR once and runs it one page at a time off the event loop."""

    def __init__(self, threads: int = 1, use_cls: bool = False, tile: bool = True) -> None:
        self.threads = threads
        self.use_cls = use_cls
        self.tile = tile
        self._engine: Any = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._loaded = asyncio.Event()

    @property
    def ready(self) -> bool:
        return self._engine is not None

    @property
    def error(self) -> BaseException | None:
        return self._error

    def _load_sync(self) -> Any:
        from rapidocr_onnxruntime import RapidOCR

        # RapidOCR copies these global kwargs into the det/cls/rec onnxruntime sessions.
        options: dict[str, Any] = {"intra_op_num_threads": self.threads, "inter_op_num_threads": 1, "use_cls": self.use_cls}
        if self.tile:
            options["max_side_len"] = _NO_SHRINK  # strips are already the size to read: a wide one must not be shrunk
        return RapidOCR(**options)

    async def load(self) -> None:
        """Load the ONNX models in a thread; failures are kept for /health to report."""
        try:
            self._engine = await asyncio.to_thread(self._load_sync)
        except Exception as exc:  # reported via /health and chat errors
            self._error = exc
        finally:
            self._loaded.set()

    def read(self, image: bytes) -> str:
        """OCR one encoded image now, in this thread (the bench calls this directly)."""
        if self._engine is None:
            self._engine = self._load_sync()
        return self._ocr_sync(image)

    def _ocr_sync(self, image: bytes) -> str:
        pixels = _decode(image)
        with self._lock:
            if self.tile:
                results = tiled_ocr(pixels, lambda tile: self._engine(tile)[0])
            else:
                results, _elapsed = self._engine(pixels)
        return reading_order_text(results)

    async def ocr(self, image: bytes) -> str:
        """OCR one image and return its text in reading order."""
        await self._loaded.wait()
        if self._engine is None:
            raise oai.ProtocolError(503, f"OCR engine failed to load: {self._error}", "server_error")
        try:
            return await asyncio.to_thread(self._ocr_sync, image)
        except oai.ProtocolError:
            raise
        except Exception as exc:  # undecodable image and the like
            raise oai.ProtocolError(400, f"could not OCR the image: {exc}") from exc


def create_app(model_name: str = DEFAULT_MODEL_NAME, threads: int = 1, use_cls: bool = False, tile: bool = True) -> Starlette:
    """Build the Starlette app serving ``model_name`` with a RapidOCR engine."""
    engine = OcrEngine(threads, use_cls, tile)

    async def health(request: Request) -> Response:
        if engine.ready:
            return oai.json_response({"status": "ok"})
        if engine.error is not None:
            return oai.json_response({"status": "error", "detail": str(engine.error)}, 500)
        return oai.json_response({"status": "loading"}, 503)

    async def models(request: Request) -> Response:
        # Launchers poll /v1/models for readiness (as with vLLM), so list the model only once it can answer.
        if engine.ready:
            return oai.json_response(oai.models_payload([model_name]))
        if engine.error is not None:
            return oai.error_response(500, f"OCR engine failed to load: {engine.error}", "server_error")
        return oai.error_response(503, "OCR engine is loading", "server_error", "model_loading")

    async def chat(request: Request) -> Response:
        try:
            try:
                body = json.loads(await request.body())
            except ValueError as exc:
                raise oai.ProtocolError(400, f"request body is not valid JSON: {exc}") from exc
            req = oai.parse_chat_request(body)
            if req.model != model_name:
                raise oai.model_not_found(req.model)
            if not req.images:
                raise oai.ProtocolError(400, "no image in the request: send an image_url data: URL")
            text = await engine.ocr(req.images[0])
        except oai.ProtocolError as err:
            return err.response()
        text, cut = oai.truncate_tokens(text, req.max_tokens)
        finish = "length" if cut else "stop"
        if not req.stream:
            return oai.json_response(oai.chat_completion(model_name, text, finish, req.prompt_tokens))
        pieces = text.splitlines(keepends=True)
        body_iter = oai.stream_text(oai.StreamWriter(model_name), pieces, finish, req.include_usage, req.prompt_tokens)
        return StreamingResponse(body_iter, media_type="text/event-stream", headers=oai.SSE_HEADERS)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(engine.load())
        yield
        task.cancel()

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/v1/models", models),
            Route("/v1/chat/completions", chat, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """CLI entry point: parse args and serve until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--model-name", default=DEFAULT_MODEL_NAME)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--use-cls", action="store_true", help="enable the 180-degree line classifier")
    parser.add_argument("--no-tile", dest="tile", action="store_false", help="OCR the whole image in one pass (no strips)")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    oai.serve(create_app(args.model_name, args.threads, args.use_cls, args.tile), args.host, args.port, args.log_level)


if __name__ == "__main__":
    main()
