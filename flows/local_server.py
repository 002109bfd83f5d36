"""The local model server lifecycle as one Prefect subflow: ``local-model-server``.

For a ``mode: local`` model it checks before launch (vLLM present, GPUs, fit),
reserves GPU slots (waiting visibly as ``waiting_resources`` / "WaitingForGPUs"),
starts the server (``vllm serve`` as a process or the vLLM container, or the
built-in CPU OCR server), waits until ``/v1/models`` lists the model, hands the
endpoint to the run, and on every exit (success, failure, exception, cancel)
stops the whole process group (or container) and releases the slots.

:class:`tasks.serving.shared.LocalServers` decides when a server is needed and
who shares it; this flow is how one comes up and goes down. A run gets its
endpoint with :func:`serve_local_model`:

    async with serve_local_model(plan, plan.location, recorder=recorder) as endpoint:
        client = OcrClient(base_url=endpoint.base_url, model=endpoint.served_model, ...)
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.runtime import flow_run as current_flow_run
from prefect.states import Running
from prefect.utilities.annotations import quote

from tasks.serving.containers import (
    check_docker_engine,
    start_vllm_container,
    stop_container,
    sweep_stale_containers,
    wait_container_healthy,
)
from tasks.serving.gpu_slots import GpuRequestTooLarge, gpu_host, reserve_gpus
from tasks.serving.preflight import PreflightError, check_executable, check_gpu_request, fit_for
from tasks.serving.process import ServerStartError, log_tail, start_server, stop_server, wait_until_healthy
from tasks.serving.registry import ServerRecord, process_cmdline, remove_record, stop_servers_of_flow_run, sweep_stale_servers, write_record
from tasks.serving.runtimes import serve_key, server_spec_for, vllm_serve_args
from tasks.serving.shared import LocalEndpoint, LocalServers, ServerSession
from tracr.config.job import ModelSpec
from tracr.config.models import VllmDockerModel, VllmModel, VllmProcessModel
from tracr.errors import ErrorClass
from tracr.outputs.layout import OutputLayout, RunLocation
from tracr.run.plan import RunPlan
from tracr.run.recorder import RunRecorder
from tracr.run.state import RunStatus
from tracr.serving.fit_check import FitVerdict
from tracr.serving.gpus import GpuInventory, InventoryError, current_inventory
from tracr.serving.server_errors import classify_server_log

__all__ = ["local_model_server_flow", "local_servers", "serve_local_model", "WAITING_STATE_NAME"]

WAITING_STATE_NAME = "WaitingForGPUs"
#: A cancelled server's process group must be gone within 10 s: SIGTERM, then SIGKILL after this.
STOP_GRACE_S = 8.0


def _owner_cmdline() -> list[str]:
    return process_cmdline(os.getpid()) or [sys.executable]


async def _set_flow_state(name: str, message: str) -> None:
    """Show the server subflow's state by name in the Prefect UI (best effort)."""
    run_id = current_flow_run.id
    if not run_id:
        return
    try:
        async with get_client() as client:
            await client.set_flow_run_state(run_id, Running(name=name, message=message), force=True)
    except Exception as exc:  # the UI label is cosmetic; the run goes on
        get_run_logger().debug("could not set state %s: %s", name, exc)


def _failure(exc: ServerStartError, log_path: Path) -> ServerStartError:
    """The error with its class and a hint appended (classified from the message and the server log)."""
    diagnosis = classify_server_log(f"{log_tail(log_path, 200)}\n{exc}", declared=exc.error_class)
    return ServerStartError(diagnosis.annotate(str(exc)), error_class=diagnosis.error_class, hint=diagnosis.hint)


def _inventory() -> GpuInventory:
    try:
        return current_inventory()
    except InventoryError as exc:
        raise PreflightError(str(exc), error_class=exc.error_class) from None


async def _preflight(session: ServerSession, inventory: GpuInventory | None) -> None:
    """Checks before anything starts; each failure names what to do."""
    logger = get_run_logger()
    model = session.model
    if isinstance(model, VllmDockerModel):
        info = await asyncio.to_thread(check_docker_engine)
        removed = await asyncio.to_thread(sweep_stale_containers)
        if removed:
            logger.warning("removed %d vLLM container(s) left behind by earlier runs: %s", len(removed), removed)
        session.note(docker=info)
    elif isinstance(model, VllmProcessModel):
        check_executable(server_spec_for(model, session.location).command)
    if inventory is not None and isinstance(model, VllmModel):  # only vLLM needs GPUs
        check_gpu_request(model, inventory)
        best = sorted((g.memory_total_mib for g in inventory.gpus), reverse=True)[: model.tensor_parallel_size]
        fit = fit_for(model, best)
        if fit.verdict == FitVerdict.FAIL:
            raise PreflightError(
                f"fit check FAIL for {model.model} even on this host's largest GPUs: {fit.message}",
                error_class=ErrorClass.OUT_OF_GPU_MEMORY,
            )
        logger.info("fit check (best case) for %s: %s", model.model, fit.verdict.value)


async def _record_fit(session: ServerSession, inventory: GpuInventory, gpu_ids: tuple[int, ...]) -> None:
    logger = get_run_logger()
    model = session.model
    if not isinstance(model, VllmModel):  # GPUs, and so a fit check, are vLLM's only
        return
    memory = [g.memory_total_mib for g in inventory.gpus if g.index in gpu_ids]
    fit = fit_for(model, memory)
    for recorder in session.recorders:
        recorder.data["fit_check"] = fit.to_dict()
        recorder.write()
    if fit.verdict == FitVerdict.FAIL:
        raise PreflightError(
            f"fit check FAIL for {model.model} on GPUs {list(gpu_ids)}: {fit.message}", error_class=ErrorClass.OUT_OF_GPU_MEMORY
        )
    if fit.verdict == FitVerdict.RISK:
        logger.warning("fit check RISK for %s on GPUs %s: %s", model.model, list(gpu_ids), fit.message)
    else:
        logger.info("fit check %s for %s: %s", fit.verdict.value, model.model, fit.message)


@asynccontextmanager
async def _gpu_slots(session: ServerSession, inventory: GpuInventory | None, outputs_root: Path) -> AsyncIterator[tuple[int, ...] | None]:
    """Reserve the model's GPUs (or none); waiting is visible in run metadata and in Prefect."""
    needed = session.model.gpus_needed
    if inventory is None or not needed:
        yield None
        return
    logger = get_run_logger()
    model = session.model
    waited = False

    async def on_wait(usage: dict[int, int]) -> None:
        nonlocal waited
        waited = True
        busy = [i for i, used in usage.items() if used]
        message = f"{model.model} waits for {needed} free GPU(s) of {inventory.count}; busy now: {busy}"
        logger.info(message)
        session.set_status(RunStatus.WAITING_RESOURCES)
        session.note(status="waiting_resources", waiting_since=time.time())
        await _set_flow_state(WAITING_STATE_NAME, message)
        try:
            await acreate_markdown_artifact(
                f"**{model.model}** is waiting for {needed} GPU(s).\n\nBusy GPUs: {busy} of {inventory.count} on `{gpu_host()}`.",
                description="waiting for GPUs",
            )
        except Exception:
            pass

    run_id = current_flow_run.id
    try:
        async with reserve_gpus(
            inventory,
            needed,
            holder_flow_run_id=uuid.UUID(run_id) if run_id else None,
            on_wait=on_wait,
            queue_dir=OutputLayout(outputs_root).gpu_queue_dir(gpu_host()),  # first come, first served
        ) as reservation:
            session.note(gpus=list(reservation.indices), gpu_limits=list(reservation.limit_names), gpu_wait_s=reservation.waited_s)
            logger.info("%s got GPU(s) %s after %.1fs", model.model, list(reservation.indices), reservation.waited_s)
            if waited:
                await _set_flow_state("Running", f"got GPUs {list(reservation.indices)}")
            yield reservation.indices
    except GpuRequestTooLarge as exc:
        raise PreflightError(f"{model.model}: {exc}", error_class=exc.error_class) from None


async def _run_process(session: ServerSession, gpu_ids: tuple[int, ...] | None, outputs_root: Path) -> None:
    """Start the server process, hand out the endpoint, wait for release, always stop it."""
    model = session.model
    spec = server_spec_for(model, session.location, gpu_ids)
    if not model.gpus_needed and "CUDA_VISIBLE_DEVICES" in spec.env:
        spec.env.pop("CUDA_VISIBLE_DEVICES")
    session.note(runtime=model.provider, command=spec.command, port=spec.port, log=spec.log_path.name, status="starting")
    started = time.perf_counter()
    handle = start_server(spec)
    record: Path | None = None
    try:
        record = write_record(
            outputs_root,
            ServerRecord(
                key=serve_key(model),
                pid=handle.pid,
                pgid=handle.pid,
                port=spec.port,
                command=spec.command,
                owner_pid=os.getpid(),
                owner_cmdline=_owner_cmdline(),
                flow_run_id=current_flow_run.id,
            ),
        )
        session.note(pid=handle.pid)
        await wait_until_healthy(handle)
        session.note(status="healthy", startup_s=round(time.perf_counter() - started, 3))
        session.exit_code, session.log_path = handle.process.poll, spec.log_path
        session.ready.set_result(LocalEndpoint(spec.base_url, spec.served_model, gpu_ids, False, str(spec.log_path), session.death))
        await _until_released(session)
    finally:
        await asyncio.shield(asyncio.to_thread(stop_server, handle, STOP_GRACE_S))
        remove_record(record)
        session.note(status="stopped", exit_code=handle.process.returncode)


async def _until_released(session: ServerSession) -> None:
    """Wait until the last run leaves, noticing (and recording) a server that dies meanwhile."""
    while not session.release.is_set():
        try:
            await asyncio.wait_for(session.release.wait(), timeout=1.0)
        except TimeoutError:
            session.death()


async def _run_container(session: ServerSession, gpu_ids: tuple[int, ...] | None) -> None:
    model = session.model
    if not isinstance(model, VllmDockerModel):
        raise TypeError(f"{model.kind} does not run in a container")
    labels = {"flow-run-id": str(current_flow_run.id or ""), "serve-key": serve_key(model), "owner-pid": str(os.getpid())}
    session.note(runtime="docker", image=model.docker_image, status="starting", log=session.location.server_log.name)
    started = time.perf_counter()
    server = await start_vllm_container(model, vllm_serve_args(model, 0), gpu_ids, session.location.server_log, labels)
    try:
        session.note(container=server.container_id, port=server.port, command=server.command, gpu_request=server.gpu_request)
        await wait_container_healthy(server)
        session.note(status="healthy", startup_s=round(time.perf_counter() - started, 3))
        session.ready.set_result(LocalEndpoint(server.base_url, server.served_model, gpu_ids, False, str(server.log_path)))
        await _until_released(session)
    finally:
        await asyncio.shield(stop_container(server))
        session.note(status="stopped")


def _stop_on_cancel_or_crash(flow: Any, flow_run: Any, state: Any) -> None:
    """Backstop hook: if the flow body could not stop its server, stop it by its PID file."""
    outputs_root = (flow_run.parameters or {}).get("outputs_root")
    if outputs_root:
        stop_servers_of_flow_run(Path(outputs_root), str(flow_run.id))


@flow(
    name="local-model-server",
    flow_run_name="server · {model_name}",
    validate_parameters=False,
    on_cancellation=[_stop_on_cancel_or_crash],
    on_crashed=[_stop_on_cancel_or_crash],
)
async def local_model_server_flow(session: ServerSession, model_name: str, outputs_root: str) -> dict[str, Any]:
    """Preflight, GPU slots, start, health, serve until released, stop, release (see module doc)."""
    logger = get_run_logger()
    model = session.model
    log_path = session.location.server_log
    session.note(flow_run_id=str(current_flow_run.id), serve_key=serve_key(model))
    try:
        swept = await asyncio.to_thread(sweep_stale_servers, Path(outputs_root))
        stopped = [s for s in swept if str(s["action"]).startswith("stopped")]
        if stopped:
            logger.warning("stopped %d server(s) left behind by earlier runs on this host: %s", len(stopped), stopped)
        elif swept:
            logger.info("removed %d stale server record(s): %s", len(swept), swept)
        inventory = _inventory() if model.gpus_needed else None
        if inventory is not None:
            session.note(host_gpus=inventory.to_dict())
        await _preflight(session, inventory)
        async with _gpu_slots(session, inventory, Path(outputs_root)) as gpu_ids:
            session.set_status(RunStatus.STARTING)
            if inventory is not None and gpu_ids:
                await _record_fit(session, inventory, gpu_ids)
            if isinstance(model, VllmDockerModel):
                await _run_container(session, gpu_ids)
            else:
                await _run_process(session, gpu_ids, Path(outputs_root))
    except ServerStartError as exc:
        failure = _failure(exc, log_path)
        session.note(error_class=failure.error_class.value)
        if not session.ready.done():
            session.ready.set_exception(failure)
        raise failure from None
    except BaseException as exc:
        if not session.ready.done():
            session.ready.set_exception(exc if isinstance(exc, Exception) else ServerStartError(f"server flow ended: {exc!r}"))
        raise
    return {"model": model.model, "status": "stopped"}


def local_servers() -> LocalServers:
    """A job's local servers, each brought up by the ``local-model-server`` flow."""
    return LocalServers(_server_flow)


def _server_flow(session: ServerSession) -> Coroutine[Any, Any, dict[str, Any]]:
    model = session.model
    # quoted: Prefect hands the live session to the flow as it is, without walking into it
    return local_model_server_flow(cast(ServerSession, quote(session)), model.name or model.model, str(session.location.root))


@asynccontextmanager
async def serve_local_model(
    plan_or_spec: RunPlan | ModelSpec, location: RunLocation | None = None, *, recorder: RunRecorder | None = None, share: bool = True
) -> AsyncIterator[LocalEndpoint]:
    """A healthy local server's endpoint, from the job's servers (bound by the job) or, outside a job, servers of its own.

    See :meth:`tasks.serving.shared.LocalServers.serve`.
    """
    servers = LocalServers.current() or local_servers()
    async with servers.serve(plan_or_spec, location, recorder=recorder, share=share) as endpoint:
        yield endpoint
