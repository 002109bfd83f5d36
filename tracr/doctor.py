"""``tracr doctor``'s judgements: what each probe result means, as OK / WARN / FAIL lines.

The probes themselves (HTTP, NVML, the disk, Prefect) live in ``tasks/doctor_probes.py``;
this module only turns their results into checks, so every verdict and message is
a plain function of its inputs. A FAIL is something that would stop a job (an
unreachable endpoint, a model the endpoint does not serve, a missing key); a WARN
is worth knowing but does not (no GPU when no model needs one, little disk left).
Key values are never part of a check: only whether a key is there.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from tracr.config.job import JobConfig, ModelSpec
from tracr.config.models import KeyedModel, LocalServerModel, OcrServerModel, TextLayerModel
from tracr.outputs.root_identity import RootJudgement
from tracr.outputs.storage import StorageProbe

__all__ = [
    "Level",
    "Check",
    "ModelsProbe",
    "GpuProbe",
    "OutputsProbe",
    "format_report",
    "exit_code",
    "check_python",
    "check_package",
    "check_prefect_api",
    "check_gpus",
    "check_outputs",
    "check_storage",
    "check_key",
    "check_models_listing",
    "check_local_runtime",
    "check_block",
    "model_label",
    "gpus_needed",
]

LOW_DISK_BYTES = 1 << 30  # warn below 1 GiB free
GIB = 1 << 30


class Level(str, Enum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    """One line of the report: a verdict, what was checked, and why."""

    level: Level
    name: str
    detail: str


@dataclass(frozen=True)
class ModelsProbe:
    """What ``GET <base_url>/models`` gave: a status and the listed ids, or a connection error."""

    status: int | None = None
    models: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class GpuProbe:
    """GPUs NVML sees (names), or why it could not look."""

    names: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class OutputsProbe:
    """The outputs root: the folder that exists (itself or a parent), writable or not, free bytes."""

    root: Path
    existing: Path
    writable: bool
    free_bytes: int
    error: str | None = None


def format_report(checks: Sequence[Check]) -> str:
    """Aligned lines: verdict, check name, reason."""
    width = max((len(c.name) for c in checks), default=0)
    return "\n".join(f"{c.level.value:<5} {c.name:<{width}}  {c.detail}" for c in checks)


def exit_code(checks: Sequence[Check]) -> int:
    """1 when anything would stop a job, else 0."""
    return 1 if any(c.level is Level.FAIL for c in checks) else 0


def check_python(version: tuple[int, ...] = tuple(sys.version_info[:3])) -> Check:
    text = ".".join(map(str, version))
    if version < (3, 11):
        return Check(Level.FAIL, "python", f"{text}: tracr needs Python 3.11 or newer")
    return Check(Level.OK, "python", text)


def check_package(name: str, version: str | None, why: str) -> Check:
    if version is None:
        return Check(Level.FAIL, name, f"not installed ({why}); run `pip install -e .`")
    return Check(Level.OK, name, version)


def check_prefect_api(url: str | None, error: str | None) -> Check:
    """``url`` None means no API is configured: ``tracr run`` then starts a temporary server."""
    if url is None:
        return Check(Level.OK, "prefect api", "no PREFECT_API_URL: ephemeral mode (tracr run starts a temporary local server)")
    if error is not None:
        return Check(Level.FAIL, "prefect api", f"{url} unreachable: {error}")
    return Check(Level.OK, "prefect api", f"{url} is healthy")


def check_gpus(probe: GpuProbe, needed: int | None, needed_by: str = "") -> Check:
    """No GPU is fine unless a model of the config needs one (vllm); ``needed`` None: no config given."""
    seen = len(probe.names)
    found = f"{seen} seen: " + ", ".join(probe.names) if seen else f"none seen ({probe.error or 'NVML reports 0 devices'})"
    if needed is not None and needed > seen:
        return Check(Level.FAIL, "gpus", f"{found}; {needed_by} needs {needed}")
    if seen:
        return Check(Level.OK, "gpus", found)
    if needed is None:
        return Check(Level.WARN, "gpus", f"{found}; only local vllm models need a GPU")
    return Check(Level.OK, "gpus", f"{found}; no model of this config needs one")


def check_outputs(probe: OutputsProbe) -> Check:
    where = str(probe.root) if probe.existing == probe.root else f"{probe.root} (to be created under {probe.existing})"
    if probe.error is not None or not probe.writable:
        return Check(Level.FAIL, "outputs", f"{where}: not writable ({probe.error or 'permission denied'})")
    free = f"{probe.free_bytes / GIB:.1f} GiB free"
    if probe.free_bytes < LOW_DISK_BYTES:
        return Check(Level.WARN, "outputs", f"{where}: writable, only {free}")
    return Check(Level.OK, "outputs", f"{where}: writable, {free}")


def check_storage(probe: StorageProbe | None, judgement: RootJudgement | None, why_not: str = "") -> Check:
    """The outputs root as a shared POSIX filesystem: its operations behave, and its id is the one other hosts use.

    ``probe`` None: the root does not exist yet; ``judgement`` None: the Prefect server could not be asked
    (``why_not`` says why). The verdict is the one ``tracr run``'s storage check reaches from the same records.
    """
    if probe is not None and not probe.ok:
        return Check(Level.FAIL, "storage", probe.summary())
    if judgement is None:
        found = probe.summary() if probe is not None else ""
        return Check(Level.WARN, "storage", "; ".join(part for part in (found, why_not or "not checked") if part))
    if not judgement.ok:
        return Check(Level.FAIL, "storage", judgement.refusal())
    behave = f"{', '.join(probe.checked)} behave; " if probe is not None else ""
    return Check(Level.OK, "storage", f"{judgement.root}: {behave}{judgement.describe()}")


def model_label(index: int, spec: ModelSpec) -> str:
    return f"models[{index}] {spec.slug}"


def check_key(label: str, spec: KeyedModel, env: Mapping[str, str]) -> Check:
    """Whether the key the model needs is there; never its value."""
    name = f"{label} key"
    if spec.api_key is not None:
        return Check(Level.WARN, name, "written in the config (works, but prefer api_key_env or a block)")
    if not spec.api_key_env:
        return Check(Level.OK, name, "none needed (no api_key_env)")
    if not env.get(spec.api_key_env):
        return Check(Level.FAIL, name, f"environment variable {spec.api_key_env} is not set")
    return Check(Level.OK, name, f"{spec.api_key_env} is set")


def check_block(label: str, block: str, found: bool | None, error: str | None = None) -> Check:
    """``found`` None means Prefect could not be asked."""
    name = f"{label} block"
    if found is None:
        return Check(Level.FAIL, name, f"cannot look up block {block!r}: {error}")
    if not found:
        return Check(
            Level.FAIL,
            name,
            f"no tracr-model-target block named {block!r} (register the type: prefect block register -m blocks.model_target)",
        )
    return Check(Level.OK, name, f"{block!r} found")


def _listed(model: str, ids: Sequence[str]) -> bool:
    """Gemini lists ``models/<name>``; everyone else the bare name."""
    return model in ids or f"models/{model}" in ids


def check_models_listing(label: str, base_url: str, model: str, probe: ModelsProbe, key_known: bool) -> list[Check]:
    """Endpoint reachable, then the model listed by ``/models``."""
    endpoint, listed = f"{label} endpoint", f"{label} model"
    if probe.error is not None:
        return [Check(Level.FAIL, endpoint, f"{base_url} unreachable: {probe.error}")]
    if probe.status in (401, 403):
        why = "key rejected" if key_known else "needs a key, and none is set"
        return [Check(Level.FAIL, endpoint, f"{base_url}: {why} (HTTP {probe.status})")]
    if probe.status == 404:
        return [
            Check(Level.OK, endpoint, f"{base_url} reachable"),
            Check(Level.WARN, listed, f"{base_url}/models does not exist here, so {model!r} cannot be confirmed"),
        ]
    if probe.status != 200:
        return [Check(Level.FAIL, endpoint, f"{base_url}/models answered HTTP {probe.status}")]
    checks = [Check(Level.OK, endpoint, f"{base_url} reachable")]
    if _listed(model, probe.models):
        checks.append(Check(Level.OK, listed, f"{model!r} listed by /models"))
    else:
        shown = ", ".join(probe.models[:8]) + (", …" if len(probe.models) > 8 else "")
        checks.append(Check(Level.FAIL, listed, f"{model!r} not listed by /models (serves: {shown or 'nothing'})"))
    return checks


def check_local_runtime(label: str, spec: LocalServerModel | TextLayerModel, vllm_path: str | None, rapidocr_version: str | None) -> Check:
    """Local models: what the run will start, and whether it can."""
    name = f"{label} runtime"
    if isinstance(spec, TextLayerModel):
        return Check(Level.OK, name, "pdf-text: reads the PDFs' text layer, no server")
    if isinstance(spec, OcrServerModel):
        if rapidocr_version is None:
            return Check(Level.FAIL, name, "tracr-ocr needs rapidocr-onnxruntime, which is not installed")
        return Check(Level.OK, name, f"tracr-ocr: built-in CPU server (rapidocr-onnxruntime {rapidocr_version}) started by the run")
    if vllm_path is None:
        return Check(Level.FAIL, name, "vllm is not installed or not on PATH")
    return Check(Level.OK, name, f"vllm at {vllm_path}, {spec.gpus_needed} GPU(s) per run")


def gpus_needed(config: JobConfig) -> tuple[int, str]:
    """The most GPUs one model of the config needs, and which model (a model needing more can never start)."""
    index, spec = max(enumerate(config.models), key=lambda item: item[1].gpus_needed)
    return spec.gpus_needed, model_label(index, spec)
