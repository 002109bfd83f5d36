"""tracr's one error model: every failure tracr can name is a :class:`TracrError`.

A :class:`TracrError` carries an :class:`ErrorClass` (recorded per page and per
run, counted in metrics, matched by automations) and an optional hint (what to do
about it). The CLI and the flows catch :class:`TracrError` in one place and print
``message (hint)`` as one line; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

__all__ = ["ErrorClass", "TracrError", "HINTS", "error_class_of"]


class ErrorClass(StrEnum):
    """Why something failed: a page request, a local server, a run or the input."""

    # A page request to a model endpoint.
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    MALFORMED = "malformed_response"
    UNPARSEABLE = "unparseable_reply"  # a reply not in its family's format, after the family's retries
    REPETITION = "repetition"  # a family that drops a page cut off without an end of sequence (DeepSeek-OCR)
    BAD_REQUEST = "bad_request"
    AUTH = "auth"
    NOT_FOUND = "not_found"
    RENDER = "render"
    WRITE = "write"
    # A local model server.
    OUT_OF_GPU_MEMORY = "out_of_gpu_memory"
    UNSUPPORTED_CUDA_ARCH = "unsupported_cuda_arch"
    NO_GPU = "no_gpu"
    NOT_ENOUGH_GPUS = "not_enough_gpus"
    MODEL_NOT_FOUND = "model_not_found"
    PORT_IN_USE = "port_in_use"
    VLLM_NOT_INSTALLED = "vllm_not_installed"
    DOCKER_UNAVAILABLE = "docker_unavailable"
    IMAGE_NOT_FOUND = "image_not_found"
    DIED_WHILE_SERVING = "died_while_serving"
    SERVER_START = "server_start"
    # Before or around the work.
    CONFIG = "config"
    INPUT = "input"
    PDF = "pdf"
    IDENTIFIER = "identifier"
    STATE = "state"
    BLOCK = "block"
    EXPORT = "export"
    PREFECT = "prefect"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


#: What to do about a class, where there is one thing to say whatever the cause.
HINTS: dict[ErrorClass, str] = {
    ErrorClass.OUT_OF_GPU_MEMORY: (
        "the model does not fit: lower max_model_len, raise gpu_memory_utilization, use a quantised checkpoint "
        "(FP8/AWQ), or give it more GPUs with tensor_parallel_size"
    ),
    ErrorClass.UNSUPPORTED_CUDA_ARCH: (
        "this vLLM/PyTorch build has no kernels for this GPU: install a build for its compute capability, "
        "or pass --dtype float16 on GPUs older than Ampere (no bfloat16)"
    ),
    ErrorClass.NO_GPU: (
        "no usable NVIDIA GPU: check the driver (nvidia-smi) and CUDA_VISIBLE_DEVICES, or run a CPU build of vLLM with device: cpu"
    ),
    ErrorClass.NOT_ENOUGH_GPUS: "lower tensor_parallel_size × data_parallel_size, or run this model on a host with more GPUs",
    ErrorClass.MODEL_NOT_FOUND: (
        "the model id or path is wrong, or its weights cannot be fetched: check the name, set HF_TOKEN for gated "
        "models, or download it first (huggingface-cli download) when offline"
    ),
    ErrorClass.PORT_IN_USE: "another process took the server's port: run again (tracr picks a fresh free port)",
    ErrorClass.VLLM_NOT_INSTALLED: "install vLLM (pip install vllm), put `vllm` on PATH, or point TRACR_VLLM / vllm_executable at it",
    ErrorClass.IMAGE_NOT_FOUND: (
        "the model's docker_image is not on this engine: docker pull it (or docker load / build it), or fix docker_image in the config"
    ),
    ErrorClass.DOCKER_UNAVAILABLE: "start the Docker engine (and the NVIDIA container toolkit), or use runtime: process",
    ErrorClass.TIMEOUT: (  # a local server that never became healthy; page timeouts carry their own message
        "the server did not list the model in time: large downloads and compilation take long on first start; "
        "raise startup_timeout_s, or check the log for a hang"
    ),
    ErrorClass.DIED_WHILE_SERVING: (
        "the server exited in the middle of the run: see server.log for the last request it took; host memory (a killed "
        "process), a request it could not handle, or lower max_model_len / max_num_seqs are the usual suspects; "
        "`tracr run --resume` retries the failed pages on a fresh server"
    ),
}


class TracrError(Exception):
    """A failure tracr can name: its class, its message, and what to do about it.

    Subclasses set :attr:`default_class`; a raise site may pass a more precise
    ``error_class`` (a server start that failed because the port was taken).
    """

    default_class: ClassVar[ErrorClass] = ErrorClass.UNKNOWN

    def __init__(self, message: str, *, error_class: ErrorClass | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error_class: ErrorClass = error_class or self.default_class
        self.hint: str | None = hint if hint is not None else HINTS.get(self.error_class)

    def one_line(self) -> str:
        """The message and its hint, as the CLI prints it."""
        text = " ".join(self.message.split()) if "\n" not in self.message.strip() else self.message.strip().splitlines()[0]
        return f"{text} ({self.hint})" if self.hint and self.hint not in self.message else text

    def __str__(self) -> str:
        return self.message


def error_class_of(exc: BaseException) -> ErrorClass:
    """The class of any exception: a :class:`TracrError`'s own, else ``unknown``."""
    return exc.error_class if isinstance(exc, TracrError) else ErrorClass.UNKNOWN
