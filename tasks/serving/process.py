"""Lifecycle of a local OpenAI-compatible server process: start, health, stop.

General on purpose: the built-in CPU OCR server and ``vllm serve`` both go through
it. Servers start in their own process group so stopping one also stops the
children it forked (vLLM's engine and workers); stop runs on success, failure and
cancellation alike.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import httpx

from tracr.errors import ErrorClass, TracrError
from tracr.serving.child_env import child_environment, host_pass_env
from tracr.serving.process_group import die_with_parent, terminate_group

__all__ = [
    "ServerSpec",
    "ServerHandle",
    "ServerStartError",
    "find_free_port",
    "running_server",
    "start_server",
    "stop_server",
    "wait_until_healthy",
    "HealthWatch",
    "wait_listed",
]


class ServerStartError(TracrError, RuntimeError):
    """A local server did not become healthy; the message carries its log's last lines."""

    default_class = ErrorClass.SERVER_START


@dataclass(frozen=True)
class ServerSpec:
    """How to launch one local server and recognise that it is ready.

    The server gets the allow-listed environment of :mod:`tracr.serving.child_env`, plus
    ``pass_env`` (names taken from ours, its own key among them) and ``env`` (values set).
    """

    command: list[str]
    served_model: str
    port: int
    log_path: Path
    host: str = "127.0.0.1"
    env: dict[str, str] = field(default_factory=dict)
    pass_env: tuple[str, ...] = ()
    startup_timeout_s: float = 600.0
    poll_interval_s: float = 0.25

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"


@dataclass
class ServerHandle:
    spec: ServerSpec
    process: subprocess.Popen[bytes]

    @property
    def base_url(self) -> str:
        return self.spec.base_url

    @property
    def pid(self) -> int:
        return self.process.pid


def find_free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now (servers are never assumed to get a fixed port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def start_server(spec: ServerSpec) -> ServerHandle:
    """Launch the server in a new session (its own process group), logging to ``log_path``."""
    executable = spec.command[0]
    if os.sep not in executable and shutil.which(executable) is None:
        raise ServerStartError(f"cannot start local server: {executable!r} is not installed or not on PATH")
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    env = child_environment(os.environ, wanted=(*spec.pass_env, *host_pass_env(os.environ)), set_env=spec.env)
    with open(spec.log_path, "ab") as log:
        process = subprocess.Popen(
            spec.command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            preexec_fn=die_with_parent,  # a SIGKILLed job leaves no server holding its GPU
        )
    return ServerHandle(spec=spec, process=process)


@dataclass(frozen=True)
class HealthWatch:
    """What one health poll needs to know about a starting server, whatever runs it (a process, a container)."""

    name: str  # "local server", "vLLM container": how errors name it
    base_url: str
    served_model: str
    log_path: Path
    timeout_s: float
    poll_s: float
    #: ``None`` while the server runs, its exit code once it has exited.
    exit_code: Callable[[], Awaitable[int | None]]
    #: Called before an error is raised, e.g. to fetch the log of a server that does not write it itself.
    before_failing: Callable[[], Awaitable[None]] | None = None

    async def fail(self, why: str) -> NoReturn:
        if self.before_failing is not None:
            await self.before_failing()
        raise ServerStartError(f"{self.name} for {self.served_model} {why}; last log lines ({self.log_path}):\n{log_tail(self.log_path)}")


async def wait_listed(watch: HealthWatch) -> float:
    """Poll ``/v1/models`` until the served model is listed; returns seconds taken.

    Fails fast when the server exits, and on timeout; both errors carry the log tail.
    """
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=5.0) as http:
        while True:
            code = await watch.exit_code()
            if code is not None:
                await watch.fail(f"exited with code {code} before becoming healthy")
            try:
                response = await http.get(f"{watch.base_url}/models")
                if response.status_code == 200:
                    ids = [item.get("id") for item in response.json().get("data", [])]
                    if watch.served_model in ids:
                        return time.monotonic() - started
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() - started > watch.timeout_s:
                await watch.fail(f"not healthy after {watch.timeout_s:.0f}s")
            await asyncio.sleep(watch.poll_s)


async def wait_until_healthy(handle: ServerHandle) -> float:
    """:func:`wait_listed` for a server process (it has exited once ``poll()`` has a code)."""
    spec = handle.spec

    async def exit_code() -> int | None:
        return handle.process.poll()

    return await wait_listed(
        HealthWatch(
            "local server", spec.base_url, spec.served_model, spec.log_path, spec.startup_timeout_s, spec.poll_interval_s, exit_code
        )
    )


def stop_server(handle: ServerHandle, grace_s: float = 10.0) -> None:
    """Stop the server's whole process group (see :func:`tracr.serving.process_group.terminate_group`)."""
    terminate_group(handle.process, grace_s)


@asynccontextmanager
async def running_server(spec: ServerSpec) -> AsyncIterator[ServerHandle]:
    """Start, wait until healthy, yield, and always stop (also on cancel)."""
    handle = start_server(spec)
    try:
        await wait_until_healthy(handle)
        yield handle
    finally:
        await asyncio.shield(asyncio.to_thread(stop_server, handle))
