"""The Docker work pool path: the project image (deployments/Dockerfile on the offline base),
a Prefect Docker worker, ``prefect deploy`` of the ``docker`` deployment from
deployments/prefect.yaml, a run triggered from the CLI that completes in a container and
writes to a mounted outputs folder.

The deployment's GPU device request (``container_create_kwargs``) and host volumes are
overridden per run with ``--job-variable``: this engine has no NVIDIA runtime, and the
outputs go to the test's folder. Everything else (image, pull step, env) is the file's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import make_pdf

pytestmark = pytest.mark.usefixtures("prefect_server")
REPO = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).parent / "prefect")


def _prefect(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [PREFECT, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, env={**os.environ, "PREFECT_CLI_PROMPT": "false"}
    )
    assert result.returncode == 0, (
        f"prefect {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result


@pytest.mark.timeout(1800)
async def test_a_cli_run_on_the_docker_pool_completes_in_the_project_image(tmp_path, project_image, docker_engine):
    from prefect.client.orchestration import get_client

    assert project_image == "tracr:latest"  # the name deployments/prefect.yaml gives
    inputs, outputs = tmp_path / "inputs", tmp_path / "outputs"
    make_pdf(inputs / "doc.pdf", 2)
    outputs.mkdir()
    pool = "tracr-docker"  # as named in deployments/prefect.yaml
    _prefect("work-pool", "create", pool, "--type", "docker", "--overwrite")
    deployed = _prefect("deploy", "--prefect-file", "deployments/prefect.yaml", "--name", "docker", "--no-prompt")
    assert "ocr-job/docker" in deployed.stdout, deployed.stdout

    worker_log = tmp_path / "worker.log"
    with worker_log.open("wb") as log:
        worker = subprocess.Popen(
            [PREFECT, "worker", "start", "--pool", pool, "--type", "docker", "--name", f"docker-test-{uuid.uuid4().hex[:6]}"],
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        job_id = f"pool-{uuid.uuid4().hex[:6]}"
        request = {
            "config": {
                "job_id": job_id,
                "input_path": "/inputs",
                "models": [{"model": "text-layer", "mode": "local", "provider": "pdf-text"}],
            },
        }
        started = time.monotonic()
        run = _prefect(
            "deployment",
            "run",
            "ocr-job/docker",
            "--param",
            f"request={json.dumps(request)}",
            "--job-variable",
            f"volumes={json.dumps([f'{outputs}:/outputs', f'{inputs}:/inputs:ro'])}",
            "--job-variable",
            'container_create_kwargs={"ipc_mode": "host"}',  # no GPU device request: no NVIDIA runtime here
            "--job-variable",
            f"labels={json.dumps({'io.tracr.test': job_id})}",
            "--watch",
            "--watch-timeout",
            "600",
            timeout=700,
        )
        elapsed = time.monotonic() - started
        print(f"\nDocker pool run: triggered to terminal state in {elapsed:.1f}s")
        assert "Completed" in run.stdout, run.stdout[-3000:] + worker_log.read_text()[-4000:]
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()

    run_dir = outputs / job_id / "text-layer" / "run-1"
    assert (run_dir / "doc" / "1.md").is_file() and "quick brown fox" in (run_dir / "doc" / "2.md").read_text()
    meta = json.loads((run_dir / "run_metadata.json").read_text())
    assert meta["status"] == "completed" and meta["rollup"]["pages_done"] == 2
    async with get_client() as client:
        runs = await client.read_flow_runs()
    ours = [r for r in runs if ((r.parameters.get("request") or {}).get("config") or {}).get("job_id") == job_id]
    assert len(ours) == 1 and ours[0].state.is_completed()
    assert ours[0].infrastructure_pid  # the worker recorded the container it started
    # auto_remove: the flow run's container is gone
    assert docker_engine.containers.list(all=True, filters={"label": f"io.tracr.test={job_id}"}) == []
