"""What a model family's registry entry holds: how to ask it, and how to read its answer.

An :class:`Adapter` is plain, frozen data: the request (system message, prompt,
part order, literal prefix, image preparation, sampling), the serve flags for
``vllm serve``, the reply parser, the family's retry rule, and where each setting
comes from. Engines (``tasks/ocr``) carry it out; nothing else knows a family.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

__all__ = [
    "Adapter",
    "EngineKind",
    "ImagePrep",
    "PartOrder",
    "RetryRule",
    "Sampling",
    "ServeFlags",
]


class PartOrder(StrEnum):
    """Where the page image goes in the one user message."""

    TEXT_FIRST = "text_first"
    IMAGE_FIRST = "image_first"
    IMAGE_ONLY = "image_only"  # no text part at all (LightOnOCR repeats any prompt it is given)


class EngineKind(StrEnum):
    """How many calls, and to which endpoint, a page takes."""

    CHAT = "chat"  # one chat completion per page
    LAYOUT_THEN_BLOCKS = "layout_then_blocks"  # MinerU2.5: a layout call, then one call per block
    MISTRAL_OCR = "mistral_ocr"  # POST /v1/ocr with the page as a document: not a chat endpoint


class RetryRule(StrEnum):
    """A family's own rule for a reply that came back but is not usable."""

    NONE = "none"
    OLMOCR = "olmocr"  # invalid front matter → next temperature; rotation invalid → re-render rotated
    CHANDRA = "chandra"  # repeated tail → retry hotter (temperature 0.3, top_p 0.95), up to 6 times
    DEEPSEEK = "deepseek"  # no end of sequence (cut at max_tokens) → the page is dropped, as the official script does


@dataclass(frozen=True, slots=True)
class ImagePrep:
    """How a page becomes the image: by longest side, shortest side or DPI, then bounded in pixels.

    ``exact_px`` squashes the page to a fixed square, as MinerU2.5's layout step does.
    """

    longest_side_px: int | None = 1288
    shortest_side_px: int | None = None
    dpi: float | None = None
    min_shortest_side_px: int | None = None
    max_pixels: int | None = None
    exact_px: int | None = None

    def describe(self) -> str:
        parts: list[str] = []
        if self.exact_px:
            parts.append(f"{self.exact_px}x{self.exact_px} px (aspect not kept)")
        if self.dpi:
            parts.append(f"{self.dpi:g} dpi")
        if self.shortest_side_px:
            parts.append(f"shortest side {self.shortest_side_px} px")
        if self.longest_side_px and not (self.dpi or self.shortest_side_px or self.exact_px):
            parts.append(f"longest side {self.longest_side_px} px")
        if self.min_shortest_side_px:
            parts.append(f"shortest side at least {self.min_shortest_side_px} px")
        if self.max_pixels:
            parts.append(f"at most {self.max_pixels / 1e6:.2f} Mpx")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Sampling:
    """Sampling settings; ``extra_body`` goes to vLLM as-is (``vllm_xargs``, ``skip_special_tokens``...)."""

    temperature: float = 0.0
    max_tokens: int = 4096
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    extra_body: Mapping[str, Any] = field(default_factory=dict)

    def request_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``chat.completions.create`` (stream settings aside)."""
        kwargs: dict[str, Any] = {"max_tokens": self.max_tokens, "temperature": self.temperature}
        if self.top_p is not None:
            kwargs["top_p"] = self.top_p
        if self.stop:
            kwargs["stop"] = list(self.stop)
        if self.extra_body:
            kwargs["extra_body"] = json.loads(json.dumps(dict(self.extra_body)))  # a deep, JSON-safe copy
        return kwargs


@dataclass(frozen=True, slots=True)
class ServeFlags:
    """What ``vllm serve`` needs for this family, and its size for the fit check."""

    args: tuple[str, ...] = ()
    limit_mm_per_prompt: Mapping[str, int] = field(default_factory=dict)
    params_b: float | None = None


@dataclass(frozen=True, slots=True)
class Adapter:
    """One OCR model family: matching, request, serve flags, reply parser, retry rule and sources.

    ``furniture`` lists the page furniture the family's reply marks (and its parser can drop);
    empty for families whose output does not mark it. ``sources`` maps a setting to where it
    comes from (repository and file, model card, recipe), shown by ``tracr models`` and the docs.
    """

    name: str
    family: str
    match: str  # regex searched in the lower-cased model id; "" matches nothing
    prompt: str = ""
    system: str | None = None
    order: PartOrder = PartOrder.TEXT_FIRST
    prefix: str = ""  # literal text put before the prompt (dots.ocr's image tokens)
    image: ImagePrep = field(default_factory=ImagePrep)
    sampling: Sampling = field(default_factory=Sampling)
    parser: str = "plain"
    retry: RetryRule = RetryRule.NONE
    engine: EngineKind = EngineKind.CHAT
    furniture: tuple[str, ...] = ()
    serve: ServeFlags | None = None
    fills_image_size: bool = False  # the prompt carries {width} and {height} of the rendered image
    sources: Mapping[str, str] = field(default_factory=dict)
    notes: str = ""

    @property
    def text(self) -> str:
        """The text part as sent (prefix and prompt), empty for an image-only request."""
        return "" if self.order is PartOrder.IMAGE_ONLY else self.prefix + self.prompt

    def with_overrides(self, **changes: Any) -> Adapter:
        """This entry with some settings replaced (a model's own prompt, sampling or image)."""
        return replace(self, **changes)

    def settings(self) -> dict[str, Any]:
        """Everything that decides the request and the reading of the reply, JSON-safe (no sources)."""
        data = asdict(self)
        data.pop("sources")
        data.pop("notes")
        data.pop("match")
        data["serve"] = None if self.serve is None else asdict(self.serve)
        return json.loads(json.dumps(data, default=str))

    @classmethod
    def from_settings(cls, data: Mapping[str, Any], sources: Mapping[str, str] | None = None) -> Adapter:
        """The adapter a run recorded with :meth:`settings` (re-parsing reads a finished run with it)."""
        serve = data.get("serve")
        return cls(
            name=data["name"],
            family=data.get("family", ""),
            match="",
            prompt=data.get("prompt", ""),
            system=data.get("system"),
            order=PartOrder(data.get("order", PartOrder.TEXT_FIRST)),
            prefix=data.get("prefix", ""),
            image=ImagePrep(**data.get("image", {})),
            sampling=Sampling(**{**data.get("sampling", {}), "stop": tuple(data.get("sampling", {}).get("stop", ()))}),
            parser=data.get("parser", "plain"),
            retry=RetryRule(data.get("retry", RetryRule.NONE)),
            engine=EngineKind(data.get("engine", EngineKind.CHAT)),
            furniture=tuple(data.get("furniture", ())),
            serve=None
            if serve is None
            else ServeFlags(tuple(serve.get("args", ())), serve.get("limit_mm_per_prompt", {}), serve.get("params_b")),
            fills_image_size=bool(data.get("fills_image_size", False)),
            sources=sources or {},
        )

    def digest(self, keep_furniture: bool = False) -> str:
        """A short digest of :meth:`settings` and the furniture choice, recorded with every run."""
        payload = json.dumps({"settings": self.settings(), "keep_furniture": keep_furniture}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]
