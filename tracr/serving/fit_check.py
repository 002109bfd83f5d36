"""Will the model fit the GPUs it is about to get? (bench-race's GOOD / RISK / FAIL)

A memory-first estimate made before launch, so a model that cannot fit is refused
with the numbers instead of minutes later with a CUDA OOM trace:

* weights: parameters × bytes per parameter (from the model folder's
  ``config.json``, its safetensors files, a declared ``model_size_b`` or a preset);
* KV cache: 2 × layers × kv_heads × head_dim × dtype bytes × max_model_len per
  sequence;
* budget: the memory of the GPUs one replica spans (tensor_parallel_size of them)
  × ``gpu_memory_utilization``, less a fixed per-GPU allowance for activations and
  CUDA graphs.

FAIL: weights plus one full-length sequence exceed the budget (vLLM would refuse
to start). RISK: they fit, but not ``concurrent_seqs`` full-length sequences, or
the headroom is under 10%. GOOD otherwise. UNKNOWN when the size cannot be known.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any

__all__ = ["FitVerdict", "ModelShape", "FitReport", "check_fit", "shape_from_config", "shape_from_model_dir", "dtype_bytes"]

GIB = 2**30
#: Activations, CUDA graphs and the vision encoder's workspace, per GPU (vLLM profiles this; 1.5 GiB is typical for 1-8B VLMs).
OVERHEAD_PER_GPU_BYTES = int(1.5 * GIB)
RISK_HEADROOM = 0.10

_DTYPE_BYTES = {
    "float32": 4,
    "fp32": 4,
    "float": 4,
    "float16": 2,
    "fp16": 2,
    "half": 2,
    "bfloat16": 2,
    "bf16": 2,
    "float8": 1,
    "fp8": 1,
    "float8_e4m3fn": 1,
    "int8": 1,
    "int4": 0.5,
    "awq": 0.5,
    "gptq": 0.5,
}


class FitVerdict(str, Enum):
    GOOD = "GOOD"
    RISK = "RISK"
    FAIL = "FAIL"
    UNKNOWN = "UNKNOWN"


def dtype_bytes(name: str | None, default: float = 2.0) -> float:
    """Bytes per value for a dtype or quantisation name (``bfloat16`` → 2, ``fp8`` → 1)."""
    if not name:
        return default
    return float(_DTYPE_BYTES.get(str(name).lower().removeprefix("torch."), default))


@dataclass(frozen=True)
class ModelShape:
    """What memory a model needs: weights, and the KV cache per token."""

    weight_bytes: float
    kv_bytes_per_token: float | None = None
    source: str = ""


def _text_config(config: dict[str, Any]) -> dict[str, Any]:
    """VLMs nest the language model's settings (``text_config``, ``llm_config``)."""
    for key in ("text_config", "llm_config", "language_config"):
        if isinstance(config.get(key), dict) and config[key].get("num_hidden_layers"):
            return {**config, **config[key]}
    return config


def _quant_bytes(config: dict[str, Any]) -> float | None:
    quant = config.get("quantization_config") or {}
    if not quant:
        return None
    method = str(quant.get("quant_method", "")).lower()
    bits = quant.get("bits") or quant.get("weight_bits")
    if bits:
        return float(bits) / 8
    if "fp8" in method or "fp8" in str(quant.get("fmt", "")).lower():
        return 1.0
    return dtype_bytes(method, 1.0)


def kv_bytes_per_token(config: dict[str, Any], kv_dtype_bytes: float) -> float | None:
    """2 (K and V) × layers × kv_heads × head_dim × dtype bytes."""
    text = _text_config(config)
    layers = text.get("num_hidden_layers") or text.get("n_layer") or text.get("num_layers")
    heads = text.get("num_attention_heads") or text.get("n_head")
    hidden = text.get("hidden_size") or text.get("n_embd")
    if not (layers and heads and hidden):
        return None
    kv_heads = text.get("num_key_value_heads") or heads
    head_dim = text.get("head_dim") or hidden // heads
    return 2.0 * layers * kv_heads * head_dim * kv_dtype_bytes


def estimate_params(config: dict[str, Any]) -> float | None:
    """Parameters of a decoder from its shape (embeddings, attention, MLP), when not stated."""
    text = _text_config(config)
    hidden, layers = text.get("hidden_size"), text.get("num_hidden_layers")
    vocab, inter = text.get("vocab_size"), text.get("intermediate_size") or 4 * (text.get("hidden_size") or 0)
    heads = text.get("num_attention_heads")
    if not (hidden and layers and vocab and heads):
        return None
    kv_heads = text.get("num_key_value_heads") or heads
    head_dim = text.get("head_dim") or hidden // heads
    attention = hidden * head_dim * (2 * heads + 2 * kv_heads)
    mlp = 3 * hidden * inter
    embeddings = vocab * hidden * (1 if text.get("tie_word_embeddings") else 2)
    return float(layers * (attention + mlp) + embeddings)


def shape_from_config(
    config: dict[str, Any], *, dtype: str | None = None, kv_dtype: str | None = None, source: str = "config.json"
) -> ModelShape | None:
    """Weights and KV bytes from a Hugging Face ``config.json`` mapping."""
    params = config.get("num_parameters") or estimate_params(config)
    if not params:
        return None
    weight_b = _quant_bytes(config) or dtype_bytes(
        dtype or _text_config(config).get("torch_dtype") or config.get("torch_dtype") or config.get("dtype")
    )
    kv_b = dtype_bytes(kv_dtype) if kv_dtype and kv_dtype != "auto" else dtype_bytes(dtype or config.get("torch_dtype"), 2.0)
    if weight_b < 2 and not (kv_dtype and kv_dtype != "auto"):
        kv_b = 2.0  # quantised weights keep a 16-bit KV cache unless told otherwise
    return ModelShape(params * weight_b, kv_bytes_per_token(config, kv_b), source)


def shape_from_model_dir(path: Path, *, dtype: str | None = None, kv_dtype: str | None = None) -> ModelShape | None:
    """A local model folder: weights from its safetensors sizes when present, KV from ``config.json``."""
    config_path = path / "config.json"
    if not config_path.is_file():
        return None
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    shape = shape_from_config(config, dtype=dtype, kv_dtype=kv_dtype, source=str(config_path))
    weights = sum(p.stat().st_size for p in path.glob("*.safetensors"))
    if weights and dtype is None:
        kv = shape.kv_bytes_per_token if shape else kv_bytes_per_token(config, 2.0)
        return ModelShape(float(weights), kv, f"{path}/*.safetensors")
    return shape


@dataclass(frozen=True)
class FitReport:
    """A verdict with the numbers behind it (bytes), for the log, the error and run metadata."""

    verdict: FitVerdict
    message: str
    weight_gib: float | None = None
    kv_per_seq_gib: float | None = None
    need_min_gib: float | None = None
    need_concurrent_gib: float | None = None
    budget_gib: float | None = None
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = self.verdict.value
        return data


def _gib(value: float) -> float:
    return round(value / GIB, 2)


def check_fit(
    shape: ModelShape | None,
    gpu_memory_mib: list[int],
    *,
    tensor_parallel_size: int = 1,
    gpu_memory_utilization: float = 0.9,
    max_model_len: int | None = None,
    concurrent_seqs: int = 1,
) -> FitReport:
    """GOOD / RISK / FAIL for one replica spanning ``tensor_parallel_size`` of the given GPUs."""
    if shape is None:
        return FitReport(FitVerdict.UNKNOWN, "model size unknown (no config.json, model_size_b or preset): fit not checked")
    if not gpu_memory_mib:
        return FitReport(FitVerdict.FAIL, "no GPU to fit the model on", _gib(shape.weight_bytes), source=shape.source)
    span = sorted(gpu_memory_mib)[: max(1, tensor_parallel_size)]  # a replica is bounded by its smallest GPUs
    budget = len(span) * (min(span) * 2**20 * gpu_memory_utilization - OVERHEAD_PER_GPU_BYTES)
    kv_seq = (shape.kv_bytes_per_token or 0.0) * (max_model_len or 0)
    need_min = shape.weight_bytes + kv_seq
    need_conc = shape.weight_bytes + kv_seq * max(1, concurrent_seqs)
    numbers: dict[str, Any] = {
        "weight_gib": _gib(shape.weight_bytes),
        "kv_per_seq_gib": _gib(kv_seq),
        "need_min_gib": _gib(need_min),
        "need_concurrent_gib": _gib(need_conc),
        "budget_gib": _gib(budget),
        "source": shape.source,
    }
    detail = (
        f"weights {_gib(shape.weight_bytes)} GiB + KV {_gib(kv_seq)} GiB per {max_model_len or 0}-token sequence "
        f"vs budget {_gib(budget)} GiB ({len(span)} GPU(s) × {min(span) / 1024:.0f} GiB × {gpu_memory_utilization} "
        f"less {_gib(OVERHEAD_PER_GPU_BYTES)} GiB overhead each)"
    )
    if need_min > budget:
        return FitReport(FitVerdict.FAIL, f"does not fit: needs at least {_gib(need_min)} GiB; {detail}", **numbers)
    if need_conc > budget or need_min > (1 - RISK_HEADROOM) * budget:
        return FitReport(
            FitVerdict.RISK,
            f"tight: {_gib(need_min)} GiB for one sequence, {_gib(need_conc)} GiB for {concurrent_seqs} concurrent; {detail}",
            **numbers,
        )
    return FitReport(FitVerdict.GOOD, f"fits: {_gib(need_conc)} GiB for {concurrent_seqs} concurrent sequences; {detail}", **numbers)
