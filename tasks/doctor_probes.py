"""``tracr doctor``'s probes: the I/O behind each check (HTTP, NVML, the disk, Prefect).

Each probe returns plain data that ``tracr/doctor.py`` judges. Prefect is
imported only by the probes that need it (the API health check, block lookups).
Keys are sent to an endpoint's ``/models`` only to see whether it accepts them;
they are never returned, printed or stored.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import httpx

from tracr.config.job import JobConfig
from tracr.config.models import BlockModel, KeyedModel, LocalServerModel, TextLayerModel
from tracr.doctor import (
    Check,
    GpuProbe,
    Level,
    ModelsProbe,
    OutputsProbe,
    check_block,
    check_gpus,
    check_key,
    check_local_runtime,
    check_models_listing,
    check_outputs,
    check_package,
    check_prefect_api,
    check_python,
    check_storage,
    gpus_needed,
    model_label,
)
from tracr.serving.gpus import discover_gpus

__all__ = ["environment_checks", "config_checks", "probe_models", "probe_gpus", "probe_outputs", "package_version"]

PACKAGES = {
    "prefect": "orchestration",
    "openai": "the OCR client",
    "pymupdf": "PDF rendering",
    "duckdb": "indexing outputs",
}
HTTP_TIMEOUT_S = 10.0
PREFECT_TIMEOUT_S = 60.0  # an ephemeral server (no PREFECT_API_URL) takes a few seconds to start


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def probe_gpus() -> GpuProbe:
    """GPU names from NVML; an error string where there is no driver (as on CPU-only machines)."""
    inventory = discover_gpus()
    if inventory.error:
        return GpuProbe(error=inventory.error)
    return GpuProbe(names=[f"{g.index}:{g.name}" for g in inventory.gpus])


def probe_outputs(root: Path) -> OutputsProbe:
    """Is the outputs root (or the folder it will be created in) writable, and how much is free?"""
    root = root.resolve()
    existing = root
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".tracr-doctor-"):
            pass
        return OutputsProbe(root, existing, True, shutil.disk_usage(existing).free)
    except OSError as exc:
        return OutputsProbe(root, existing, False, 0, error=exc.strerror or str(exc))


async def probe_prefect_api() -> tuple[str | None, str | None]:
    """The configured API URL (env or profile) and the health check's error, if any."""
    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        return None, None
    async with get_client() as client:
        error = await client.api_healthcheck()
    return url, (f"{type(error).__name__}: {error}" if error is not None else None)


def probe_models(base_url: str, api_key: str | None, timeout_s: float = HTTP_TIMEOUT_S) -> ModelsProbe:
    """``GET <base_url>/models`` with the key, if any; the ids it lists."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.get(base_url.rstrip("/") + "/models", headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return ModelsProbe(error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    ids: list[str] = []
    if response.status_code == 200:
        try:
            ids = [str(item.get("id")) for item in response.json().get("data", []) if isinstance(item, dict)]
        except ValueError:
            return ModelsProbe(status=response.status_code, error="/models answered 200 with a body that is not JSON")
    return ModelsProbe(status=response.status_code, models=ids)


def environment_checks(outputs_root: Path, config: JobConfig | None) -> list[Check]:
    """Python, packages, Prefect API, GPUs, outputs root."""
    checks = [check_python()]
    checks += [check_package(name, package_version(name), why) for name, why in PACKAGES.items()]
    try:
        url, error = asyncio.run(asyncio.wait_for(probe_prefect_api(), PREFECT_TIMEOUT_S))
        checks.append(check_prefect_api(url, error))
    except (Exception, asyncio.CancelledError) as exc:  # a broken profile, a hung server: say so rather than crash
        checks.append(Check(Level.FAIL, "prefect api", f"cannot check the Prefect API: {type(exc).__name__}: {exc}"))
    needed, who = gpus_needed(config) if config is not None else (None, "")
    checks.append(check_gpus(probe_gpus(), needed, who))
    checks.append(check_outputs(probe_outputs(outputs_root)))
    checks.append(storage_check(outputs_root))
    return checks


def storage_check(outputs_root: Path) -> Check:
    """Probe the outputs root (when it exists) and judge its id as a job's storage check would, writing nothing on the server."""
    from prefect.settings import get_current_settings

    from tasks.outputs.storage_check import read_judgement
    from tracr.outputs.storage import probe_storage

    probe = probe_storage(outputs_root) if outputs_root.is_dir() else None
    if not get_current_settings().api.url:
        return check_storage(probe, None, "no Prefect API: the id other hosts published for this path was not checked")
    try:
        local_id = probe.root_id if probe is not None else None
        judgement = asyncio.run(asyncio.wait_for(read_judgement(outputs_root, local_id), PREFECT_TIMEOUT_S))
    except (Exception, asyncio.CancelledError) as exc:  # the API is down (reported above): the filesystem was still probed
        return check_storage(probe, None, f"cannot read the id published for this path: {type(exc).__name__}: {exc}")
    return check_storage(probe, judgement)


async def _lookup_blocks(names: list[str]) -> dict[str, object]:
    from tasks.ocr.model_targets import load_model_target

    return {name: await load_model_target(name) for name in dict.fromkeys(names)}


def config_checks(config: JobConfig, env: Mapping[str, str] | None = None) -> list[Check]:
    """Each model's preflight: key, block, endpoint reachable, model listed; local runtimes."""
    env = os.environ if env is None else env
    checks: list[Check] = []
    blocks: dict[str, object] = {}
    block_error: str | None = None
    names = [spec.block for spec in config.models if isinstance(spec, BlockModel)]
    if names:
        try:
            blocks = asyncio.run(asyncio.wait_for(_lookup_blocks(names), PREFECT_TIMEOUT_S))
        except (Exception, asyncio.CancelledError) as exc:
            block_error = f"{type(exc).__name__}: {exc}"
    for index, spec in enumerate(config.models):
        label = model_label(index, spec)
        if isinstance(spec, (LocalServerModel, TextLayerModel)):
            checks.append(check_local_runtime(label, spec, shutil.which("vllm"), package_version("rapidocr-onnxruntime")))
            continue
        if isinstance(spec, BlockModel):
            checks += _block_model_checks(label, spec, blocks.get(spec.block), block_error)
            continue
        key_check = check_key(label, spec, env)
        checks.append(key_check)
        key = _key_of(spec, env)
        checks += check_models_listing(label, spec.base_url or "", spec.model, probe_models(spec.base_url or "", key), key is not None)
    return checks


def _key_of(spec: KeyedModel, env: Mapping[str, str]) -> str | None:
    if spec.api_key is not None:
        return spec.api_key.get_secret_value()
    return env.get(spec.api_key_env) if spec.api_key_env else None


def _block_model_checks(label: str, spec: BlockModel, target: object, error: str | None) -> list[Check]:
    from blocks.model_target import ModelTarget

    if not isinstance(target, ModelTarget):
        return [check_block(label, spec.block, None if error else False, error)]
    checks = [check_block(label, spec.block, True)]
    key = target.api_key.get_secret_value() if target.api_key is not None else None
    checks.append(Check(Level.OK, f"{label} key", "held by the block" if key else "none in the block"))
    model = spec.model or target.model
    return checks + check_models_listing(label, target.base_url, model, probe_models(target.base_url, key), key is not None)


def run_doctor(config_path: str | None, outputs_root: Path, job_id: str | None = None) -> list[Check]:
    """Every check for ``tracr doctor [CONFIG]``: the environment, then the config and each model.

    The config is judged by the same validation ``tracr run`` uses, with the same
    environment, so doctor lists exactly the problems run would refuse it for; a
    config that parsed is preflighted model by model even when it has some.
    """
    from tracr.config.job import check_job_config_file

    config: JobConfig | None = None
    config_lines: list[Check] = []
    if config_path is not None:
        check = check_job_config_file(config_path, job_id=job_id)
        config = check.config
        if check.problems:
            config_lines += [Check(Level.FAIL, "config", problem) for problem in check.problems]
        elif config is not None:
            config_lines.append(Check(Level.OK, "config", f"{config_path}: valid, {len(config.models)} model(s), {len(check.pdfs)} PDF(s)"))
    checks = environment_checks(outputs_root, config) + config_lines
    if config is not None:
        checks += config_checks(config)
    return checks
