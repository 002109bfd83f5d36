"""Launch commands for ``mode: local`` runtimes.

Each runtime becomes a :class:`ServerSpec` for the general lifecycle in
:mod:`tasks.local_server`; only the command line differs between them.
"""

from __future__ import annotations

import json
import sys

from tasks.local_server import ServerSpec, find_free_port
from tracr.config import ModelSpec
from tracr.layout import RunLocation

__all__ = ["server_spec_for", "vllm_command", "tracr_ocr_command"]


def tracr_ocr_command(model: ModelSpec, port: int) -> list[str]:
    """The built-in RapidOCR server, run with this Python."""
    return [sys.executable, "-m", "tracr.servers.rapidocr_server", "--host", "127.0.0.1", "--port", str(port), "--model-name", model.model]


def vllm_command(model: ModelSpec, port: int) -> list[str]:
    """``vllm serve`` with the model's parallelism, memory and length settings."""
    command = [
        "vllm", "serve", model.model,
        "--served-model-name", model.model,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--tensor-parallel-size", str(model.tensor_parallel_size),
        "--data-parallel-size", str(model.data_parallel_size),
        "--gpu-memory-utilization", str(model.gpu_memory_utilization),
        "--limit-mm-per-prompt", json.dumps({"video": 0}),
    ]  # fmt: skip
    if model.max_model_len:
        command += ["--max-model-len", str(model.max_model_len)]
    return command + list(model.extra_vllm_args)


def server_spec_for(model: ModelSpec, location: RunLocation) -> ServerSpec:
    """The server to start for a local model, on a free port, logging into the run folder."""
    port = find_free_port()
    if model.provider == "tracr-ocr":
        command = tracr_ocr_command(model, port)
    elif model.provider == "vllm":
        command = vllm_command(model, port)
    else:
        raise ValueError(f"runtime {model.provider!r} does not start a server")
    return ServerSpec(
        command=command,
        served_model=model.model,
        port=port,
        log_path=location.server_log,
        env={"OMP_NUM_THREADS": "1"},
        startup_timeout_s=model.startup_timeout_s,
    )
