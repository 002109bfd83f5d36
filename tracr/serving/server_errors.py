"""Why a local model server failed, read from its log, with what to do about it.

vLLM (and the CUDA stack under it) fails in a handful of recognisable ways; a
run's error names the class and a hint next to the log's last lines, so a user
sees "out of GPU memory: lower max_model_len ..." instead of a 200-line trace.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from tracr.errors import HINTS, ErrorClass, TracrError

__all__ = ["ServerDiagnosis", "ServerDied", "ServerDeath", "classify_server_log", "never_dies", "NO_CAUSE"]


class ServerDied(TracrError, RuntimeError):
    """A local server exited while runs were using it; carries its class (from the log) and a hint."""

    default_class = ErrorClass.DIED_WHILE_SERVING


ServerDeath = Callable[[], ServerDied | None]
"""Polls a server: ``None`` while it serves, the :class:`ServerDied` error once it has exited."""


def never_dies() -> ServerDied | None:
    """The :data:`ServerDeath` of an endpoint with no process to watch (a hosted API, a container)."""
    return None


#: Classes that say only "it failed": a log that names the cause wins over them.
NO_CAUSE = frozenset({ErrorClass.UNKNOWN, ErrorClass.SERVER_START})
_SEE_THE_LOG = "see the server log"


def _hint(cls: ErrorClass) -> str:
    return HINTS.get(cls, _SEE_THE_LOG)


# Checked in order: the first class with a matching line wins (OOM before "RuntimeError" noise, etc.).
_PATTERNS: tuple[tuple[ErrorClass, re.Pattern[str]], ...] = tuple(
    (cls, re.compile(pattern, re.I))
    for cls, pattern in (
        (ErrorClass.VLLM_NOT_INSTALLED, r"is not installed or not on PATH|No module named '?vllm|vllm: (command )?not found"),
        (
            ErrorClass.DOCKER_UNAVAILABLE,
            r"Docker engine is not reachable|Cannot connect to the Docker daemon|Error while fetching server API version",
        ),
        (ErrorClass.PORT_IN_USE, r"Address already in use|\[Errno 98\]|port \d+ is (already )?in use"),
        (
            ErrorClass.UNSUPPORTED_CUDA_ARCH,
            r"no kernel image is available for execution|sm_\d+ is not compatible with the current PyTorch|"
            r"Bfloat16 is only supported on GPUs with compute capability|not compatible with the current PyTorch installation|"
            r"CUDA error: invalid device function|unsupported (GPU|CUDA) architecture",
        ),
        (
            ErrorClass.OUT_OF_GPU_MEMORY,
            r"CUDA out of memory|OutOfMemoryError|No available memory for the cache blocks|"
            r"larger than the maximum number of tokens that can be stored in KV cache|"
            r"Free memory on device .* is less than desired GPU memory utilization|CUBLAS_STATUS_ALLOC_FAILED|"
            r"insufficient GPU memory|not enough (GPU )?memory",
        ),
        (
            ErrorClass.NO_GPU,
            r"No CUDA GPUs are available|Found no NVIDIA driver|Failed to infer device type|NVIDIA driver on your system is too old|"
            r"CUDA driver version is insufficient",
        ),
        (
            ErrorClass.MODEL_NOT_FOUND,
            r"Repository Not Found|RepositoryNotFoundError|is not a local folder and is not a valid model identifier|"
            r"HFValidationError|LocalEntryNotFoundError|GatedRepoError|401 Client Error|does not appear to have a file named|"
            r"Cannot find model module|No such file or directory: .*(config\.json|safetensors)|"
            r"We couldn't connect to 'https://huggingface\.co'|Invalid repository ID",
        ),
        (ErrorClass.TIMEOUT, r"not healthy after \d+(\.\d+)?s"),
    )
)


@dataclass(frozen=True)
class ServerDiagnosis:
    """The class of a server failure, the line that showed it, and a hint."""

    error_class: ErrorClass
    evidence: str | None
    hint: str

    def to_dict(self) -> dict[str, str | None]:
        return {"error_class": self.error_class.value, "evidence": self.evidence, "hint": self.hint}

    def annotate(self, message: str) -> str:
        """``message`` with ``[<class>] hint: …`` appended (once)."""
        tag = f"[{self.error_class.value}]"
        return message if tag in message else f"{message}\n{tag} hint: {self.hint}"


def classify_server_log(text: str, *, declared: ErrorClass | None = None, fallback: ErrorClass = ErrorClass.UNKNOWN) -> ServerDiagnosis:
    """Classify a failure from the server's log (and tracr's own message about it).

    A ``declared`` class (one the caller already knows, e.g. from a preflight)
    wins over the log; ``fallback`` is what a log matching no pattern means.
    """
    if declared is not None and declared not in NO_CAUSE:
        return ServerDiagnosis(declared, None, _hint(declared))
    lines = text.splitlines()
    for cls, pattern in _PATTERNS:
        for line in reversed(lines):  # the last occurrence is closest to the crash
            if pattern.search(line):
                return ServerDiagnosis(cls, line.strip()[:500], _hint(cls))
    return ServerDiagnosis(fallback, None, _hint(fallback))
