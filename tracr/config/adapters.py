"""Adapters in a job config: a model's choice of registry entry, and custom entries defined without code.

A custom adapter starts from a built-in entry (``base``, default ``generic``) and replaces
what it names: prompt, system message, part order, image size, sampling, parser.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tracr.adapters.parsing import parser_names
from tracr.adapters.registry import GENERIC, adapter_by_name, adapter_names
from tracr.adapters.spec import Adapter, ImagePrep, PartOrder, RetryRule, Sampling

__all__ = ["CustomAdapter", "RESERVED_ADAPTER_NAMES"]

RESERVED_ADAPTER_NAMES = frozenset({"none", "generic"})


class CustomImage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    longest_side_px: int | None = Field(None, ge=64, le=10000)
    shortest_side_px: int | None = Field(None, ge=64, le=10000)
    dpi: float | None = Field(None, gt=0, le=600)
    max_pixels: int | None = Field(None, ge=4096)


class CustomAdapter(BaseModel):
    """A job's own adapter for a model the registry does not know (docs/supported-models.md)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    base: str = Field("generic", description="The built-in entry this one starts from.")
    prompt: str | None = None
    system: str | None = None
    order: Literal["text_first", "image_first", "image_only"] | None = None
    prefix: str | None = None
    image: CustomImage | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    top_p: float | None = Field(None, gt=0, le=1)
    stop: list[str] | None = None
    extra_body: dict[str, Any] | None = None
    parser: str | None = None
    retry: Literal["none", "olmocr", "chandra", "deepseek"] | None = None

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_ADAPTER_NAMES or value in adapter_names():
            raise ValueError(f"{value!r} is a built-in adapter name; choose another")
        return value

    @field_validator("base")
    @classmethod
    def _known_base(cls, value: str) -> str:
        if value != GENERIC.name:
            try:
                adapter_by_name(value)
            except KeyError as exc:
                raise ValueError(exc.args[0]) from None
        return value

    @field_validator("parser")
    @classmethod
    def _known_parser(cls, value: str | None) -> str | None:
        if value is not None and value not in parser_names():
            raise ValueError(f"unknown parser {value!r} (choose from {', '.join(parser_names())})")
        return value

    def build(self) -> Adapter:
        base = GENERIC if self.base == GENERIC.name else adapter_by_name(self.base)
        changes: dict[str, Any] = {
            "name": self.name,
            "family": f"custom (from {base.name})",
            "match": "",
            "sources": {"all": "the job config"},
        }
        for key in ("prompt", "system", "prefix", "parser"):
            if getattr(self, key) is not None:
                changes[key] = getattr(self, key)
        if self.order is not None:
            changes["order"] = PartOrder(self.order)
        if self.retry is not None:
            changes["retry"] = RetryRule(self.retry)
        if self.image is not None:
            changes["image"] = ImagePrep(**self.image.model_dump())
        if any(v is not None for v in (self.temperature, self.max_tokens, self.top_p, self.stop, self.extra_body)):
            current = base.sampling
            changes["sampling"] = Sampling(
                temperature=current.temperature if self.temperature is None else self.temperature,
                max_tokens=self.max_tokens or current.max_tokens,
                top_p=current.top_p if self.top_p is None else self.top_p,
                stop=current.stop if self.stop is None else tuple(self.stop),
                extra_body=current.extra_body if self.extra_body is None else self.extra_body,
            )
        return base.with_overrides(**changes)
