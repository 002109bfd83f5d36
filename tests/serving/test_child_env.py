"""Children get an allow-listed environment: real processes report what they were given.

A local server is started through the launcher the runs use (``server_spec_for`` then
``start_server``) with a tiny ``python -c`` standing in for ``vllm``: it writes the
environment it got to a file. Render workers are the real pool's processes; their
environment is read from ``/proc/<pid>/environ`` (what the kernel started them with)
and from ``os.getenv`` inside the worker.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import sys
import time
from pathlib import Path

import pytest

from tasks.documents.render_pool import RenderPool
from tasks.serving.process import start_server, stop_server
from tasks.serving.runtimes import server_pass_env, server_spec_for
from tracr.config.models import model_spec
from tracr.documents.pdf import worker_ready
from tracr.outputs.layout import OutputLayout
from tracr.serving.child_env import child_environment, container_environment, host_pass_env, is_secret_name

#: Variables a child must never see unless it asks: other providers' keys, other models' keys, Prefect's, the cloud's.
FOREIGN = {
    "OPENAI_API_KEY": "sk-foreign-openai-0a1b2c3d4e5f6a7b8c9d",
    "GEMINI_API_KEY": "AIzaForeignForeignForeignForeign0123456",
    "TRACR_API_KEY_OTHER_MODEL": "inline-key-of-another-model-7f3e",
    "PREFECT_API_KEY": "pnu_foreign0123456789abcdefghijklmnopqr",
    "PREFECT_API_AUTH_STRING": "admin:foreign-pass",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "GITHUB_TOKEN": "ghp_foreignforeignforeignforeignforeign12",
    "SOME_UNRELATED_SETTING": "not on the allow list either",
}
OWN_KEY = {"TRACR_API_KEY_ORG_OCR_7B": "own-inline-key-1234"}


@pytest.fixture
def secret_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**FOREIGN, **OWN_KEY}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HF_HOME", "/tmp/hf-home-for-test")
    monkeypatch.setenv("HF_TOKEN", "hf_gatedweightsdownloadtoken0123456789")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.setenv("VLLM_LOGGING_LEVEL", "DEBUG")
    monkeypatch.setenv("NEEDED_BY_SERVER_TOKEN", "asked-for-by-pass-env")
    monkeypatch.delenv("TRACR_PASS_ENV", raising=False)


# -- the rules ---------------------------------------------------------------------------


def test_allow_list_keeps_runtime_drops_secrets_and_everything_else():
    parent = {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "LC_ALL": "C.UTF-8",
        "CUDA_VISIBLE_DEVICES": "0",
        "NCCL_DEBUG": "INFO",
        "HF_HOME": "/hf",
        "HF_HUB_OFFLINE": "1",
        "VLLM_USE_V1": "1",
        "VIRTUAL_ENV": "/venv",
        "HF_TOKEN": "hf_x",
        "VLLM_API_KEY": "k",
        **FOREIGN,
    }
    env = child_environment(parent)
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "LC_ALL": "C.UTF-8",
        "CUDA_VISIBLE_DEVICES": "0",
        "NCCL_DEBUG": "INFO",
        "HF_HOME": "/hf",
        "HF_HUB_OFFLINE": "1",
        "VLLM_USE_V1": "1",
        "VIRTUAL_ENV": "/venv",
    }  # HF_TOKEN and VLLM_API_KEY have runtime prefixes but secret names: only when asked for


def test_asked_for_names_pass_even_when_secret_shaped_and_set_values_win():
    parent = {
        "PATH": "/usr/bin",
        "HF_TOKEN": "hf_x",
        "MY_KEY": "k",
        "OPENAI_API_KEY": "sk",
        "OMP_NUM_THREADS": "8",
        "SITE_A": "a",
        "SITE_B": "b",
    }
    env = child_environment(parent, wanted=["HF_TOKEN", "MY_KEY", "SITE_*", "NOT_SET"], set_env={"OMP_NUM_THREADS": "1"})
    assert env == {"PATH": "/usr/bin", "HF_TOKEN": "hf_x", "MY_KEY": "k", "OMP_NUM_THREADS": "1", "SITE_A": "a", "SITE_B": "b"}


def test_container_gets_only_what_it_asks_for():
    parent = {"PATH": "/usr/bin", "HOME": "/h", "HF_TOKEN": "hf_x", **FOREIGN}
    assert container_environment(parent, wanted=["HF_TOKEN", "VLLM_API_KEY"], set_env={"OMP_NUM_THREADS": "1"}) == {
        "HF_TOKEN": "hf_x",
        "OMP_NUM_THREADS": "1",
    }


def test_host_pass_env_and_secret_names():
    assert host_pass_env({"TRACR_PASS_ENV": " FOO, BAR_* ,,"}) == ("FOO", "BAR_*")
    assert host_pass_env({}) == ()
    assert all(
        is_secret_name(n)
        for n in [*FOREIGN, "HF_TOKEN", "VLLM_API_KEY", "DB_PASSWORD", "GOOGLE_APPLICATION_CREDENTIALS"]
        if n != "SOME_UNRELATED_SETTING"
    )
    assert not any(is_secret_name(n) for n in ["PATH", "HF_HOME", "CUDA_VISIBLE_DEVICES", "VLLM_LOGGING_LEVEL"])


def test_a_server_asks_for_its_own_key_never_another_models():
    vllm = model_spec(model="org/ocr-7b", mode="local", provider="vllm", api_key_env="TRACR_API_KEY_ORG_OCR_7B", pass_env=["SITE_LICENSE"])
    assert server_pass_env(vllm) == ("TRACR_API_KEY_ORG_OCR_7B", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "VLLM_API_KEY", "SITE_LICENSE")
    ocr = model_spec(model="rapidocr", mode="local", provider="tracr-ocr")
    assert server_pass_env(ocr) == ()  # the CPU OCR server downloads nothing gated and checks no key


def test_pass_env_must_name_variables():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="must name an environment variable"):
        model_spec(model="org/m", mode="local", provider="vllm", pass_env=["hf_abc=secret"])


# -- a real server process ---------------------------------------------------------------

_REPORT_ENV = "import json, os, sys, time; open(os.environ['REPORT_TO'], 'w').write(json.dumps(dict(os.environ))); time.sleep(60)"


def _wait_for(path: Path, timeout_s: float = 20.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            return dict(json.loads(path.read_text()))
        except (FileNotFoundError, ValueError):
            time.sleep(0.05)
    raise AssertionError(f"the child never reported its environment to {path}")


def test_local_server_child_gets_the_allow_list_its_key_and_nothing_else(tmp_path, secret_parent, monkeypatch):
    report = tmp_path / "child-env.json"
    monkeypatch.setenv("REPORT_TO", str(report))
    monkeypatch.setenv("TRACR_PASS_ENV", "REPORT_TO")  # the host-wide extra names
    model = model_spec(
        model="org/ocr-7b",
        mode="local",
        provider="vllm",
        api_key_env="TRACR_API_KEY_ORG_OCR_7B",  # as move_literal_keys_to_env leaves a key written in the config
        pass_env=["NEEDED_BY_SERVER_TOKEN"],
        vllm_executable=f"{shlex.quote(sys.executable)} -c {shlex.quote(_REPORT_ENV)}",
    )
    location = OutputLayout(tmp_path / "out").allocate_run("job", model.slug)
    spec = server_spec_for(model, location, gpu_ids=(1,))
    handle = start_server(spec)
    try:
        env = _wait_for(report)
    finally:
        stop_server(handle, grace_s=2)
    assert not set(FOREIGN) & set(env), sorted(set(FOREIGN) & set(env))
    assert not any(value in json.dumps(env) for value in FOREIGN.values())
    assert env["PATH"] == os.environ["PATH"] and env["HOME"] == os.environ["HOME"]
    assert env["TRACR_API_KEY_ORG_OCR_7B"] == "own-inline-key-1234"  # its own key
    assert env["HF_TOKEN"].startswith("hf_")  # vLLM reads it for gated weights
    assert env["NEEDED_BY_SERVER_TOKEN"] == "asked-for-by-pass-env"  # the model's pass_env
    assert env["HF_HOME"] == "/tmp/hf-home-for-test" and env["LC_ALL"] == "C.UTF-8" and env["VLLM_LOGGING_LEVEL"] == "DEBUG"
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and env["OMP_NUM_THREADS"] == "1"  # what the launcher sets
    assert env["REPORT_TO"] == str(report)  # TRACR_PASS_ENV


def test_tracr_ocr_server_gets_no_key_at_all(tmp_path, secret_parent, monkeypatch):
    from tasks.serving.process import ServerSpec

    report = tmp_path / "child-env.json"
    spec = ServerSpec(
        command=[sys.executable, "-c", _REPORT_ENV.replace("os.environ['REPORT_TO']", repr(str(report)))],
        served_model="m",
        port=1,
        log_path=tmp_path / "server.log",
        pass_env=server_pass_env(model_spec(model="rapidocr", mode="local", provider="tracr-ocr")),
    )
    handle = start_server(spec)
    try:
        env = _wait_for(report)
    finally:
        stop_server(handle, grace_s=2)
    assert [name for name in env if is_secret_name(name)] == []
    assert "PATH" in env and "HF_HOME" in env


# -- render workers ----------------------------------------------------------------------


def _proc_environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
async def test_render_workers_start_without_secrets(secret_parent):
    pool = RenderPool(workers=2)
    try:
        loop = asyncio.get_running_loop()
        pids = set(await asyncio.gather(*(loop.run_in_executor(pool._executor, worker_ready) for _ in range(4))))
        assert pids and os.getpid() not in pids
        for pid in pids:
            started_with = _proc_environ(pid)  # the block the kernel started the worker with
            assert not set(FOREIGN) & set(started_with) and not set(OWN_KEY) & set(started_with)
            assert "HF_TOKEN" not in started_with and "PATH" in started_with
        seen = await asyncio.gather(*(loop.run_in_executor(pool._executor, os.getenv, name) for name in [*FOREIGN, *OWN_KEY, "PATH"]))
        assert seen[:-1] == [None] * (len(FOREIGN) + len(OWN_KEY))  # the worker's own os.environ
        assert seen[-1] == os.environ["PATH"]
        # still a working render pool
        assert await loop.run_in_executor(pool._executor, abs, -3) == 3
    finally:
        pool.shutdown()


# -- a vLLM container --------------------------------------------------------------------


async def test_vllm_container_gets_only_what_it_asks_for(tmp_path, secret_parent, monkeypatch):
    """start_vllm_container up to the engine call: the environment handed to Docker (no engine needed)."""
    import prefect_docker.containers

    from tasks.serving.containers import ContainerStartError, start_vllm_container

    given: dict[str, object] = {}

    async def create_docker_container(**kwargs: object) -> None:
        given.update(kwargs)
        raise RuntimeError("no engine in this test")

    monkeypatch.setattr(prefect_docker.containers, "create_docker_container", create_docker_container)
    monkeypatch.setenv("VLLM_API_KEY", "key-vllm-checks-0000")
    model = model_spec(
        model="org/ocr-7b", mode="local", provider="vllm", runtime="docker", api_key_env="VLLM_API_KEY", pass_env=["NEEDED_BY_SERVER_TOKEN"]
    )
    with pytest.raises(ContainerStartError):
        await start_vllm_container(model, ["serve", "org/ocr-7b"], None, tmp_path / "server.log", {})
    assert given["environment"] == {
        "OMP_NUM_THREADS": "1",
        "VLLM_API_KEY": "key-vllm-checks-0000",
        "HF_TOKEN": "hf_gatedweightsdownloadtoken0123456789",
        "NEEDED_BY_SERVER_TOKEN": "asked-for-by-pass-env",
    }  # no PATH/HOME of the host either: the image has its own
