"""Render settings: how a page becomes the image sent to a model (job-wide or per model)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RenderSettings"]


class RenderSettings(BaseModel):
    """How a page becomes the image sent to a model."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    longest_side_px: int = Field(1288, ge=64, le=10000, description="Longest image side in pixels (olmOCR uses 1288).")
    format: Literal["png", "jpeg"] = "png"
    jpeg_quality: int = Field(90, ge=1, le=100)
