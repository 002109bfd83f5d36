"""The GPUs of this machine, when it has any, for run metrics.

``nvidia-smi`` is asked once; machines without it (or without GPUs) report an
empty list rather than an error, since hosted-API runs need no GPU.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from typing import Any

__all__ = ["gpu_info"]


@functools.lru_cache(maxsize=1)
def _gpus() -> tuple[dict[str, Any], ...]:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return ()
    try:
        out = subprocess.run(
            [exe, "--query-gpu=index,name,memory.total,driver_version", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return ()
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 4:
            gpus.append({"index": int(parts[0]), "name": parts[1], "memory_mib": int(float(parts[2])), "driver": parts[3]})
    return tuple(gpus)


def gpu_info() -> list[dict[str, Any]]:
    """``[{index, name, memory_mib, driver}]`` from ``nvidia-smi``; ``[]`` when unknown."""
    return [dict(g) for g in _gpus()]
