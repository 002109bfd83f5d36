"""Why a local model server failed, read from its log, with what to do about it.

vLLM (and the CUDA stack under it) fails in a handful of recognisable ways; a
run's error names the class and a hint next to the log's last lines, so a user
sees "out of GPU memory: lower max_model_len ..." instead of a 200-line trace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

__all__ = ["ServerErrorClass", "ServerDiagnosis", "classify_server_log", "HINTS"]


class ServerErrorClass(str, Enum):
    OUT_OF_GPU_MEMORY = "out_of_gpu_memory"
    UNSUPPORTED_CUDA_ARCH = "unsupported_cuda_arch"
    NO_GPU = "no_gpu"
    NOT_ENOUGH_GPUS = "not_enough_gpus"
    MODEL_NOT_FOUND = "model_not_found"
    PORT_IN_USE = "port_in_use"
    VLLM_NOT_INSTALLED = "vllm_not_installed"
    DOCKER_UNAVAILABLE = "docker_unavailable"
    IMAGE_NOT_FOUND = "image_not_found"
    TIMEOUT = "timeout"
    DIED_WHILE_SERVING = "died_while_serving"
    UNKNOWN = "unknown"


HINTS: dict[ServerErrorClass, str] = {
    ServerErrorClass.OUT_OF_GPU_MEMORY: (
        "the model does not fit: lower max_model_len, raise gpu_memory_utilization, use a quantised checkpoint "
        "(FP8/AWQ), or give it more GPUs with tensor_parallel_size"
    ),
    ServerErrorClass.UNSUPPORTED_CUDA_ARCH: (
        "this vLLM/PyTorch build has no kernels for this GPU: install a build for its compute capability, "
        "or pass --dtype float16 on GPUs older than Ampere (no bfloat16)"
    ),
    ServerErrorClass.NO_GPU: (
        "no usable NVIDIA GPU: check the driver (nvidia-smi) and CUDA_VISIBLE_DEVICES, "
        "or run a CPU build of vLLM with device: cpu"
    ),
    ServerErrorClass.NOT_ENOUGH_GPUS: "lower tensor_parallel_size × data_parallel_size, or run this model on a host with more GPUs",
    ServerErrorClass.MODEL_NOT_FOUND: (
        "the model id or path is wrong, or its weights cannot be fetched: check the name, set HF_TOKEN for gated "
        "models, or download it first (huggingface-cli download) when offline"
    ),
    ServerErrorClass.PORT_IN_USE: "another process took the server's port: run again (tracr picks a fresh free port)",
    ServerErrorClass.VLLM_NOT_INSTALLED: "install vLLM (pip install vllm), put `vllm` on PATH, or point TRACR_VLLM / vllm_executable at it",
    ServerErrorClass.DOCKER_UNAVAILABLE: "start the Docker engine (and the NVIDIA container toolkit), or use runtime: process",
    ServerErrorClass.IMAGE_NOT_FOUND: (
        "the model's docker_image is not on this engine: docker pull it (or docker load / build it), "
        "or fix docker_image in the config"
    ),
    ServerErrorClass.TIMEOUT: (
        "the server did not list the model in time: large downloads and compilation take long on first start; "
        "raise startup_timeout_s, or check the log for a hang"
    ),
    ServerErrorClass.DIED_WHILE_SERVING: (
        "the server exited in the middle of the run: see server.log for the last request it took; host memory (a killed "
        "process), a request it could not handle, or lower max_model_len / max_num_seqs are the usual suspects; "
        "`tracr run --resume` retries the failed pages on a fresh server"
    ),
    ServerErrorClass.UNKNOWN: "see the server log",
}

# Checked in order: the first class with a matching line wins (OOM before "RuntimeError" noise, etc.).
_PATTERNS: tuple[tuple[ServerErrorClass, re.Pattern[str]], ...] = tuple(
    (cls, re.compile(pattern, re.I))
    for cls, pattern in (
        (ServerErrorClass.VLLM_NOT_INSTALLED, r"is not installed or not on PATH|No module named '?vllm|vllm: (command )?not found"),
        (ServerErrorClass.DOCKER_UNAVAILABLE, r"Docker engine is not reachable|Cannot connect to the Docker daemon|Error while fetching server API version"),
        (ServerErrorClass.PORT_IN_USE, r"Address already in use|\[Errno 98\]|port \d+ is (already )?in use"),
        (
            ServerErrorClass.UNSUPPORTED_CUDA_ARCH,
            r"no kernel image is available for execution|sm_\d+ is not compatible with the current PyTorch|"
            r"Bfloat16 is only supported on GPUs with compute capability|not compatible with the current PyTorch installation|"
            r"CUDA error: invalid device function|unsupported (GPU|CUDA) architecture",
        ),
        (
            ServerErrorClass.OUT_OF_GPU_MEMORY,
            r"CUDA out of memory|OutOfMemoryError|No available memory for the cache blocks|"
            r"larger than the maximum number of tokens that can be stored in KV cache|"
            r"Free memory on device .* is less than desired GPU memory utilization|CUBLAS_STATUS_ALLOC_FAILED|"
            r"insufficient GPU memory|not enough (GPU )?memory",
        ),
        (
            ServerErrorClass.NO_GPU,
            r"No CUDA GPUs are available|Found no NVIDIA driver|Failed to infer device type|NVIDIA driver on your system is too old|"
            r"CUDA driver version is insufficient",
        ),
        (
            ServerErrorClass.MODEL_NOT_FOUND,
            r"Repository Not Found|RepositoryNotFoundError|is not a local folder and is not a valid model identifier|"
            r"HFValidationError|LocalEntryNotFoundError|GatedRepoError|401 Client Error|does not appear to have a file named|"
            r"Cannot find model module|No such file or directory: .*(config\.json|safetensors)|"
            r"We couldn't connect to 'https://huggingface\.co'|Invalid repository ID",
        ),
        (ServerErrorClass.TIMEOUT, r"not healthy after \d+(\.\d+)?s"),
    )
)


@dataclass(frozen=True)
class ServerDiagnosis:
    """The class of a server failure, the line that showed it, and a hint."""

    error_class: ServerErrorClass
    evidence: str | None
    hint: str

    def to_dict(self) -> dict[str, str | None]:
        return {"error_class": self.error_class.value, "evidence": self.evidence, "hint": self.hint}

    def annotate(self, message: str) -> str:
        """``message`` with ``[<class>] hint: …`` appended (once)."""
        tag = f"[{self.error_class.value}]"
        return message if tag in message else f"{message}\n{tag} hint: {self.hint}"


def classify_server_log(
    text: str, *, declared: ServerErrorClass | None = None, fallback: ServerErrorClass = ServerErrorClass.UNKNOWN
) -> ServerDiagnosis:
    """Classify a failure from the server's log (and tracr's own message about it).

    A ``declared`` class (one the caller already knows, e.g. from a preflight)
    wins over the log; ``fallback`` is what a log matching no pattern means.
    """
    if declared not in (None, ServerErrorClass.UNKNOWN):
        return ServerDiagnosis(declared, None, HINTS[declared])
    lines = text.splitlines()
    for cls, pattern in _PATTERNS:
        for line in reversed(lines):  # the last occurrence is closest to the crash
            if pattern.search(line):
                return ServerDiagnosis(cls, line.strip()[:500], HINTS[cls])
    return ServerDiagnosis(fallback, None, HINTS[fallback])
