"""The ``ModelTarget`` block: an OpenAI-compatible endpoint, its model and its key, kept in Prefect.

Operators who configure their Prefect estate through blocks register a target
once (UI or code) and name it in job configs (``models: [{block: my-gpt}]``).
The key is a ``SecretStr``: Prefect encrypts it at rest, hides it in the UI, and
tracr reads it only inside the model run that uses it, so it never becomes a
flow parameter, a result, an artifact or a log line.

Register the block type so it appears in the UI's block catalogue::

    prefect block register -m blocks.model_target
"""

from __future__ import annotations

from typing import ClassVar

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, field_validator

__all__ = ["ModelTarget", "BLOCK_TYPE_SLUG"]

BLOCK_TYPE_SLUG = "tracr-model-target"


class ModelTarget(Block):
    """An OCR model endpoint for tracr jobs: base URL, model name, key, and request defaults.

    A job config that names this block (``block: <name>``) gets ``base_url`` and
    ``model`` from it; ``max_concurrent_requests`` and ``timeout_s`` apply unless
    the config sets them for that model.
    """

    _block_type_name: ClassVar[str] = "tracr Model Target"
    _block_type_slug: ClassVar[str] = BLOCK_TYPE_SLUG
    _description: ClassVar[str] = (
        "An OpenAI-compatible OCR model target for tracr jobs: base URL, model name, API key (stored encrypted) and request defaults."
    )
    _code_example: ClassVar[str] = """
        from blocks.model_target import ModelTarget

        ModelTarget(base_url="https://api.openai.com/v1", model="gpt-4.1-mini", api_key="sk-...").save("my-gpt")
        # job config:  models: [{block: my-gpt}]
    """

    base_url: str = Field(..., description="OpenAI-compatible base URL, e.g. https://api.openai.com/v1 or http://gpu-box:8000/v1.")
    model: str = Field(..., min_length=1, description="Model name sent to the endpoint.")
    api_key: SecretStr | None = Field(None, description="API key; leave empty for endpoints that need none.")
    max_concurrent_requests: int = Field(16, ge=1, le=4096, description="Requests in flight, unless the job config sets it.")
    timeout_s: float = Field(300.0, gt=0, description="Per-request timeout in seconds, unless the job config sets it.")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https:// (got {value!r})")
        return value
