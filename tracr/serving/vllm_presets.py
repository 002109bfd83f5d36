"""Serve flags that common OCR models need under ``vllm serve``, matched by model name.

The flags live in the model registry (``tracr/adapters/registry.py``), one entry per
family, beside how the family is asked and read; a preset here is that entry's
``serve`` part, with a parameter count for the fit check when no ``config.json`` is
at hand. The job config wins: ``vllm_preset: none`` turns matching off, a named
preset forces one (a model's ``adapter`` also names its preset), and any flag given
in ``extra_vllm_args`` replaces the preset's.
"""

from __future__ import annotations

import re
from collections.abc import Set
from dataclasses import dataclass, field

from tracr.adapters.registry import ADAPTERS

__all__ = ["VllmPreset", "VLLM_PRESETS", "match_preset", "preset_by_name", "merge_serve_args", "size_from_name"]


@dataclass(frozen=True)
class VllmPreset:
    """What one model family needs from ``vllm serve`` (read from its registry entry)."""

    name: str
    pattern: str  # regex searched in the lower-cased model id
    args: tuple[str, ...] = ()
    limit_mm_per_prompt: dict[str, int] = field(default_factory=dict)
    params_b: float | None = None  # parameters, billions (vision tower included)
    note: str = ""


#: One preset per registry entry that says how to serve it (tracr/adapters/registry.py is the only source).
VLLM_PRESETS: tuple[VllmPreset, ...] = tuple(
    VllmPreset(a.name, a.match, a.serve.args, dict(a.serve.limit_mm_per_prompt), a.serve.params_b, a.family)
    for a in ADAPTERS
    if a.serve is not None
)

_SIZE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)b(?![a-z])", re.I)


def size_from_name(model: str) -> float | None:
    """Parameters in billions written in a model id (``Qwen2.5-VL-7B-Instruct`` → 7.0)."""
    sizes = [float(m) for m in _SIZE.findall(model.rsplit("/", 1)[-1])]
    return max(sizes) if sizes else None


def preset_by_name(name: str) -> VllmPreset:
    for preset in VLLM_PRESETS:
        if preset.name == name.lower():
            return preset
    raise KeyError(f"unknown vLLM preset {name!r} (choose from {', '.join(p.name for p in VLLM_PRESETS)}, or none)")


def match_preset(model: str, choice: str | None = None) -> VllmPreset | None:
    """The preset for ``model``: ``choice`` names one (or ``none``), else the first name match."""
    if choice is not None:
        return None if choice.lower() == "none" else preset_by_name(choice)
    lowered = model.lower()
    for preset in VLLM_PRESETS:
        if re.search(preset.pattern, lowered):
            return preset
    return None


def _flag_name(arg: str) -> str | None:
    if not arg.startswith("--"):
        return None
    name = arg.split("=", 1)[0][2:].replace("_", "-")
    return name[3:] if name.startswith("no-") else name


def _drop_flags(args: tuple[str, ...] | list[str], names: set[str]) -> list[str]:
    """``args`` without the flags in ``names`` (and the value following each)."""
    out: list[str] = []
    skip_value = False
    for arg in args:
        if skip_value:
            skip_value = False
            if not arg.startswith("--"):
                continue
        name = _flag_name(arg)
        if name in names:
            skip_value = "=" not in arg
            continue
        out.append(arg)
    return out


def merge_serve_args(preset_args: tuple[str, ...] | list[str], user_args: list[str], explicit: Set[str] = frozenset()) -> list[str]:
    """Preset flags, minus any the user sets (in ``user_args`` or ``explicit``), then the user's."""
    user_flags = {n for n in (_flag_name(a) for a in user_args) if n} | set(explicit)
    return _drop_flags(preset_args, user_flags) + list(user_args)
