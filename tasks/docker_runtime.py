"""vLLM in the ``vllm/vllm-openai`` container, through prefect-docker.

Chosen per model with ``runtime: docker``. The container gets the reserved GPUs
as a device request, its port 8000 mapped to a free loopback port, the Hugging
Face cache mounted, and labels naming the tracr flow run and serve key, because
containers outlive a killed flow: the sweep removes labelled containers whose
flow run is over. Without a reachable Docker engine the run fails before
anything starts, with a message that says so.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from tasks.local_server import ServerStartError, find_free_port, log_tail
from tracr.config.models import VllmDockerModel

__all__ = [
    "DockerServer", "DockerUnavailable", "check_docker_engine", "start_vllm_container", "wait_container_healthy",
    "stop_container", "stale_container_ids", "sweep_stale_containers", "LABEL_PREFIX",
]  # fmt: skip

LABEL_PREFIX = "io.tracr"
CONTAINER_PORT = 8000


class DockerUnavailable(ServerStartError):
    """No Docker engine answers (the client library alone is not enough)."""


@dataclass
class DockerServer:
    """A started vLLM container."""

    container_id: str
    port: int
    served_model: str
    log_path: Path
    startup_timeout_s: float
    command: list[str]

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
            return {"engine": client.version().get("Version")}
    except Exception as exc:
        raise DockerUnavailable(
            "runtime docker: the Docker engine is not reachable "
            f"({type(exc).__name__}: {str(exc)[:300]}); start Docker (with the NVIDIA container toolkit) "
            "or set runtime: process for this model"
        ) from None


def _hf_cache() -> str:
    return os.environ.get("HF_HOME") or str(Path.home() / ".cache" / "huggingface")


async def start_vllm_container(
    model: VllmDockerModel, serve_args: list[str], gpu_ids: tuple[int, ...] | None, log_path: Path, labels: dict[str, str]
) -> DockerServer:
    """Create and start the container; the image's entrypoint is ``vllm serve``."""
    from docker.types import DeviceRequest

    port = find_free_port()
    args = list(serve_args)
    if args and args[0] == "serve":
        args = args[1:]
    # Inside the container vLLM listens on 0.0.0.0:8000; the host side is a free loopback port.
    for flag, value in (("--host", "0.0.0.0"), ("--port", str(CONTAINER_PORT))):
        if flag in args:
            args[args.index(flag) + 1] = value
    requests = [DeviceRequest(device_ids=[str(i) for i in gpu_ids], capabilities=[["gpu"]])] if gpu_ids else []
    from prefect_docker.containers import create_docker_container, start_docker_container

    container = await create_docker_container(
        image=model.docker_image,
        command=args,
        detach=True,
        environment={"OMP_NUM_THREADS": "1", **({"HF_TOKEN": os.environ["HF_TOKEN"]} if os.environ.get("HF_TOKEN") else {})},
        ports={f"{CONTAINER_PORT}/tcp": ("127.0.0.1", port)},
        device_requests=requests,
        volumes=[f"{_hf_cache()}:/root/.cache/huggingface"],
        ipc_mode="host",
        labels={f"{LABEL_PREFIX}.{k}": v for k, v in labels.items()},
    )
    await start_docker_container(container_id=container.id)
    return DockerServer(container.id, port, model.model, log_path, model.startup_timeout_s, [model.docker_image, *args])


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
    """Poll ``/v1/models`` until the model is listed; fail fast when the container exits."""
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=5.0) as http:
        while True:
            status, code = await asyncio.to_thread(_container_state, server.container_id)
            if status in ("exited", "dead"):
                await asyncio.to_thread(_save_logs, server)
                raise ServerStartError(
                    f"vLLM container for {server.served_model} exited with code {code} before becoming healthy; "
                    f"last log lines ({server.log_path}):\n{log_tail(server.log_path)}"
                )
            try:
                response = await http.get(f"{server.base_url}/models")
                if response.status_code == 200 and server.served_model in [m.get("id") for m in response.json().get("data", [])]:
                    return time.monotonic() - started
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() - started > server.startup_timeout_s:
                await asyncio.to_thread(_save_logs, server)
                raise ServerStartError(
                    f"vLLM container for {server.served_model} not healthy after {server.startup_timeout_s:.0f}s; "
                    f"last log lines ({server.log_path}):\n{log_tail(server.log_path)}"
                )
            await asyncio.sleep(poll_s)


async def stop_container(server: DockerServer) -> None:
    """Keep its log in the run folder, then stop and remove it."""
    await asyncio.to_thread(_save_logs, server)
    from prefect_docker.containers import remove_docker_container

    await remove_docker_container(container_id=server.container_id, force=True)


def stale_container_ids(containers: Iterable[tuple[str, dict[str, str]]], owner_alive: Callable[[int], bool]) -> list[str]:
    """Containers tracr started whose owning tracr process is gone (pure: ids and labels in, ids out)."""
    stale = []
    for container_id, labels in containers:
        owner = labels.get(f"{LABEL_PREFIX}.owner-pid", "")
        if owner.isdigit() and not owner_alive(int(owner)):
            stale.append(container_id)
    return stale


def sweep_stale_containers() -> list[str]:
    """Remove vLLM containers left behind by killed flows (found by their tracr labels)."""
    from tasks.server_registry import process_cmdline

    with _docker_host().get_client() as client:
        found = client.containers.list(all=True, filters={"label": f"{LABEL_PREFIX}.owner-pid"})
        stale = stale_container_ids(((c.id, c.labels) for c in found), lambda pid: process_cmdline(pid) is not None)
        for container_id in stale:
            client.containers.get(container_id).remove(force=True)
    return stale
