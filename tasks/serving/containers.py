"""vLLM in the ``vllm/vllm-openai`` container, through prefect-docker.

Chosen per model with ``runtime: docker``. The container gets the reserved GPUs
as a device request, its port 8000 mapped to a free loopback port, the Hugging
Face cache mounted, only the variables it asks for (``OMP_NUM_THREADS``, vLLM's
``HF_TOKEN``/``VLLM_API_KEY``, its own key, ``pass_env``, ``TRACR_PASS_ENV``: never the host's whole
environment), and labels naming the tracr flow run and serve key, because
containers outlive a killed flow: the sweep removes labelled containers whose
owning tracr process is gone. The owner is named by pid, host and PID namespace
(labels ``owner-pid``, ``owner-host``, ``owner-pid-ns``): flow runs in containers of
one Docker host share its engine and its host id but not their pids, so a sweep
judges only the containers whose owner's pid means something where it runs. Without a reachable Docker engine the run fails before
anything starts, with a message that says so.

GPUs: ``TRACR_DOCKER_GPU_REQUEST`` = ``auto`` (default) | ``always`` | ``never``. ``auto``
asks for the reserved GPUs as a device request only when the engine lists an ``nvidia``
runtime (the NVIDIA container toolkit); without one a device request cannot start, so
the container runs without GPUs (a stand-in image; a CPU image). ``always`` asks
regardless (the start then fails with class ``no_gpu`` where no toolkit is installed),
``never`` never asks. The reserved GPU ids are on the container's ``io.tracr.gpus`` label
either way. A start that fails (missing image, port taken, no GPU driver) removes the
container it created, so nothing is left in ``Created`` state.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.serving.process import HealthWatch, ServerStartError, find_free_port, wait_listed
from tasks.serving.runtimes import server_pass_env
from tracr.config.models import VllmDockerModel
from tracr.errors import ErrorClass
from tracr.serving.child_env import container_environment, host_pass_env
from tracr.serving.host import host_id, pid_namespace, pids_are_ours
from tracr.serving.server_errors import classify_server_log

__all__ = [
    "DockerServer",
    "DockerUnavailable",
    "check_docker_engine",
    "start_vllm_container",
    "wait_container_healthy",
    "stop_container",
    "stale_container_ids",
    "sweep_stale_containers",
    "LABEL_PREFIX",
    "ContainerStartError",
    "GPU_REQUEST_ENV",
    "gpu_request_mode",
    "wants_device_request",
]

LABEL_PREFIX = "io.tracr"
CONTAINER_PORT = 8000
GPU_REQUEST_ENV = "TRACR_DOCKER_GPU_REQUEST"
GPU_REQUEST_MODES = ("auto", "always", "never")
#: ``docker stop``'s grace before SIGKILL (an image with an init stops at once on SIGTERM).
STOP_TIMEOUT_S = 8


class DockerUnavailable(ServerStartError):
    """No Docker engine answers (the client library alone is not enough)."""

    default_class = ErrorClass.DOCKER_UNAVAILABLE


class ContainerStartError(ServerStartError):
    """The engine refused to create or start the container (its error, classified by the raise site)."""


def gpu_request_mode() -> str:
    """``TRACR_DOCKER_GPU_REQUEST`` (``auto`` when unset)."""
    mode = (os.environ.get(GPU_REQUEST_ENV) or "auto").strip().lower()
    if mode not in GPU_REQUEST_MODES:
        raise ContainerStartError(f"{GPU_REQUEST_ENV}={mode!r}: use one of {', '.join(GPU_REQUEST_MODES)}", error_class=ErrorClass.UNKNOWN)
    return mode


def wants_device_request(gpu_ids: tuple[int, ...] | None, mode: str, nvidia_runtime: bool) -> bool:
    """Whether the container asks the engine for the reserved GPUs (see the module doc)."""
    if not gpu_ids or mode == "never":
        return False
    return mode == "always" or nvidia_runtime


@dataclass
class DockerServer:
    """A started vLLM container."""

    container_id: str
    port: int
    served_model: str
    log_path: Path
    startup_timeout_s: float
    command: list[str]
    #: What the container was given: ``"devices 0,1"``, or why it asks for none.
    gpu_request: str = "none"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def _docker_host() -> Any:
    """prefect-docker's host, imported only when a container model runs (it pulls in docker-py)."""
    from prefect_docker.host import DockerHost

    return DockerHost()


def check_docker_engine() -> dict[str, Any]:
    """Ping the engine; raise :class:`DockerUnavailable` with the reason when it does not answer."""
    try:
        with _docker_host().get_client() as client:
            client.ping()
            runtimes = sorted((client.info().get("Runtimes") or {}).keys())
            return {"engine": client.version().get("Version"), "runtimes": runtimes, "nvidia_runtime": "nvidia" in runtimes}
    except Exception as exc:
        raise DockerUnavailable(
            "runtime docker: the Docker engine is not reachable "
            f"({type(exc).__name__}: {str(exc)[:300]}); start Docker (with the NVIDIA container toolkit) "
            "or set runtime: process for this model"
        ) from None


def _hf_cache() -> str:
    return os.environ.get("HF_HOME") or str(Path.home() / ".cache" / "huggingface")


def _start_failure(image: str, exc: Exception, requested_gpus: bool) -> ContainerStartError:
    """The engine's refusal as a classified start error."""
    import docker.errors

    text = str(getattr(exc, "explanation", None) or exc)
    if isinstance(exc, docker.errors.ImageNotFound) or "No such image" in text:
        return ContainerStartError(
            f"runtime docker: image {image!r} is not on this engine and was not pulled ({text[:300]})",
            error_class=ErrorClass.IMAGE_NOT_FOUND,
        )
    if requested_gpus and ("could not select device driver" in text or "nvidia" in text.lower()):
        return ContainerStartError(
            f"runtime docker: the engine cannot give the container GPUs ({text[:300]}); install the NVIDIA container toolkit "
            f"on this host, or set {GPU_REQUEST_ENV}=auto (asks only where an nvidia runtime exists) or never",
            error_class=ErrorClass.NO_GPU,
        )
    if "port is already allocated" in text or "address already in use" in text.lower():
        return ContainerStartError(f"runtime docker: the container's host port is taken ({text[:300]})", error_class=ErrorClass.PORT_IN_USE)
    diagnosis = classify_server_log(text)
    return ContainerStartError(
        f"runtime docker: the engine could not start {image!r} ({type(exc).__name__}: {text[:300]})", error_class=diagnosis.error_class
    )


def _remove_quietly(container_id: str) -> None:
    try:
        with _docker_host().get_client() as client:
            client.containers.get(container_id).remove(force=True, v=True)
    except Exception:
        pass


async def start_vllm_container(
    model: VllmDockerModel,
    serve_args: list[str],
    gpu_ids: tuple[int, ...] | None,
    log_path: Path,
    labels: dict[str, str],
    *,
    port: int | None = None,
) -> DockerServer:
    """Create and start the container; the image's entrypoint is ``vllm serve``.

    Raises :class:`ContainerStartError` (classified) when the engine refuses; a container
    it created is removed first. ``port`` (the host side) is a free loopback port by default.
    """
    from docker.types import DeviceRequest

    port = port or find_free_port()
    args = list(serve_args)
    if args and args[0] == "serve":
        args = args[1:]
    # Inside the container vLLM listens on 0.0.0.0:8000; the host side is a free loopback port.
    for flag, value in (("--host", "0.0.0.0"), ("--port", str(CONTAINER_PORT))):
        if flag in args:
            args[args.index(flag) + 1] = value
    mode = gpu_request_mode()
    nvidia = False
    if gpu_ids and mode == "auto":
        nvidia = bool(await asyncio.to_thread(lambda: check_docker_engine()["nvidia_runtime"]))
    request = wants_device_request(gpu_ids, mode, nvidia)
    gpus = ",".join(str(i) for i in gpu_ids or ())
    if request:
        gpu_request = f"devices {gpus}"
    elif gpu_ids:
        gpu_request = f"none ({GPU_REQUEST_ENV}=never)" if mode == "never" else "none (auto: the engine has no nvidia runtime)"
    else:
        gpu_request = "none (no GPUs reserved)"
    requests = [DeviceRequest(device_ids=[str(i) for i in gpu_ids or ()], capabilities=[["gpu"]])] if request else []
    from prefect_docker.containers import create_docker_container, start_docker_container

    all_labels = {f"{LABEL_PREFIX}.{k}": v for k, v in labels.items()}
    all_labels[f"{LABEL_PREFIX}.gpus"] = gpus
    all_labels.setdefault(f"{LABEL_PREFIX}.owner-host", host_id())
    all_labels.setdefault(f"{LABEL_PREFIX}.owner-pid-ns", pid_namespace())
    try:
        container = await create_docker_container(
            image=model.docker_image,
            command=args,
            detach=True,
            environment=container_environment(
                os.environ, wanted=(*server_pass_env(model), *host_pass_env(os.environ)), set_env={"OMP_NUM_THREADS": "1"}
            ),
            ports={f"{CONTAINER_PORT}/tcp": ("127.0.0.1", port)},
            device_requests=requests,
            volumes=[f"{_hf_cache()}:/root/.cache/huggingface"],
            ipc_mode="host",
            labels=all_labels,
        )
    except Exception as exc:
        failure = _start_failure(model.docker_image, exc, request)
        _note_failure(log_path, failure)
        raise failure from None
    try:
        await start_docker_container(container_id=container.id)
    except Exception as exc:
        # A refused start leaves the container in Created state: remove it.
        await asyncio.to_thread(_remove_quietly, container.id)
        failure = _start_failure(model.docker_image, exc, request)
        _note_failure(log_path, failure)
        raise failure from None
    return DockerServer(container.id, port, model.model, log_path, model.startup_timeout_s, [model.docker_image, *args], gpu_request)


def _note_failure(log_path: Path, failure: Exception) -> None:
    """The engine's error in the run's server.log (the container, if any, never ran)."""
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("a", encoding="utf-8") as log:
            log.write(f"{failure}\n")
    except OSError:
        pass


def _container_state(container_id: str) -> tuple[str, int | None]:
    with _docker_host().get_client() as client:
        container = client.containers.get(container_id)
        state = container.attrs.get("State", {})
        return str(state.get("Status")), state.get("ExitCode")


def _save_logs(server: DockerServer) -> None:
    try:
        with _docker_host().get_client() as client:
            server.log_path.write_bytes(client.containers.get(server.container_id).logs())
    except Exception:
        pass


async def wait_container_healthy(server: DockerServer, poll_s: float = 1.0) -> float:
    """:func:`tasks.serving.process.wait_listed` for a container (its log is fetched before an error quotes it)."""

    async def exit_code() -> int | None:
        status, code = await asyncio.to_thread(_container_state, server.container_id)
        return (code if code is not None else -1) if status in ("exited", "dead") else None

    async def save_logs() -> None:
        await asyncio.to_thread(_save_logs, server)

    watch = HealthWatch(
        "vLLM container", server.base_url, server.served_model, server.log_path, server.startup_timeout_s, poll_s, exit_code, save_logs
    )
    return await wait_listed(watch)


async def stop_container(server: DockerServer, timeout_s: int = STOP_TIMEOUT_S) -> None:
    """Stop it (SIGTERM, SIGKILL after ``timeout_s``), keep its log in the run folder, remove it and its anonymous volumes."""

    def stop() -> None:
        with _docker_host().get_client() as client:
            try:
                container = client.containers.get(server.container_id)
            except Exception:
                return
            try:
                container.stop(timeout=timeout_s)
            except Exception:
                pass
            try:
                server.log_path.write_bytes(container.logs())
            except Exception:
                pass
            container.remove(force=True, v=True)

    await asyncio.to_thread(stop)


def stale_container_ids(containers: Iterable[tuple[str, dict[str, str]]], owner_alive: Callable[[int], bool]) -> list[str]:
    """Containers tracr started whose owning tracr process is gone (ids and labels in, ids out).

    Only containers whose owner's pid is ours are judged (this host and PID namespace,
    or labels from before those were recorded); another's pid may name anything here.
    """
    stale = []
    for container_id, labels in containers:
        owner = labels.get(f"{LABEL_PREFIX}.owner-pid", "")
        if not pids_are_ours(labels.get(f"{LABEL_PREFIX}.owner-host"), labels.get(f"{LABEL_PREFIX}.owner-pid-ns")):
            continue
        if owner.isdigit() and not owner_alive(int(owner)):
            stale.append(container_id)
    return stale


def sweep_stale_containers() -> list[str]:
    """Remove vLLM containers left behind by killed flows (found by their tracr labels)."""
    from tasks.serving.registry import process_cmdline

    with _docker_host().get_client() as client:
        found = client.containers.list(all=True, filters={"label": f"{LABEL_PREFIX}.owner-pid"})
        stale = stale_container_ids(((c.id, c.labels) for c in found), lambda pid: process_cmdline(pid) is not None)
        for container_id in stale:
            client.containers.get(container_id).remove(force=True, v=True)
    return stale
