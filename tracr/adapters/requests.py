"""The chat request a family is trained on: system message, part order, prefix, prompt.

Built as plain OpenAI chat messages, so the one call path serves every family.
"""

from __future__ import annotations

from typing import Any

from tracr.adapters.spec import Adapter, PartOrder

__all__ = ["build_messages", "prompt_text"]


def prompt_text(adapter: Adapter, *, width: int = 0, height: int = 0, anchor_text: str = "") -> str:
    """The text part: prefix and prompt, with the image size or the page's text layer filled in where the family asks."""
    text = adapter.text
    if adapter.fills_image_size:
        text = text.replace("{width}", str(width)).replace("{height}", str(height))
    if "{anchor_text}" in text:
        text = text.replace("{anchor_text}", anchor_text)
    return text


def build_messages(adapter: Adapter, image_url: str, *, width: int = 0, height: int = 0, anchor_text: str = "") -> list[dict[str, Any]]:
    """One user message with the image and the text in the family's order (a system message first if it has one)."""
    image: dict[str, Any] = {"type": "image_url", "image_url": {"url": image_url}}
    text: dict[str, Any] = {"type": "text", "text": prompt_text(adapter, width=width, height=height, anchor_text=anchor_text)}
    match adapter.order:
        case PartOrder.IMAGE_ONLY:
            content = [image]
        case PartOrder.IMAGE_FIRST:
            content = [image, text]
        case _:
            content = [text, image]
    messages: list[dict[str, Any]] = []
    if adapter.system is not None:
        messages.append({"role": "system", "content": adapter.system})
    messages.append({"role": "user", "content": content})
    return messages
