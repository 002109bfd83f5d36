"""CPU the job process spends per streamed page: tracr's OCR client against the openai SDK used as scripts use it.

    python bench/stream_reader.py                     # 600 requests, 64 in flight, 64-word replies in 4-word chunks
    python bench/stream_reader.py --requests 300 --words 1000

Each variant runs in its own process against the same stub server (a separate
process) and reports the CPU seconds of the client process for all requests,
and the ratio to the first variant, measured in the same run:

* ``sdk-httpx``: ``openai.AsyncOpenAI`` over an ``httpx.AsyncClient`` with the
  connection limits set, iterating ``chat.completions.create(stream=True)``: what
  ``bench/throughput.py``'s reference loop does, and tracr's client before;
* ``sdk-httpx2``: the same over the SDK's own client (``DefaultAsyncHttpx2Client``);
* ``tracr``: :class:`tasks.ocr.request.OcrClient` (the SDK's own client, the body
  read by ``tasks/ocr/chat_stream.py``).

The image is a 150 KB data URL, about a rendered page. Results go to
``bench/results/stream_reader.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

VARIANTS = ("sdk-httpx", "sdk-httpx2", "tracr")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _child(variant: str, base_url: str, requests: int, inflight: int) -> dict:
    import httpx
    import httpx2
    import openai

    from tasks.ocr.request import OcrClient
    from tracr.run.retry import RetryPolicy

    image = "data:image/png;base64," + base64.b64encode(os.urandom(110_000)).decode()
    messages = [{"role": "user", "content": [{"type": "text", "text": "OCR"}, {"type": "image_url", "image_url": {"url": image}}]}]
    gate = asyncio.Semaphore(inflight)
    tracr_client = None
    if variant == "tracr":
        tracr_client = OcrClient(
            base_url=base_url, api_key="bench", model="stub-ocr", max_concurrent_requests=inflight, timeout_s=60, policy=RetryPolicy()
        )
    else:
        if variant == "sdk-httpx":
            http = httpx.AsyncClient(limits=httpx.Limits(max_connections=inflight, max_keepalive_connections=inflight), timeout=60)
        else:
            http = openai.DefaultAsyncHttpx2Client(
                limits=httpx2.Limits(max_connections=inflight, max_keepalive_connections=inflight), timeout=60
            )
        sdk = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0, http_client=http)  # type: ignore[arg-type]

    async def one() -> str:
        async with gate:
            if tracr_client is not None:
                result = await tracr_client.ocr(image, prompt="OCR", max_tokens=4096, temperature=0.0)
                return result.text or ""
            stream = await sdk.chat.completions.create(
                model="stub-ocr", messages=messages, max_tokens=4096, stream=True, stream_options={"include_usage": True}
            )
            parts = []
            async for chunk in stream:
                for choice in chunk.choices:
                    if choice.delta and choice.delta.content:
                        parts.append(choice.delta.content)
            return "".join(parts)

    await one()  # connections, imports and first-call caches out of the measurement
    cpu, wall = _cpu(), time.perf_counter()
    texts = await asyncio.gather(*(one() for _ in range(requests)))
    return {
        "variant": variant,
        "cpu_s": round(_cpu() - cpu, 3),
        "wall_s": round(time.perf_counter() - wall, 3),
        "pages_with_text": sum(bool(t) for t in texts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=600, help="streamed requests per variant (default: 600)")
    parser.add_argument("--inflight", type=int, default=64, help="requests in flight (default: 64)")
    parser.add_argument("--words", type=int, default=64, help="words per reply (default: 64)")
    parser.add_argument("--chunk-words", type=int, default=4, help="words per streamed chunk (default: 4)")
    parser.add_argument("--latency", type=float, default=0.1, help="stub seconds per request (default: 0.1)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds over the variants (default: 2)")
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "BASE_URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(asyncio.run(_child(args.child[0], args.child[1], args.requests, args.inflight))), flush=True)
        return

    from tracr.testing.processes import start_server_process, stop_process_group

    stub_config = {"latency_s": args.latency, "output_tokens": args.words, "chunk_words": args.chunk_words}
    stub, port = start_server_process(["tracr.testing.openai_stub", "--port", "0", "--config", json.dumps(stub_config)])
    rows = []
    try:
        for round_number in range(args.repeat):
            for variant in VARIANTS:
                command = [sys.executable, __file__, "--child", variant, f"http://127.0.0.1:{port}/v1"]
                command += ["--requests", str(args.requests), "--inflight", str(args.inflight)]
                done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=1800)
                line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
                if line is None:
                    raise RuntimeError(f"{variant} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
                row = {"round": round_number + 1, **json.loads(line[7:])}
                rows.append(row)
                print(f"round {row['round']}  {variant:10}  cpu {row['cpu_s']:6.2f} s  wall {row['wall_s']:6.2f} s", flush=True)
    finally:
        stop_process_group(stub)
    for round_number in range(1, args.repeat + 1):
        base = next(r["cpu_s"] for r in rows if r["round"] == round_number and r["variant"] == VARIANTS[0])
        for row in rows:
            if row["round"] == round_number:
                row["cpu_ratio_to_sdk_httpx"] = round(row["cpu_s"] / base, 3)
    results = {**stub_config, "requests": args.requests, "inflight": args.inflight, "cpus": os.cpu_count(), "rows": rows}
    out = REPO / "bench" / "results" / "stream_reader.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    for row in rows:
        print(f"round {row['round']}  {row['variant']:10}  cpu ratio to sdk-httpx {row['cpu_ratio_to_sdk_httpx']:.3f}")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
