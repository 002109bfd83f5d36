"""Cut a page image into strips RapidOCR reads at their own scale, and merge what it finds.

RapidOCR shrinks any image whose longest side passes 2000 px, and its detector
enlarges one whose shorter side is under 736 px. A dense page (a newspaper) is
shrunk until its text is a few pixels tall; a very tall, narrow page is blown up
many times over (tens of seconds, then nothing found). Full-width strips about
960 px tall, padded with white to the detector's minimum, keep text at the size
it was rendered. Strips overlap by more than a tall text line; each strip keeps
only the boxes whose centre lies in its own half of each overlap, so a line cut
by one strip's edge is taken whole from the other one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

#: Strip height in pixels: about what RapidOCR's detector is tuned for.
TILE_PX = 960
#: Overlap between neighbouring strips: more than the tallest text line expected.
OVERLAP_PX = 128
#: RapidOCR's detector enlarges images whose shorter side is below this (``Det.limit_side_len``).
DETECTOR_MIN_SIDE = 736

#: An OCR call on one image: RapidOCR's ``[points, text, score]`` triples, or None.
OcrCall = Callable[[np.ndarray], Sequence[Any] | None]


def strips(height: int, tile_px: int = TILE_PX, overlap_px: int = OVERLAP_PX) -> list[tuple[int, int]]:
    """Rows ``(top, bottom)`` of equal strips about ``tile_px`` tall, neighbours sharing ``overlap_px``."""
    if height <= tile_px:
        return [(0, height)]
    count = math.ceil((height - overlap_px) / (tile_px - overlap_px))
    step = (height - overlap_px) / count
    return [(round(i * step), min(height, round((i + 1) * step + overlap_px))) for i in range(count)]


def _pad(tile: np.ndarray, min_side: int) -> np.ndarray:
    """Pad with white on the bottom and right so neither side is below ``min_side`` (no enlarging, no shift)."""
    height, width = tile.shape[:2]
    pad_h, pad_w = max(0, min_side - height), max(0, min_side - width)
    if not pad_h and not pad_w:
        return tile
    widths = ((0, pad_h), (0, pad_w)) + ((0, 0),) * (tile.ndim - 2)
    return np.pad(tile, widths, constant_values=255)


def tiled_ocr(image: np.ndarray, ocr: OcrCall, tile_px: int = TILE_PX, overlap_px: int = OVERLAP_PX) -> list[Any]:
    """OCR ``image`` strip by strip; the boxes in page coordinates, each line once."""
    rows = strips(image.shape[0], tile_px, overlap_px)
    found: list[Any] = []
    for i, (top, bottom) in enumerate(rows):
        own_top = top + overlap_px / 2 if i else float("-inf")
        own_bottom = bottom - overlap_px / 2 if i < len(rows) - 1 else float("inf")
        for points, text, score in ocr(_pad(image[top:bottom], DETECTOR_MIN_SIDE)) or []:
            shifted = [[float(x), float(y) + top] for x, y in points]
            ys = [p[1] for p in shifted]
            if own_top <= (min(ys) + max(ys)) / 2 < own_bottom:
                found.append([shifted, text, score])
    return found
