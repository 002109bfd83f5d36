"""Launch commands for ``mode: local`` runtimes.

Each runtime becomes a :class:`ServerSpec` for the general lifecycle in
:mod:`tasks.serving.process`; only the command line differs between them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys

from tasks.serving.process import ServerSpec, find_free_port
from tracr.config.models import LocalServerModel, OcrServerModel, VllmDockerModel, VllmModel, VllmProcessModel
from tracr.outputs.layout import RunLocation
from tracr.serving.vllm_presets import match_preset, merge_serve_args

__all__ = ["server_pass_env", "server_spec_for", "vllm_command", "vllm_executable", "vllm_serve_args", "serve_key", "tracr_ocr_command"]

VLLM_ENV = "TRACR_VLLM"
#: Secret-shaped variables vLLM itself reads: gated weights (HF_TOKEN) and the key it checks (VLLM_API_KEY).
VLLM_SECRETS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "VLLM_API_KEY")


def server_pass_env(model: LocalServerModel) -> tuple[str, ...]:
    """Names a model's server gets from tracr's environment beyond the allow list.

    Its own key (``api_key_env``, also a ``TRACR_API_KEY_*`` made from a key in the config),
    the model's ``pass_env``, and for vLLM the secrets vLLM reads. Never another model's key.
    """
    names = [model.api_key_env] if model.api_key_env else []
    if isinstance(model, VllmModel):
        names += VLLM_SECRETS
    return tuple(dict.fromkeys([*names, *model.pass_env]))


def tracr_ocr_command(model: OcrServerModel, port: int) -> list[str]:
    """The built-in RapidOCR server, run with this Python."""
    return [sys.executable, "-m", "tracr.servers.rapidocr_server", "--host", "127.0.0.1", "--port", str(port), "--model-name", model.model]


def vllm_executable(model: VllmProcessModel) -> list[str]:
    """The vLLM command: the model's ``vllm_executable``, else ``$TRACR_VLLM``, else ``vllm`` on PATH."""
    raw = model.vllm_executable or os.environ.get(VLLM_ENV) or "vllm"
    return shlex.split(raw)


def vllm_serve_args(model: VllmModel, port: int, host: str = "127.0.0.1") -> list[str]:
    """Everything after ``vllm``: ``serve <model>`` with tracr's flags, the preset's, then the user's."""
    preset = match_preset(model.model, model.preset_choice)
    limit_mm = {"video": 0, **(preset.limit_mm_per_prompt if preset else {})}
    args = [
        "serve",
        model.model,
        "--served-model-name",
        model.model,
        "--host",
        host,
        "--port",
        str(port),
        "--tensor-parallel-size",
        str(model.tensor_parallel_size),
        "--data-parallel-size",
        str(model.data_parallel_size),
        "--gpu-memory-utilization",
        str(model.gpu_memory_utilization),
        "--limit-mm-per-prompt",
        json.dumps(limit_mm),
    ]
    if model.max_model_len:
        args += ["--max-model-len", str(model.max_model_len)]
    explicit = {"max-model-len"} if model.max_model_len else set()
    return args + merge_serve_args(preset.args if preset else (), list(model.extra_vllm_args), explicit)


def vllm_command(model: VllmProcessModel, port: int) -> list[str]:
    """``vllm serve`` with the model's parallelism, memory and length settings, preset flags and extra args."""
    return vllm_executable(model) + vllm_serve_args(model, port)


def serve_key(model: LocalServerModel) -> str:
    """Identity of a server's settings: runs of a job with the same key can share one server."""
    settings: dict[str, object] = {"provider": model.provider, "model": model.model}
    if isinstance(model, VllmModel):
        settings |= {
            "runtime": model.runtime,
            "device": model.device,
            "tp": model.tensor_parallel_size,
            "dp": model.data_parallel_size,
            "util": model.gpu_memory_utilization,
            "max_model_len": model.max_model_len,
            "extra": list(model.extra_vllm_args),
            "preset": model.vllm_preset,
            "exe": vllm_executable(model) if isinstance(model, VllmProcessModel) else None,
            "image": model.docker_image if isinstance(model, VllmDockerModel) else None,
        }
    if model.pass_env:  # only when set, so configs without it keep their serve key
        settings["pass_env"] = sorted(model.pass_env)
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def server_spec_for(model: LocalServerModel, location: RunLocation, gpu_ids: tuple[int, ...] | None = None) -> ServerSpec:
    """The server to start for a local model, on a free port, logging into the run folder.

    ``gpu_ids`` (the reserved GPUs) become ``CUDA_VISIBLE_DEVICES``.
    """
    port = find_free_port()
    match model:
        case OcrServerModel():
            command = tracr_ocr_command(model, port)
        case VllmProcessModel():
            command = vllm_command(model, port)
        case _:
            raise ValueError(f"{model.kind} does not start a server process")
    return ServerSpec(
        command=command,
        served_model=model.model,
        port=port,
        log_path=location.server_log,
        env={"OMP_NUM_THREADS": "1", **({"CUDA_VISIBLE_DEVICES": ",".join(map(str, gpu_ids))} if gpu_ids is not None else {})},
        pass_env=server_pass_env(model),
        startup_timeout_s=model.startup_timeout_s,
    )
