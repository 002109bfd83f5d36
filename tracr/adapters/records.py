"""What a run records about how its model was asked: enough to see it, compare it and re-parse with it."""

from __future__ import annotations

from typing import Any

from tracr.adapters.spec import Adapter

__all__ = ["adapter_record", "describe_request"]


def describe_request(adapter: Adapter) -> str:
    """One line on how a page is asked: parts in order, image, sampling."""
    if adapter.engine.value != "chat":
        return {
            "mistral_ocr": "POST /v1/ocr with the page as a one-page PDF",
            "layout_then_blocks": "layout call, then one call per block",
        }[adapter.engine.value]
    parts = {"text_first": "text, image", "image_first": "image, text", "image_only": "image only"}[adapter.order.value]
    system = "system + " if adapter.system else ""
    sampling = adapter.sampling
    extras = f", top_p {sampling.top_p:g}" if sampling.top_p is not None else ""
    if sampling.extra_body:
        extras += f", extra_body {', '.join(sorted(sampling.extra_body))}"
    return f"{system}{parts}; {adapter.image.describe() or 'job render'}; temperature {sampling.temperature:g}, max_tokens {sampling.max_tokens}{extras}"


def adapter_record(adapter: Adapter, keep_furniture: bool) -> dict[str, Any]:
    """The adapter as run metadata records it: name, digest, the settings themselves and the furniture choice."""
    return {
        "name": adapter.name,
        "family": adapter.family,
        "digest": adapter.digest(keep_furniture),
        "keep_furniture": keep_furniture,
        "parser": adapter.parser,
        "engine": adapter.engine.value,
        "request": describe_request(adapter),
        "settings": adapter.settings(),
    }
