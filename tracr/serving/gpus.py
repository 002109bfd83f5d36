"""Which GPUs this machine has: NVML discovery, or a declared inventory.

The one GPU probe of tracr: GPU slots, fit checks, ``tracr doctor`` and run
metrics all start from it. NVML is
asked once per call and every failure (no driver, no library, no device) means
"no GPU" rather than a crash, so API and CPU models still run on such machines.
``TRACR_GPUS`` (e.g. ``2x80GB`` or ``80GB,24GB``) declares GPUs instead, for tests
and dry runs on machines without one.
"""

from __future__ import annotations

import functools
import os
import re
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

from tracr.errors import ErrorClass, TracrError

__all__ = ["GpuInfo", "GpuInventory", "InventoryError", "discover_gpus", "parse_declared_gpus", "current_inventory", "gpu_info"]

DECLARED_ENV = "TRACR_GPUS"
_ITEM = re.compile(
    r"^(?:(?P<count>\d+)\s*[x×*]\s*)?(?:(?P<name>[A-Za-z][\w.-]*?)[-:])?(?P<mem>\d+(?:\.\d+)?)\s*(?P<unit>GB|GIB|G|MB|MIB|M)?$", re.I
)


class InventoryError(TracrError, ValueError):
    """A declared inventory (``TRACR_GPUS``) that cannot be read: as good as no GPU to plan with."""

    default_class = ErrorClass.NO_GPU


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as tracr plans with it (memory in MiB)."""

    index: int
    name: str
    memory_total_mib: int
    memory_free_mib: int
    uuid: str | None = None


@dataclass(frozen=True)
class GpuInventory:
    """The GPUs of this host and where that knowledge came from."""

    gpus: tuple[GpuInfo, ...] = ()
    source: str = "none"  # nvml | declared | none
    driver_version: str | None = None
    cuda_version: str | None = None
    error: str | None = field(default=None, compare=False)

    @property
    def count(self) -> int:
        return len(self.gpus)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "count": self.count,
            "driver_version": self.driver_version,
            "cuda_version": self.cuda_version,
            "error": self.error,
            "gpus": [asdict(g) for g in self.gpus],
        }


def _mib(value: float, unit: str | None) -> int:
    unit = (unit or "GB").upper()
    return int(value) if unit in ("MB", "MIB", "M") else int(value * 1024)


def parse_declared_gpus(text: str) -> GpuInventory:
    """``2x80GB`` / ``80GB,24GB`` / ``2xH100-80GB`` → a declared inventory."""
    gpus: list[GpuInfo] = []
    if text.strip() in ("0", "none"):
        return GpuInventory((), "declared", error="declared: no GPU")
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        match = _ITEM.match(part)
        if not match:
            raise InventoryError(f"{DECLARED_ENV}: cannot read {part!r}; write e.g. '2x80GB', '80GB,24GB' or '2xH100-80GB'")
        memory = _mib(float(match["mem"]), match["unit"])
        if memory <= 0:
            raise InventoryError(f"{DECLARED_ENV}: GPU memory must be positive in {part!r}")
        for _ in range(int(match["count"] or 1)):
            gpus.append(GpuInfo(len(gpus), match["name"] or "declared-gpu", memory, memory))
    if not gpus:
        raise InventoryError(f"{DECLARED_ENV}: no GPU in {text!r}")
    return GpuInventory(tuple(gpus), "declared")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def discover_gpus() -> GpuInventory:
    """Ask NVML for every GPU; any NVML failure is reported as an empty inventory."""
    try:
        with warnings.catch_warnings():  # the pynvml shim warns that nvidia-ml-py is the new name
            warnings.simplefilter("ignore", FutureWarning)
            import pynvml
    except ImportError as exc:
        return GpuInventory(source="none", error=f"pynvml not importable: {exc}")
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, NVMLError_DriverNotLoaded, ...
        return GpuInventory(source="none", error=f"NVML unavailable: {exc}")
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        try:
            cuda = pynvml.nvmlSystemGetCudaDriverVersion()
            cuda_version = f"{cuda // 1000}.{(cuda % 1000) // 10}"
        except Exception:
            cuda_version = None
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            try:
                uuid = _text(pynvml.nvmlDeviceGetUUID(handle))
            except Exception:
                uuid = None
            gpus.append(
                GpuInfo(index, _text(pynvml.nvmlDeviceGetName(handle)), int(memory.total) // 2**20, int(memory.free) // 2**20, uuid)
            )
        return GpuInventory(tuple(gpus), "nvml", driver, cuda_version)
    except Exception as exc:
        return GpuInventory(source="none", error=f"NVML query failed: {exc}")
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def current_inventory(env: dict[str, str] | None = None) -> GpuInventory:
    """The declared inventory when ``TRACR_GPUS`` is set, else what NVML finds."""
    declared = (env if env is not None else os.environ).get(DECLARED_ENV)
    if declared is not None and declared.strip():
        return parse_declared_gpus(declared)
    return discover_gpus()


@functools.lru_cache(maxsize=1)
def _physical_gpus() -> tuple[tuple[tuple[str, Any], ...], ...]:
    inventory = discover_gpus()
    return tuple(
        tuple({"index": g.index, "name": g.name, "memory_mib": g.memory_total_mib, "driver": inventory.driver_version}.items())
        for g in inventory.gpus
    )


def gpu_info() -> list[dict[str, Any]]:
    """``[{index, name, memory_mib, driver}]`` of this machine's real GPUs (NVML, asked once); ``[]`` when none."""
    return [dict(g) for g in _physical_gpus()]
