"""Provider presets: the ``base_url`` and key variable a hosted provider needs.

A preset only fills what the user left empty, so any field can still be overridden.
Local runtimes (``mode: local``) name how the server is obtained instead.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ApiPreset", "API_PRESETS", "LOCAL_RUNTIMES", "DEFAULT_LOCAL_RUNTIME"]


@dataclass(frozen=True)
class ApiPreset:
    """Endpoint and key variable of a hosted OpenAI-compatible provider."""

    base_url: str | None
    api_key_env: str | None


API_PRESETS: dict[str, ApiPreset] = {
    "openai": ApiPreset("https://api.openai.com/v1", "OPENAI_API_KEY"),
    "openrouter": ApiPreset("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    "gemini": ApiPreset("https://generativelanguage.googleapis.com/v1beta/openai/", "GEMINI_API_KEY"),
    "mistral": ApiPreset("https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
    "custom": ApiPreset(None, None),
}

#: ``mode: local`` runtimes. ``vllm`` starts ``vllm serve``; ``tracr-ocr`` starts the
#: built-in RapidOCR server on the CPU; ``pdf-text`` reads the PDF's own text layer.
LOCAL_RUNTIMES: tuple[str, ...] = ("vllm", "tracr-ocr", "pdf-text")
DEFAULT_LOCAL_RUNTIME = "vllm"
