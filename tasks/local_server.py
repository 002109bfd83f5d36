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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tracr.serving.process_group import terminate_group
from tracr.errors import ErrorClass, TracrError

__all__ = ["ServerSpec", "ServerHandle", "ServerStartError", "ServerDied", "find_free_port", "running_server", "start_server", "stop_server", "wait_until_healthy"]


class ServerStartError(TracrError, RuntimeError):
    """A local server did not become healthy; the message carries its log's last lines."""

    default_class = ErrorClass.SERVER_START


class ServerDied(TracrError, RuntimeError):
    """A local server exited while runs were using it; carries its class (from the log) and a hint."""

    default_class = ErrorClass.DIED_WHILE_SERVING


@dataclass(frozen=True)
class ServerSpec:
    """How to launch one local server and recognise that it is ready."""

    command: list[str]
    served_model: str
    port: int
    log_path: Path
    host: str = "127.0.0.1"
    env: dict[str, str] = field(default_factory=dict)
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
    env = {**os.environ, **spec.env}
    with open(spec.log_path, "ab") as log:
        process = subprocess.Popen(
            spec.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
    return ServerHandle(spec=spec, process=process)


async def wait_until_healthy(handle: ServerHandle) -> float:
    """Poll ``/v1/models`` until the served model is listed; returns seconds taken.

    Fails fast when the process exits, and on timeout; both errors carry the log tail.
    """
    spec = handle.spec
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=5.0) as http:
        while True:
            code = handle.process.poll()
            if code is not None:
                raise ServerStartError(
                    f"local server for {spec.served_model} exited with code {code} before becoming healthy; "
                    f"last log lines ({spec.log_path}):\n{log_tail(spec.log_path)}"
                )
            try:
                response = await http.get(f"{spec.base_url}/models")
                if response.status_code == 200:
                    ids = [item.get("id") for item in response.json().get("data", [])]
                    if spec.served_model in ids:
                        return time.monotonic() - started
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() - started > spec.startup_timeout_s:
                raise ServerStartError(
                    f"local server for {spec.served_model} not healthy after {spec.startup_timeout_s:.0f}s; "
                    f"last log lines ({spec.log_path}):\n{log_tail(spec.log_path)}"
                )
            await asyncio.sleep(spec.poll_interval_s)


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
