"""A stand-in ``vllm`` executable for machines without a GPU.

It is a real process that takes the same command line as ``vllm serve``, serves
the OpenAI API (``/v1/models``, streaming ``/v1/chat/completions``) on the
given port, forks a child like vLLM's EngineCore (so process-group stops are
exercised), and fails the way vLLM fails when told to. Tests run it through the
real lifecycle code: put it on PATH with :func:`install_fake_vllm` or point
``TRACR_VLLM`` at it.

    python -m tracr.testing.fake_vllm serve org/model --served-model-name m --port 8000 ...

Behaviour is scripted by environment variables:

* ``FAKE_VLLM_MODE``: ``ok`` (default), ``oom`` (exit 1 with a CUDA OOM trace),
  ``cuda_arch`` (no kernel image), ``not_found`` (repository not found),
  ``port_in_use`` (Errno 98), ``never_healthy`` (listens, never lists the model),
  ``die_after:<s>`` (dies ``s`` seconds after starting), ``die_after_requests:<n>``
  (answers n chat requests, then dies on the next one), ``slow_start:<s>``.
  A JSON object maps served model names to modes (``{"a": "oom", "*": "ok"}``).
* ``FAKE_VLLM_LATENCY_S``: seconds each chat request takes (default 0).
* ``FAKE_VLLM_RECORD``: a folder; each server writes ``<pid>.json`` with its
  argv, served model, ``CUDA_VISIBLE_DEVICES``, hostname, the names of its environment
  variables and start/stop times, so tests
  can check that no GPU was ever shared.

``/v1/models`` also reports ``cuda_visible_devices`` and ``pid`` on each entry.

Servers get an allow-listed environment (:mod:`tracr.serving.child_env`), so a test
that scripts the fake through these variables also sets ``TRACR_PASS_ENV`` to
:data:`PASS_ENV`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["PASS_ENV", "install_fake_vllm", "main", "parse_serve_args"]

#: ``TRACR_PASS_ENV`` for tests that script the fake (its variables are not on the allow list).
PASS_ENV = "FAKE_VLLM_*,TRACR_GPU_HOST"

OOM_TRACE = """\
INFO 11-24 10:01:02 [gpu_model_runner.py:2338] Loading model weights took 15.6 GiB and 4.2 seconds
ERROR 11-24 10:01:09 [core.py:708] EngineCore failed to start.
ERROR 11-24 10:01:09 [core.py:708] Traceback (most recent call last):
ERROR 11-24 10:01:09 [core.py:708]   File "/usr/local/lib/python3.12/dist-packages/vllm/v1/worker/gpu_worker.py", line 246, in determine_available_memory
ERROR 11-24 10:01:09 [core.py:708] torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.55 GiB of which 1.12 GiB is free. Including non-PyTorch memory, this process has 22.41 GiB memory in use.
RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}"""
CUDA_ARCH_TRACE = """\
ERROR 11-24 10:01:09 [core.py:708] RuntimeError: CUDA error: no kernel image is available for execution on the device
ERROR 11-24 10:01:09 [core.py:708] CUDA kernel errors might be asynchronously reported at some other API call."""
NOT_FOUND_TRACE = """\
huggingface_hub.errors.RepositoryNotFoundError: 401 Client Error. (Request ID: Root=1-6740)
Repository Not Found for url: https://huggingface.co/api/models/org/no-such-model/revision/main.
OSError: org/no-such-model is not a local folder and is not a valid model identifier listed on 'https://huggingface.co/models'"""
PORT_TRACE = "OSError: [Errno 98] error while attempting to bind on address ('127.0.0.1', {port}): address already in use"


def parse_serve_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """The ``vllm serve`` flags tracr passes; anything else is accepted and kept."""
    parser = argparse.ArgumentParser(prog="vllm")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("model")
    parser.add_argument("--served-model-name", nargs="+")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--tensor-parallel-size", type=int, default=1)
    parser.add_argument("--data-parallel-size", type=int, default=1)
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    parser.add_argument("--max-model-len", type=int)
    parser.add_argument("--limit-mm-per-prompt", type=json.loads)
    return parser.parse_known_args(list(argv))


def _mode_for(served: str) -> str:
    raw = os.environ.get("FAKE_VLLM_MODE", "ok").strip() or "ok"
    if raw.startswith("{"):
        table = json.loads(raw)
        return str(table.get(served, table.get("*", "ok")))
    return raw


def _record(path: Path | None, data: dict[str, Any]) -> None:
    if path is None:
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def _engine_child() -> subprocess.Popen[bytes]:
    """A child in the same process group, like vLLM's EngineCore."""
    return subprocess.Popen([sys.executable, "-c", "import time\nwhile True: time.sleep(1)"], stdin=subprocess.DEVNULL)


def main(argv: Sequence[str] | None = None) -> None:
    args, extra = parse_serve_args(sys.argv[1:] if argv is None else argv)
    served = (args.served_model_name or [args.model])[0]
    mode = _mode_for(served)
    devices = os.environ.get("CUDA_VISIBLE_DEVICES")
    print(
        f"INFO fake vllm serving {args.model} as {served} on {args.host}:{args.port} mode={mode} CUDA_VISIBLE_DEVICES={devices}", flush=True
    )
    print(f"INFO non-default args: {extra}", flush=True)
    record_dir = os.environ.get("FAKE_VLLM_RECORD")
    record_path = Path(record_dir) / f"{os.getpid()}.json" if record_dir else None
    record: dict[str, Any] = {
        "pid": os.getpid(),
        "pgid": os.getpgid(0),
        "host": socket.gethostname(),
        "gpu_host": os.environ.get("TRACR_GPU_HOST"),
        "model": args.model,
        "served_model": served,
        "argv": sys.argv[1:],
        "cuda_visible_devices": devices,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "env_names": sorted(os.environ),  # names only: what the server was given, never a value
        "tensor_parallel_size": args.tensor_parallel_size,
        "data_parallel_size": args.data_parallel_size,
        "started_at": time.time(),
        "healthy_at": None,
        "stopped_at": None,
        "mode": mode,
    }
    _record(record_path, record)
    scripted = {
        "oom": OOM_TRACE,
        "cuda_arch": CUDA_ARCH_TRACE,
        "not_found": NOT_FOUND_TRACE,
        "port_in_use": PORT_TRACE.format(port=args.port),
    }
    if mode in scripted:
        time.sleep(0.2)
        print(scripted[mode], flush=True)
        record["stopped_at"] = time.time()
        _record(record_path, record)
        sys.exit(1)
    if mode.startswith("slow_start:"):
        time.sleep(float(mode.split(":", 1)[1]))
    child = _engine_child()

    def on_term(signum: int, frame: Any) -> None:
        record["stopped_at"] = time.time()
        _record(record_path, record)
        print(f"INFO fake vllm got signal {signum}, shutting down", flush=True)
        child.terminate()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    if mode.startswith("die_after:"):
        delay = float(mode.split(":", 1)[1])

        def die() -> None:
            time.sleep(delay)
            print("ERROR fake vllm: EngineCore died unexpectedly (scripted die_after)", flush=True)
            record["stopped_at"] = time.time()
            _record(record_path, record)
            os._exit(3)

        import threading

        threading.Thread(target=die, daemon=True).start()
    _serve(args, served, mode, devices, record, record_path)


def _die(record: dict[str, Any], record_path: Path | None) -> None:
    print("ERROR fake vllm: EngineCore died unexpectedly (scripted)", flush=True)
    record["stopped_at"] = time.time()
    _record(record_path, record)
    os._exit(3)


def _serve(args: argparse.Namespace, served: str, mode: str, devices: str | None, record: dict[str, Any], record_path: Path | None) -> None:
    import asyncio

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    from tracr.servers import openai_protocol as oai

    served_requests: list[float] = []

    async def models(request: Request) -> Response:
        if mode == "never_healthy":
            return oai.error_response(503, "model is loading", "server_error")
        if record["healthy_at"] is None:
            record["healthy_at"] = time.time()
            _record(record_path, record)
        payload = oai.models_payload([served], owned_by="vllm")
        for item in payload["data"]:
            item.update(cuda_visible_devices=devices, pid=os.getpid(), max_model_len=args.max_model_len)
        return oai.json_response(payload)

    async def chat(request: Request) -> Response:
        try:
            req = oai.parse_chat_request(json.loads(await request.body()))
            if req.model != served:
                raise oai.model_not_found(req.model)
        except oai.ProtocolError as err:
            return err.response()
        except ValueError as exc:
            return oai.error_response(400, f"invalid body: {exc}")
        if mode.startswith("die_after_requests:") and len(served_requests) >= int(mode.split(":", 1)[1]):
            _die(record, record_path)  # the next request finds the server gone mid-run
        await asyncio.sleep(float(os.environ.get("FAKE_VLLM_LATENCY_S", "0") or 0))
        served_requests.append(time.time())
        text = f"fake vllm page from {served} on GPUs {devices}: {len(req.images)} image(s)"
        if not req.stream:
            return oai.json_response(oai.chat_completion(served, text, "stop", req.prompt_tokens))
        body = oai.stream_text(oai.StreamWriter(served), oai.split_for_stream(text), "stop", req.include_usage, req.prompt_tokens)
        return StreamingResponse(body, media_type="text/event-stream", headers=oai.SSE_HEADERS)

    async def health(request: Request) -> Response:
        return Response(status_code=200)

    app = Starlette(routes=[Route("/health", health), Route("/v1/models", models), Route("/v1/chat/completions", chat, methods=["POST"])])
    oai.serve(app, args.host, args.port)


def install_fake_vllm(bin_dir: Path, name: str = "vllm") -> Path:
    """Write an executable ``vllm`` script into ``bin_dir`` that runs this module with this Python."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / name
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tracr.testing.fake_vllm "$@"\n', encoding="utf-8")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC | stat.S_IXGRP | stat.S_IXOTH)
    return exe


if __name__ == "__main__":
    main()
