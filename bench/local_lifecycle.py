"""What the local-model-server subflow adds to starting a server, against the bare process lifecycle.

    python bench/local_lifecycle.py              # 5 rounds
    python bench/local_lifecycle.py --repeat 10

Both sides start the same stand-in vLLM (``tracr.testing.fake_vllm``, a real
process with an engine child) on a free port, wait until ``/v1/models`` lists
the model, and stop its process group:

* reference: ``tasks.serving.process`` alone (start_server, wait_until_healthy, stop_server);
* lifecycle: ``serve_local_model`` on a declared 1-GPU host (``TRACR_GPUS=1x80GB``):
  a Prefect subflow run, the stale-server sweep, preflight, a GPU slot taken and
  released through Prefect's global concurrency limits, the fit check, PID file.

Also timed alone: one GPU slot reserve + release. Prefect is its test harness
(a real API server on SQLite). The rounds alternate the two sides; medians and the
ratio lifecycle / reference go to ``bench/results/local_lifecycle.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


async def _reference(exe: Path, tmp: Path) -> float:
    from tasks.serving.process import ServerSpec, find_free_port, start_server, stop_server, wait_until_healthy

    port = find_free_port()
    command = [str(exe), "serve", "org/bench-7b", "--served-model-name", "org/bench-7b", "--port", str(port)]
    started = time.perf_counter()
    handle = start_server(ServerSpec(command=command, served_model="org/bench-7b", port=port, log_path=tmp / f"ref-{port}.log"))
    try:
        await wait_until_healthy(handle)
    finally:
        await asyncio.to_thread(stop_server, handle)
    return time.perf_counter() - started


async def _lifecycle(tmp: Path, round_no: int) -> float:
    from flows.local_server import serve_local_model
    from tracr.config.models import model_spec
    from tracr.outputs.layout import RunLocation

    spec = model_spec(model="org/bench-7b", mode="local", provider="vllm")
    location = RunLocation(tmp / "out", "bench", "org-bench-7b", round_no)
    started = time.perf_counter()
    async with serve_local_model(spec, location):
        pass
    return time.perf_counter() - started


async def _slot() -> float:
    from tasks.serving.gpu_slots import reserve_gpus
    from tracr.serving.gpus import parse_declared_gpus

    started = time.perf_counter()
    async with reserve_gpus(parse_declared_gpus("1x80GB"), 1):
        pass
    return time.perf_counter() - started


async def main(repeat: int) -> dict:
    from tracr.testing.fake_vllm import install_fake_vllm

    tmp = Path(tempfile.mkdtemp(prefix="tracr-bench-lifecycle-"))
    exe = install_fake_vllm(tmp / "bin")
    os.environ["PATH"] = f"{exe.parent}{os.pathsep}{os.environ['PATH']}"
    os.environ["TRACR_GPUS"] = "1x80GB"
    os.environ["TRACR_GPU_HOST"] = f"bench-{uuid.uuid4().hex[:6]}"
    await _slot()  # first use creates the limit; not timed
    reference, lifecycle, slots = [], [], []
    for round_no in range(1, repeat + 1):
        reference.append(await _reference(exe, tmp))
        lifecycle.append(await _lifecycle(tmp, round_no))
        slots.append(await _slot())
    ref, life = statistics.median(reference), statistics.median(lifecycle)
    return {
        "repeat": repeat,
        "reference_median_s": round(ref, 3),
        "lifecycle_median_s": round(life, 3),
        "ratio_lifecycle_over_reference": round(life / ref, 2),
        "added_median_s": round(life - ref, 3),
        "gpu_slot_reserve_release_median_s": round(statistics.median(slots), 3),
        "reference_s": [round(x, 3) for x in reference],
        "lifecycle_s": [round(x, 3) for x in lifecycle],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        os.environ["PREFECT_API_URL"] = PREFECT_API_URL.value()
        result = asyncio.run(main(args.repeat))
    out = REPO / "bench" / "results" / "local_lifecycle.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
