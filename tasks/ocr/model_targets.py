"""Model targets kept in Prefect blocks: checked when the job plans, opened inside the run.

A job config may name a :class:`~blocks.model_target.ModelTarget` block instead of
spelling out a target (``models: [{block: my-gpt}]``). Config validation cannot
reach Prefect, so the job flow calls :func:`resolve_model_blocks` before anything
starts: every named block must exist (one error lists all missing ones), and the
model name and request defaults are copied into the plan. The base URL and the key
are read by :func:`block_endpoint` inside the model run that uses them, so the key
never becomes a flow parameter, a result, an artifact or a log line.
"""

from __future__ import annotations

from dataclasses import dataclass

from blocks.model_target import BLOCK_TYPE_SLUG, ModelTarget
from tasks.ocr.request import FatalModelError
from tracr.config.job import JobConfig, ModelSpec
from tracr.config.models import BlockModel
from tracr.errors import ErrorClass, TracrError

__all__ = ["ModelBlockError", "BlockEndpoint", "load_model_target", "missing_model_blocks", "resolve_model_blocks", "block_endpoint"]

REGISTER_HINT = (
    "create it in the Prefect UI (Blocks → tracr Model Target) or with "
    "ModelTarget(base_url=..., model=..., api_key=...).save(NAME); "
    "register the block type once with `prefect block register -m blocks.model_target`"
)


class ModelBlockError(TracrError, ValueError):
    """A job config names a ModelTarget block that Prefect does not have."""

    default_class = ErrorClass.BLOCK


@dataclass(frozen=True)
class BlockEndpoint:
    """What a run needs from its block: where to send requests and with which key."""

    base_url: str
    api_key: str

    def __repr__(self) -> str:  # never show the key, even in a traceback
        return f"BlockEndpoint(base_url={self.base_url!r}, api_key=***)"


async def load_model_target(name: str) -> ModelTarget | None:
    """The saved block ``name``, or None when Prefect has no such block."""
    try:
        return await ModelTarget.aload(name)
    except ValueError as exc:  # Prefect's "Unable to find block document named ..."
        if "Unable to find block document" in str(exc):
            return None
        raise


async def missing_model_blocks(names: list[str]) -> list[str]:
    """The names among ``names`` that have no saved ModelTarget block."""
    return [name for name in dict.fromkeys(names) if await load_model_target(name) is None]


async def resolve_model_blocks(config: JobConfig) -> JobConfig:
    """Check every block the config names and copy each block's model and defaults into its spec.

    Fields the config sets for that model win over the block's defaults. Raises
    :class:`ModelBlockError` naming every missing block before any work starts.
    """
    specs = [spec for spec in config.models if isinstance(spec, BlockModel)]
    if not specs:
        return config
    targets = {name: await load_model_target(name) for name in dict.fromkeys(s.block for s in specs)}
    missing = [name for name, target in targets.items() if target is None]
    if missing:
        where = ", ".join(
            f"models[{i}].block {s.block!r}" for i, s in enumerate(config.models) if isinstance(s, BlockModel) and s.block in missing
        )
        raise ModelBlockError(f"no {BLOCK_TYPE_SLUG} block named {', '.join(map(repr, missing))} ({where}); {REGISTER_HINT}")
    models: list[ModelSpec] = []
    for spec in config.models:
        target = targets.get(spec.block) if isinstance(spec, BlockModel) else None
        if target is not None:
            update: dict[str, object] = {"model": spec.model or target.model}
            for field in ("max_concurrent_requests", "timeout_s"):
                if field not in spec.model_fields_set:
                    update[field] = getattr(target, field)
            spec = spec.model_copy(update=update)
        models.append(spec)
    return config.model_copy(update={"models": models})


async def block_endpoint(spec: BlockModel) -> BlockEndpoint:
    """Base URL and key of a block-backed model, loaded inside the run that uses them."""
    target = await load_model_target(spec.block)
    if target is None:
        raise FatalModelError(
            f"no {BLOCK_TYPE_SLUG} block named {spec.block!r} (deleted since the job planned?)", error_class=ErrorClass.AUTH
        )
    key = target.api_key.get_secret_value() if target.api_key is not None else ""
    return BlockEndpoint(base_url=target.base_url, api_key=key or "EMPTY")
