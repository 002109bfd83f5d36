"""The environment a child process starts with: an allow list, never the parent's whole environment.

A ``tracr run`` holds every provider's key (``OPENAI_API_KEY``...), the
``TRACR_API_KEY_*`` variables made from keys written in configs, and Prefect's
credentials. Local servers run third-party code (``trust_remote_code`` model
presets), so a child gets only what its runtime needs:

* runtime basics, by name or prefix (:data:`RUNTIME_NAMES`, :data:`RUNTIME_PREFIXES`):
  paths, locale, temp folders, the Python environment, CUDA/NVIDIA/NCCL/ROCm,
  Hugging Face and vLLM settings, proxies and CA bundles;
* never a secret-shaped name among those (:func:`is_secret_name`: ``*KEY*``,
  ``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``, ``*CREDENTIAL*``, ``*AUTH*``...);
* plus the names the caller asks for (its own key, ``pass_env``, the host's
  ``TRACR_PASS_ENV``), secret-shaped or not, and the values the caller sets.

Pure: the parent environment is an argument, nothing is read or changed here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

__all__ = [
    "HOST_PASS_ENV",
    "RUNTIME_NAMES",
    "RUNTIME_PREFIXES",
    "child_environment",
    "container_environment",
    "host_pass_env",
    "is_runtime_name",
    "is_secret_name",
]

#: Host-wide extra names (comma-separated; ``NAME*`` matches a prefix) that every child also gets.
HOST_PASS_ENV = "TRACR_PASS_ENV"

RUNTIME_NAMES: frozenset[str] = frozenset(
    {
        # the process itself
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "TERM",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        "TEMP",
        "TMP",
        "LD_LIBRARY_PATH",
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
        "CONDA_DEFAULT_ENV",
        # thread pools of numpy, torch and onnxruntime
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        # accelerators outside the prefixes below
        "ROCR_VISIBLE_DEVICES",
        "HIP_VISIBLE_DEVICES",
        "LOCAL_RANK",
        # model downloads: offline switches and caches (HF_TOKEN is a secret: asked for by vLLM launches)
        "TRANSFORMERS_OFFLINE",
        "TRANSFORMERS_CACHE",
        "HUGGINGFACE_HUB_CACHE",
        "XDG_CACHE_HOME",
        "XDG_CONFIG_HOME",
        "XDG_RUNTIME_DIR",
        # networks that need a proxy or a private CA to fetch weights
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        # vLLM build and telemetry switches it reads besides VLLM_*
        "MAX_JOBS",
        "NVCC_THREADS",
        "DO_NOT_TRACK",
    }
)

#: Prefixes of runtime variables (locale, Python, CUDA, NCCL, torch, Triton, Hugging Face, vLLM).
RUNTIME_PREFIXES: tuple[str, ...] = (
    "LC_",
    "PYTHON",
    "CUDA_",
    "NVIDIA_",
    "NCCL_",
    "CUDNN_",
    "TORCH_",
    "TORCHINDUCTOR_",
    "PYTORCH_",
    "TRITON_",
    "HF_",
    "VLLM_",
    "OMP_",
    "KMP_",
    "MKL_",
)

_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|PASSPHRASE|CREDENTIAL|AUTH|COOKIE|SESSION|PRIVATE|SIGNATURE", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    """Whether a variable's name says it holds a secret (``HF_TOKEN``, ``VLLM_API_KEY``, ``PREFECT_API_AUTH_STRING``)."""
    return bool(_SECRET_NAME.search(name))


def is_runtime_name(name: str) -> bool:
    """Whether a variable is one a runtime may need (before the secret-name rule is applied)."""
    return name in RUNTIME_NAMES or name.startswith(RUNTIME_PREFIXES)


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatchcase(name, pattern) for pattern in patterns)


def host_pass_env(parent: Mapping[str, str]) -> tuple[str, ...]:
    """The patterns in ``TRACR_PASS_ENV`` (``"FOO,BAR_*"`` -> ``("FOO", "BAR_*")``)."""
    raw = parent.get(HOST_PASS_ENV, "")
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def child_environment(parent: Mapping[str, str], *, wanted: Iterable[str] = (), set_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child process started on this host.

    ``wanted``: names (or ``PREFIX*`` patterns) the child gets from ``parent`` even when
    secret-shaped (its own key, ``pass_env``); ``set_env``: values set for it (they win).
    """
    patterns = tuple(wanted)
    env = {
        name: value for name, value in parent.items() if (is_runtime_name(name) and not is_secret_name(name)) or _matches(name, patterns)
    }
    env.update(set_env or {})
    return env


def container_environment(
    parent: Mapping[str, str], *, wanted: Iterable[str] = (), set_env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A container's environment: only what was asked for (the image brings its own PATH, HOME...)."""
    patterns = tuple(wanted)
    env = {name: value for name, value in parent.items() if _matches(name, patterns)}
    env.update(set_env or {})
    return env
