"""Deployments: prefect.yaml through Prefect's own loader and `prefect deploy`, and a real `serve` process.

The serve test is the whole path a user takes: `python -m deployments.serve` registers
`ocr-job/<name>` with the test server, runs are triggered through Prefect (the Python
client with a config file, the `prefect deployment run` CLI with an inline config), the
served process executes them against a loopback stub model, and the outputs land on disk.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker.types

from tests.conftest import TEST_API_KEY, write_config
from tracr.config.job_request import JobRequest
from tracr.outputs.files import read_json
from tracr.serving.process_group import group_alive, terminate_group

REPO = Path(__file__).resolve().parents[2]
PREFECT_YAML = REPO / "deployments" / "prefect.yaml"
KEY_ENV = "TRACR_DEPLOY_TEST_KEY"
#: Built on its own branch; where it is absent its deployment is the only one not loaded.
INDEX_ENTRYPOINT = "flows/index_outputs.py"


def _prefect_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def _deploy_configs() -> list[dict[str, Any]]:
    """prefect.yaml as `prefect deploy` reads it (its own loader and pydantic models)."""
    from prefect.cli.deploy._config import _load_deploy_configs_and_actions
    from rich.console import Console

    configs, _ = _load_deploy_configs_and_actions(PREFECT_YAML, console=Console(file=open(os.devnull, "w")))
    return configs


def test_prefect_yaml_loads_and_every_entrypoint_names_its_flow():
    from prefect.cli.deploy._schedules import _schedule_config_to_deployment_schedule
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.flows import load_flow_from_entrypoint

    configs = _deploy_configs()
    assert len(configs) == 3  # an invalid file loads as an empty list
    assert len({c["name"] for c in configs}) == 3  # `prefect deploy --name` selects by deployment name alone
    flows = {}
    for config in configs:
        path, _, _ = config["entrypoint"].partition(":")
        flows[(path, config["name"])] = load_flow_from_entrypoint(str(REPO / config["entrypoint"])).name
    assert flows[("flows/ocr_job.py", "process")] == flows[("flows/ocr_job.py", "docker")] == "ocr-job"
    assert flows[(INDEX_ENTRYPOINT, "index")] == "index-outputs"
    pools = {config["work_pool"]["name"] for config in configs}
    assert pools == {"tracr-process", "tracr-docker"}

    process = next(c for c in configs if c["entrypoint"].startswith("flows/ocr_job.py") and c["name"] == "process")
    [schedule_config] = process["schedules"]
    schedule = _schedule_config_to_deployment_schedule(schedule_config)
    assert isinstance(schedule["schedule"], CronSchedule) and schedule["schedule"].cron == "0 2 * * *"
    assert schedule["active"] is False
    request = JobRequest.model_validate(schedule["parameters"]["request"])  # the schedule submits a valid request
    assert (REPO / request.config_path).is_file()

    docker_job = next(c for c in configs if c["name"] == "docker")["work_pool"]["job_variables"]
    assert docker_job["image"] and docker_job["env"]["TRACR_OUTPUTS"] == "/outputs"
    assert any(v.endswith(":/outputs") for v in docker_job["volumes"]) and any(":/cache/huggingface" in v for v in docker_job["volumes"])
    # docker-py accepts the GPU request as written (it converts these dicts itself at container creation).
    kwargs = docker_job["container_create_kwargs"]
    host = docker.types.HostConfig(version="1.44", device_requests=kwargs["device_requests"], ipc_mode=kwargs["ipc_mode"])
    assert host["DeviceRequests"] == [{"Driver": "nvidia", "Count": -1, "DeviceIDs": [], "Capabilities": [["gpu"]], "Options": {}}]


async def test_prefect_deploy_registers_the_work_pool_deployments(prefect_server):
    """`prefect deploy` itself, against the test server, with process and Docker pools."""
    from prefect.client.orchestration import get_client

    for pool, kind in (("tracr-process", "process"), ("tracr-docker", "docker")):
        created = _prefect_cli("work-pool", "create", pool, "--type", kind, "--overwrite")
        assert created.returncode == 0, created.stdout + created.stderr
    deployed = _prefect_cli("deploy", "--prefect-file", str(PREFECT_YAML), "--all", timeout=300)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr

    async with get_client() as client:
        process = await client.read_deployment_by_name("ocr-job/process")
        in_docker = await client.read_deployment_by_name("ocr-job/docker")
        docker_pool = await client.read_work_pool("tracr-docker")
    assert process.work_pool_name == "tracr-process" and in_docker.work_pool_name == "tracr-docker"
    assert process.entrypoint == "flows/ocr_job.py:ocr_job_flow"
    # The parameter is the JobRequest model: the UI renders it as a form.
    request_schema = process.parameter_openapi_schema["properties"]["request"]
    definitions = process.parameter_openapi_schema["definitions"]
    assert set(definitions[request_schema["$ref"].rsplit("/", 1)[-1]]["properties"]) == set(JobRequest.model_fields)
    assert process.enforce_parameter_schema
    [schedule] = process.schedules
    assert schedule.schedule.cron == "0 2 * * *" and schedule.active is False
    assert schedule.parameters["request"]["config_path"] == "job_configs/example.yaml"
    assert process.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}]
    assert in_docker.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": "/opt/tracr"}}]
    assert in_docker.job_variables["container_create_kwargs"]["device_requests"][0]["driver"] == "nvidia"
    # Job variables are the Docker worker's own (prefect-docker's base job template knows each of them) ...
    assert set(in_docker.job_variables) <= set(docker_pool.base_job_template["variables"]["properties"])
    # ... they build the worker's job configuration as a Docker worker would, and docker-py turns that
    # into container-create arguments with the GPUs, IPC mode and both volumes.
    from docker.models.containers import _create_container_args
    from prefect_docker.worker import DockerWorkerJobConfiguration

    job = await DockerWorkerJobConfiguration.from_template_and_values(docker_pool.base_job_template, in_docker.job_variables)
    assert (
        job.image == "tracr:latest"
        and str(getattr(job.image_pull_policy, "value", job.image_pull_policy)) == "IfNotPresent"
        and job.auto_remove
    )
    assert job.env["TRACR_OUTPUTS"] == "/outputs" and job.env["TRACR_GPU_HOST"]
    create = _create_container_args(
        {"version": "1.44", "image": job.image, "environment": job.env, "volumes": job.volumes, **job.container_create_kwargs}
    )
    host = create["host_config"]
    assert host["DeviceRequests"] == [{"Driver": "nvidia", "Count": -1, "DeviceIDs": [], "Capabilities": [["gpu"]], "Options": {}}]
    assert host["IpcMode"] == "host" and set(host["Binds"]) == set(job.volumes) and "/outputs" in create["volumes"]


def _start_serve(name: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:  # a file, not a pipe: nobody has to drain it
        return subprocess.Popen(
            [sys.executable, "-m", "deployments.serve", "--name", name, "--limit", "2"],
            cwd=REPO,
            env={**os.environ, "PREFECT_RUNNER_POLL_FREQUENCY": "1", **env},  # pick runs up within 1 s, not 10
            start_new_session=True,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


async def _wait_for_deployment(name: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90):
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + timeout
    async with get_client() as client:
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"serve exited early:\n{log.read_text(errors='replace')}"
            try:
                return await client.read_deployment_by_name(name)
            except ObjectNotFound:
                await asyncio.sleep(0.5)
    raise AssertionError(f"{name} was not registered within {timeout}s")


async def test_served_deployment_runs_jobs_triggered_through_prefect(tmp_path, stub_server, pdf_factory, prefect_server):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    stub = stub_server(latency_s=0.01)
    pdf_factory("report.pdf", 2)
    model = {"model": "stub-ocr", "provider": "custom", "base_url": stub.base_url, "api_key_env": KEY_ENV, "retries": 1, "timeout_s": 20}
    config = {"job_id": "served", "input_path": str(tmp_path / "inputs"), "models": [model]}
    config_path = write_config(tmp_path / "served.yaml", config)
    outputs = tmp_path / "out"

    log = tmp_path / "serve.log"
    proc = _start_serve("test-serve", {KEY_ENV: TEST_API_KEY}, log)  # the key lives in the serving machine's environment
    try:
        deployment = await _wait_for_deployment("ocr-job/test-serve", proc, log)
        assert log.read_text().splitlines()[0] == "serving: ocr-job/test-serve, index-outputs/test-serve"
        assert deployment.parameter_openapi_schema["required"] == ["request"]

        # 1. The Python client, naming a config file.
        flow_run = await run_deployment(
            "ocr-job/test-serve",
            parameters={"request": JobRequest(config_path=str(config_path), outputs=str(outputs)).model_dump(exclude_none=True)},
            timeout=240,
            poll_interval=1,
        )
        assert flow_run.state.is_completed(), f"{flow_run.state}\n{log.read_text(errors='replace')}"
        assert flow_run.name == "served"  # the flow-run name is the job id
        run_meta = read_json(outputs / "served/stub-ocr/run-1/run_metadata.json")
        assert run_meta["status"] == "completed" and run_meta["rollup"]["pages_done"] == 2
        assert "stub page" in (outputs / "served/stub-ocr/run-1/report/2.md").read_text()

        # 2. The CLI a user types, passing the config inline and another job id.
        request = {"config": config, "job_id": "served-inline", "outputs": str(outputs)}
        cli = await asyncio.to_thread(
            _prefect_cli,
            "deployment",
            "run",
            "ocr-job/test-serve",
            "--param",
            f"request={json.dumps(request)}",
            "--watch",
            "--watch-interval",
            "1",
            "--watch-timeout",
            "240",
            timeout=300,
        )
        assert cli.returncode == 0, cli.stdout + cli.stderr
        inline_meta = read_json(outputs / "served-inline/stub-ocr/run-1/run_metadata.json")
        assert inline_meta["status"] == "completed" and inline_meta["rollup"]["pages_done"] == 2

        async with get_client() as client:
            runs = await client.read_flow_runs()
        served = [r for r in runs if r.deployment_id == deployment.id]
        assert sorted(r.name for r in served) == ["served", "served-inline"]
        assert all(r.state.is_completed() for r in served)
        assert TEST_API_KEY not in json.dumps([r.model_dump(mode="json") for r in served])
    finally:
        pgid = proc.pid
        terminate_group(proc, 20)
    assert not group_alive(pgid)  # the serve process and any flow-run process it started are gone


def test_serve_refuses_to_run_without_a_prefect_server(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}, "PREFECT_HOME": str(tmp_path)}  # no profile either
    result = subprocess.run([sys.executable, "-m", "deployments.serve"], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert result.returncode == 2
    assert "PREFECT_API_URL is not set: start a server (`prefect server start`)" in result.stderr
