"""Render settings: how a page becomes the image sent to a model (job-wide, per model, or from its adapter)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializationInfo, SerializerFunctionWrapHandler, model_serializer

__all__ = ["RenderSettings"]

#: Size rules beyond the longest side; left out of the recorded config when unset, so older digests hold.
_SIZE_RULES = ("dpi", "shortest_side_px", "min_shortest_side_px", "max_pixels", "exact_px", "rotation")


class RenderSettings(BaseModel):
    """How a page becomes the image sent to a model.

    The size comes from the first rule set of ``exact_px`` (a square, aspect not kept),
    ``dpi``, ``shortest_side_px`` and ``longest_side_px``; ``min_shortest_side_px`` and
    ``max_pixels`` then bound it. A model's adapter sets these the way its family renders.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    longest_side_px: int = Field(1288, ge=64, le=10000, description="Longest image side in pixels (olmOCR uses 1288).")
    format: Literal["png", "jpeg"] = "png"
    jpeg_quality: int = Field(90, ge=1, le=100)
    dpi: float | None = Field(None, gt=0, le=600, description="Render at this DPI instead of a longest side.")
    shortest_side_px: int | None = Field(None, ge=64, le=10000, description="Scale so the shortest side has this size.")
    min_shortest_side_px: int | None = Field(None, ge=1, le=10000, description="Enlarge until the shortest side has at least this size.")
    max_pixels: int | None = Field(None, ge=4096, description="Shrink until the image has at most this many pixels.")
    exact_px: int | None = Field(None, ge=28, le=10000, description="Squash to this square (MinerU2.5's layout step).")
    rotation: int = Field(0, description="Degrees counter-clockwise the image is turned (olmOCR's rotation retry).")

    @model_serializer(mode="wrap")
    def _without_unset_rules(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in _SIZE_RULES:
            if not data.get(key):
                data.pop(key, None)
        return data

    def args(self) -> tuple[int, str, int, float | None, int | None, int | None, int | None, int | None, int]:
        """The render call's arguments, hashable (render-ahead matches pages by them)."""
        return (
            self.longest_side_px,
            self.format,
            self.jpeg_quality,
            self.dpi,
            self.shortest_side_px,
            self.min_shortest_side_px,
            self.max_pixels,
            self.exact_px,
            self.rotation,
        )
