"""The local model server lifecycle as one Prefect subflow: ``local-model-server``.

For a ``mode: local`` model it checks before launch (vLLM present, GPUs, fit),
reserves GPU slots (waiting visibly as ``waiting_resources`` / "WaitingForGPUs"),
starts the server (``vllm serve`` as a process or the vLLM container, or the
built-in CPU OCR server), waits until ``/v1/models`` lists the model, hands the
endpoint to the run, and on every exit (success, failure, exception, cancel)
stops the whole process group (or container) and releases the slots.

:func:`serve_local_model` is how a run uses it:

    async with serve_local_model(plan, plan.location, recorder=recorder) as endpoint:
        client = OcrClient(base_url=endpoint.base_url, model=endpoint.served_model, ...)

Runs of one job that need the same model with the same serve settings share one
server (reference counted); the last run to leave stops it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.exceptions import MissingContextError
from prefect.runtime import flow_run as current_flow_run
from prefect.states import Running

from tasks.docker_runtime import check_docker_engine, start_vllm_container, stop_container, sweep_stale_containers, wait_container_healthy
from tasks.gpu_slots import GpuRequestTooLarge, gpu_host, reserve_gpus
from tasks.local_runtimes import serve_key, server_spec_for, vllm_serve_args
from tasks.local_server import ServerDied, ServerStartError, log_tail, start_server, stop_server, wait_until_healthy
from tasks.server_preflight import PreflightError, check_executable, check_gpu_request, fit_for
from tasks.server_registry import ServerRecord, process_cmdline, remove_record, stop_servers_of_flow_run, sweep_stale_servers, write_record
from tracr.config.job import ModelSpec
from tracr.config.models import LocalServerModel, VllmDockerModel, VllmModel, VllmProcessModel
from tracr.serving.fit_check import FitVerdict
from tracr.serving.gpus import GpuInventory, InventoryError, current_inventory
from tracr.outputs.layout import RunLocation
from tracr.run.plan import RunPlan
from tracr.outputs.recorder import RunRecorder
from tracr.run.state import RunStatus
from tracr.serving.server_errors import ServerErrorClass, classify_server_log

__all__ = ["LocalEndpoint", "local_model_server_flow", "serve_local_model", "expect_local_servers", "release_local_servers", "WAITING_STATE_NAME"]

WAITING_STATE_NAME = "WaitingForGPUs"
#: A cancelled server's process group must be gone within 10 s: SIGTERM, then SIGKILL after this.
STOP_GRACE_S = 8.0


ServerDeath = Callable[[], ServerDied | None]
"""Polls a server: ``None`` while it serves, the :class:`ServerDied` error once it has exited."""


def never_dies() -> ServerDied | None:
    """The :data:`ServerDeath` of an endpoint with no process to watch (a hosted API, a container)."""
    return None


@dataclass(frozen=True)
class LocalEndpoint:
    """What a run needs from a local server: where it is and the model name it serves."""

    base_url: str
    served_model: str
    gpu_ids: tuple[int, ...] | None = None
    shared: bool = False
    log_path: str | None = None
    death: ServerDeath = field(default=never_dies, compare=False, repr=False)


@dataclass
class _Session:
    """One server shared by the runs of a job that need it (the flow fills in ``ready``)."""

    model: LocalServerModel
    location: RunLocation
    recorders: list[RunRecorder] = field(default_factory=list)
    ready: asyncio.Future[LocalEndpoint] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    release: asyncio.Event = field(default_factory=asyncio.Event)
    users: int = 0
    task: asyncio.Task[Any] | None = None
    #: The status the sharing runs are in while the server comes up (a run joining later catches up).
    status: RunStatus = RunStatus.QUEUED
    #: The server process's exit code, or ``None`` while it runs (a container is not polled).
    exit_code: Callable[[], int | None] = lambda: None
    log_path: Path | None = None
    died: ServerDied | None = None

    def death(self) -> ServerDied | None:
        """Whether the server exited while serving: the error the runs end with, recorded once."""
        if self.died is not None:
            return self.died
        code = self.exit_code()
        if code is None:
            return None
        message = f"local server for {self.model.model} exited with code {code} while serving"
        diagnosis = classify_server_log(log_tail(self.log_path, 200) if self.log_path else "", fallback=ServerErrorClass.DIED_WHILE_SERVING)
        evidence = f" (log: {diagnosis.evidence})" if diagnosis.evidence else ""
        self.died = ServerDied(diagnosis.annotate(f"{message}{evidence}"), diagnosis.error_class)
        _logger().error("%s", message)
        self.note(status="died", exit_code=code, error_class=diagnosis.error_class.value)
        return self.died

    def note(self, **server: Any) -> None:
        """Merge ``server`` into every sharing run's ``run_metadata.json`` ``server`` entry."""
        for recorder in self.recorders:
            recorder.data.setdefault("server", {}).update(server)
            recorder.write()

    def set_status(self, status: RunStatus) -> None:
        self.status = status
        for recorder in self.recorders:
            if recorder.status != status:
                recorder.set_status(status)


_SESSIONS: dict[str, _Session] = {}
#: Runs of a job announced (by :func:`expect_local_servers`) but not yet joined, per session key:
#: a shared server stays up between them even when one run ends before the next begins.
_EXPECTED: dict[str, int] = {}


def _logger() -> Any:
    """The flow run's logger, or the module's outside one."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


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
    diagnosis = classify_server_log(f"{log_tail(log_path, 200)}\n{exc}", declared=getattr(exc, "error_class", None))
    failure = ServerStartError(diagnosis.annotate(str(exc)))
    failure.error_class = diagnosis.error_class  # type: ignore[attr-defined]
    return failure


def _inventory() -> GpuInventory:
    try:
        return current_inventory()
    except InventoryError as exc:
        raise PreflightError(str(exc), ServerErrorClass.NO_GPU) from None


async def _preflight(session: _Session, inventory: GpuInventory | None) -> None:
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
            raise PreflightError(f"fit check FAIL for {model.model} even on this host's largest GPUs: {fit.message}", ServerErrorClass.OUT_OF_GPU_MEMORY)
        logger.info("fit check (best case) for %s: %s", model.model, fit.verdict.value)


async def _record_fit(session: _Session, inventory: GpuInventory, gpu_ids: tuple[int, ...]) -> None:
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
        raise PreflightError(f"fit check FAIL for {model.model} on GPUs {list(gpu_ids)}: {fit.message}", ServerErrorClass.OUT_OF_GPU_MEMORY)
    if fit.verdict == FitVerdict.RISK:
        logger.warning("fit check RISK for %s on GPUs %s: %s", model.model, list(gpu_ids), fit.message)
    else:
        logger.info("fit check %s for %s: %s", fit.verdict.value, model.model, fit.message)


@asynccontextmanager
async def _gpu_slots(session: _Session, inventory: GpuInventory | None) -> AsyncIterator[tuple[int, ...] | None]:
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
        async with reserve_gpus(inventory, needed, holder_flow_run_id=uuid.UUID(run_id) if run_id else None, on_wait=on_wait) as reservation:
            session.note(gpus=list(reservation.indices), gpu_limits=list(reservation.limit_names), gpu_wait_s=reservation.waited_s)
            logger.info("%s got GPU(s) %s after %.1fs", model.model, list(reservation.indices), reservation.waited_s)
            if waited:
                await _set_flow_state("Running", f"got GPUs {list(reservation.indices)}")
            yield reservation.indices
    except GpuRequestTooLarge as exc:
        raise PreflightError(f"{model.model}: {exc}", ServerErrorClass.NOT_ENOUGH_GPUS) from None


async def _run_process(session: _Session, gpu_ids: tuple[int, ...] | None, outputs_root: Path) -> None:
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
                key=serve_key(model), pid=handle.pid, pgid=handle.pid, port=spec.port, command=spec.command,
                owner_pid=os.getpid(), owner_cmdline=_owner_cmdline(), flow_run_id=current_flow_run.id,
            ),
        )  # fmt: skip
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


async def _until_released(session: _Session) -> None:
    """Wait until the last run leaves, noticing (and recording) a server that dies meanwhile."""
    while not session.release.is_set():
        try:
            await asyncio.wait_for(session.release.wait(), timeout=1.0)
        except asyncio.TimeoutError:
            session.death()


async def _run_container(session: _Session, gpu_ids: tuple[int, ...] | None) -> None:
    model = session.model
    if not isinstance(model, VllmDockerModel):
        raise TypeError(f"{model.kind} does not run in a container")
    labels = {"flow-run-id": str(current_flow_run.id or ""), "serve-key": serve_key(model), "owner-pid": str(os.getpid())}
    session.note(runtime="docker", image=model.docker_image, status="starting", log=session.location.server_log.name)
    started = time.perf_counter()
    server = await start_vllm_container(model, vllm_serve_args(model, 0), gpu_ids, session.location.server_log, labels)
    try:
        session.note(container=server.container_id, port=server.port, command=server.command)
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
async def local_model_server_flow(session_id: str, model_name: str, outputs_root: str) -> dict[str, Any]:
    """Preflight, GPU slots, start, health, serve until released, stop, release (see module doc)."""
    logger = get_run_logger()
    session = _SESSIONS[session_id]
    model = session.model
    log_path = session.location.server_log
    session.note(flow_run_id=str(current_flow_run.id), serve_key=serve_key(model))
    try:
        swept = await asyncio.to_thread(sweep_stale_servers, Path(outputs_root))
        if swept:
            logger.warning("stopped %d server(s) left behind by earlier runs: %s", len(swept), swept)
        inventory = _inventory() if model.gpus_needed else None
        if inventory is not None:
            session.note(host_gpus=inventory.to_dict())
        await _preflight(session, inventory)
        async with _gpu_slots(session, inventory) as gpu_ids:
            session.set_status(RunStatus.STARTING)
            if inventory is not None and gpu_ids:
                await _record_fit(session, inventory, gpu_ids)
            if isinstance(model, VllmDockerModel):
                await _run_container(session, gpu_ids)
            else:
                await _run_process(session, gpu_ids, Path(outputs_root))
    except ServerStartError as exc:
        failure = _failure(exc, log_path)
        session.note(error_class=getattr(failure, "error_class", ServerErrorClass.UNKNOWN).value)
        if not session.ready.done():
            session.ready.set_exception(failure)
        raise failure from None
    except BaseException as exc:
        if not session.ready.done():
            session.ready.set_exception(exc if isinstance(exc, Exception) else ServerStartError(f"server flow ended: {exc!r}"))
        raise
    return {"model": model.model, "status": "stopped"}


def _failed(session: _Session) -> bool:
    return session.ready.done() and (session.ready.cancelled() or session.ready.exception() is not None)


def _session_key(model: ModelSpec, location: RunLocation) -> str:
    if not isinstance(model, LocalServerModel):
        raise ValueError(f"{model.kind} models are not served locally")
    return f"{location.root.resolve()}|{location.job_id}|{serve_key(model)}"


def _server_plans(plans: list[RunPlan]) -> list[RunPlan]:
    return [p for p in plans if p.model.serves_locally]


def expect_local_servers(plans: list[RunPlan]) -> None:
    """Announce a job's runs, so runs with the same serve settings share one server.

    Without it runs still share a server while they overlap; with it the server
    also waits for announced runs that have not started yet.
    """
    for plan in _server_plans(plans):
        key = _session_key(plan.model, plan.location)
        _EXPECTED[key] = _EXPECTED.get(key, 0) + 1


async def release_local_servers(plans: list[RunPlan]) -> None:
    """End of a job: forget its announced runs and stop servers kept only for them."""
    for plan in _server_plans(plans):
        key = _session_key(plan.model, plan.location)
        _EXPECTED.pop(key, None)
        session = _SESSIONS.get(key)
        if session is not None and session.users == 0:
            await _close(key, session)


async def _close(key: str, session: _Session) -> None:
    """Stop the session's server (or its start) and wait until it is down."""
    session.release.set()
    for sid in [k for k, v in _SESSIONS.items() if v is session]:
        del _SESSIONS[sid]
    task = session.task
    if task is not None and not task.done():
        if not session.ready.done():
            task.cancel()
        await asyncio.shield(asyncio.wait({task}))
    if task is not None and task.done() and not task.cancelled():
        task.exception()  # retrieved: failures were raised to the runs already
    if session.ready.done() and not session.ready.cancelled():
        session.ready.exception()


@asynccontextmanager
async def serve_local_model(
    plan_or_spec: RunPlan | ModelSpec, location: RunLocation | None = None, *, recorder: RunRecorder | None = None, share: bool = True
) -> AsyncIterator[LocalEndpoint]:
    """Yield a healthy local server's endpoint for the model; stop it when the last user leaves.

    ``plan_or_spec`` is a run plan (its location is used by default) or a model spec
    with an explicit ``location``. Raises :class:`ServerStartError` (class and hint in
    the message) when the server cannot be had.
    """
    model = plan_or_spec.model if isinstance(plan_or_spec, RunPlan) else plan_or_spec
    location = location or (plan_or_spec.location if isinstance(plan_or_spec, RunPlan) else None)
    if location is None:
        raise ValueError("serve_local_model needs a location for a bare model spec")
    if not isinstance(model, LocalServerModel):
        raise ValueError(f"{model.kind} models are not served locally")
    key = _session_key(model, location) if share else f"{_session_key(model, location)}|{uuid.uuid4().hex}"
    session = _SESSIONS.get(key)
    joined = session is not None and not _failed(session) and not session.release.is_set()
    if not joined:
        session = _Session(model=model, location=location)
        _SESSIONS[key] = session
    assert session is not None
    session.users += 1
    if share and _EXPECTED.get(key):
        _EXPECTED[key] -= 1
        if not _EXPECTED[key]:
            del _EXPECTED[key]
    if recorder is not None:
        session.recorders.append(recorder)
        if session.status != RunStatus.QUEUED and recorder.status != session.status:
            recorder.set_status(session.status)
        if joined:
            recorder.data["server"] = {"shared_with_run": str(session.location.run_dir), "log": str(session.location.server_log)}
            recorder.write()
    if not joined:
        session_id = uuid.uuid4().hex
        _SESSIONS[session_id] = session
        session.task = asyncio.create_task(
            local_model_server_flow(session_id=session_id, model_name=model.name or model.model, outputs_root=str(location.root))
        )
    try:
        task = session.task
        assert task is not None
        await asyncio.wait({session.ready, task}, return_when=asyncio.FIRST_COMPLETED)
        if not session.ready.done():
            task.result()  # the flow ended before the server was ready: raise its error
            raise ServerStartError(f"local server for {model.model} stopped before becoming healthy")
        endpoint = session.ready.result()
        yield LocalEndpoint(endpoint.base_url, endpoint.served_model, endpoint.gpu_ids, joined, endpoint.log_path, endpoint.death)
    finally:
        session.users -= 1
        # The last user stops the server, unless announced runs of the job still need it
        # (their recorders stay attached, so every run's metadata ends with "stopped").
        if session.users == 0 and (_failed(session) or not _EXPECTED.get(key)):
            await _close(key, session)
