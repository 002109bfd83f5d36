"""Checks made before a local server starts: is vLLM there, are there GPUs, will it fit.

They turn the common failures (no vLLM, no GPU, a model bigger than the
machine) into a clear run error before any process, container or GPU slot is
taken, while API and CPU models of the same job go on.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tasks.serving.process import ServerStartError
from tracr.config.models import VllmModel
from tracr.errors import HINTS, ErrorClass
from tracr.serving.fit_check import FitReport, ModelShape, check_fit, dtype_bytes, shape_from_model_dir
from tracr.serving.gpus import GpuInventory
from tracr.serving.vllm_presets import match_preset, size_from_name

__all__ = ["PreflightError", "check_executable", "check_gpu_request", "model_shape", "fit_for", "serve_flag"]


class PreflightError(ServerStartError):
    """The server was not started: a check before launch failed (the raise names which class)."""


def check_executable(command: list[str]) -> None:
    """The server's executable exists (a name on PATH, or a path)."""
    exe = command[0]
    found = shutil.which(exe) if os.sep not in exe else (exe if os.access(exe, os.X_OK) else None)
    if found is None:
        raise PreflightError(
            f"cannot start local server: {exe!r} is not installed or not on PATH [{ErrorClass.VLLM_NOT_INSTALLED.value}] "
            f"hint: {HINTS[ErrorClass.VLLM_NOT_INSTALLED]}",
            error_class=ErrorClass.VLLM_NOT_INSTALLED,
        )


def check_gpu_request(model: VllmModel, inventory: GpuInventory) -> None:
    """A GPU model on a host without GPUs, or needing more GPUs than the host has, fails here."""
    needed = model.gpus_needed
    if not needed:
        return
    if inventory.count == 0:
        why = f" ({inventory.error})" if inventory.error else ""
        raise PreflightError(
            f"{model.model} needs {needed} GPU(s) but this host has none{why}; local vLLM models need an NVIDIA GPU "
            "(or device: cpu with a CPU build of vLLM). Set TRACR_GPUS (e.g. 2x80GB) only to declare GPUs for dry runs.",
            error_class=ErrorClass.NO_GPU,
        )
    if needed > inventory.count:
        raise PreflightError(
            f"{model.model} needs {needed} GPU(s) (tensor_parallel_size {model.tensor_parallel_size} × data_parallel_size "
            f"{model.data_parallel_size}) but this host has {inventory.count}",
            error_class=ErrorClass.NOT_ENOUGH_GPUS,
        )


def serve_flag(model: VllmModel, flag: str) -> str | None:
    """The value of ``--flag`` in the model's extra args or preset (``--dtype``, ``--kv-cache-dtype``)."""
    preset = match_preset(model.model, model.preset_choice)
    args = list(preset.args if preset else ()) + list(model.extra_vllm_args)
    value = None
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value


def _hf_cache_dir(model_id: str) -> Path | None:
    home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    snapshots = home / "hub" / f"models--{model_id.replace('/', '--')}" / "snapshots"
    if snapshots.is_dir():
        for snap in sorted(snapshots.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
            if (snap / "config.json").is_file():
                return snap
    return None


def model_shape(model: VllmModel) -> ModelShape | None:
    """The model's memory shape from the best source at hand (folder, HF cache, declared size, preset, name)."""
    dtype = serve_flag(model, "--dtype")
    dtype = None if dtype == "auto" else dtype
    kv_dtype = serve_flag(model, "--kv-cache-dtype")
    path = Path(model.model).expanduser()
    folder = path if path.is_dir() else _hf_cache_dir(model.model)
    shape = shape_from_model_dir(folder, dtype=dtype, kv_dtype=kv_dtype) if folder else None
    if shape is not None:
        return shape
    preset = match_preset(model.model, model.preset_choice)
    lowered = model.model.lower()
    weight_b = (
        dtype_bytes(dtype)
        if dtype
        else (1.0 if "fp8" in lowered else 0.5 if any(q in lowered for q in ("awq", "gptq", "int4", "4bit")) else 2.0)
    )
    for size, source in (
        (model.model_size_b, "model_size_b"),
        (preset.params_b if preset else None, f"preset {preset.name}" if preset else ""),
        (size_from_name(model.model), "model name"),
    ):
        if size:
            return ModelShape(size * 1e9 * weight_b, None, source)
    return None


def fit_for(model: VllmModel, gpu_memory_mib: list[int]) -> FitReport:
    """The fit verdict of ``model`` on these GPUs (those of one replica count)."""
    return check_fit(
        model_shape(model),
        gpu_memory_mib,
        tensor_parallel_size=model.tensor_parallel_size,
        gpu_memory_utilization=model.gpu_memory_utilization,
        max_model_len=model.max_model_len or _preset_max_len(model),
        concurrent_seqs=min(model.max_concurrent_requests, 16),
    )


def _preset_max_len(model: VllmModel) -> int | None:
    value = serve_flag(model, "--max-model-len")
    return int(value) if value and value.isdigit() else None
