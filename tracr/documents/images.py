"""Image facts read from bytes already at hand (no decoder): a rendered page's size."""

from __future__ import annotations

import base64
import struct

__all__ = ["image_size", "data_url_image_size"]


def image_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG or JPEG header; (0, 0) when neither."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(width), int(height)
            i += 2 + length
    return 0, 0


def data_url_image_size(url: str) -> tuple[int, int]:
    """:func:`image_size` of a ``data:image/...;base64,`` URL, decoding only its first bytes (whole for JPEG)."""
    payload = url.split(",", 1)[1] if "," in url else url
    head = base64.b64decode(payload[:64] if payload.startswith("iVBOR") else payload)
    return image_size(head)
