"""Children get an allow-listed environment: real processes report what they were given.

A local server is started through the launcher the runs use (``server_spec_for`` then
``start_server``) with a tiny ``python -c`` standing in for ``vllm``: it writes the
environment it got to a file. Render workers are the real pool's processes; their
environment is read from ``/proc/<pid>/environ`` (what the kernel started them with)
and from ``os.getenv`` inside the worker. Last, a real ``tracr run`` with keys in its
environment: every process below it (render workers, multiprocessing's resource
tracker, the built-in OCR server, whatever a library starts) is read from ``/proc``
while it runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tasks.documents.render_pool import RenderPool
from tasks.serving.process import start_server, stop_server
from tasks.serving.runtimes import server_pass_env, server_spec_for
from tests.conftest import TEST_API_KEY, make_pdf, write_config
from tracr.config.models import model_spec
from tracr.documents.pdf import worker_ready
from tracr.outputs.layout import OutputLayout
from tracr.serving.child_env import child_environment, container_environment, host_pass_env, is_secret_name
from tracr.testing.processes import start_server_process, stop_process_group

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
REPO = Path(__file__).resolve().parents[2]


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


_POOL_AND_TRACKER = """
import sys
from multiprocessing import resource_tracker
from tasks.documents.render_pool import RenderPool
pool = RenderPool(workers=1)
worker = pool.start()[0].result()
print(resource_tracker._resource_tracker._pid, worker, flush=True)
sys.stdin.read()
pool.shutdown()
"""


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_the_pools_resource_tracker_starts_without_secrets(secret_parent):
    """A fresh process (no tracker yet) makes a render pool: the helper multiprocessing starts for it has no key.

    Before the fix CPython started the tracker from ``os.environ`` when the pool made
    its first lock, so every key of the process was in its ``/proc/<pid>/environ``.
    """
    proc = subprocess.Popen([sys.executable, "-c", _POOL_AND_TRACKER], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        tracker, worker = (int(pid) for pid in proc.stdout.readline().split())
        for pid in (tracker, worker):
            started_with = _proc_environ(pid)
            assert _parent_pid(str(pid)) == proc.pid
            assert not set(FOREIGN) & set(started_with) and not set(OWN_KEY) & set(started_with), sorted(started_with)
            assert "HF_TOKEN" not in started_with and started_with["PATH"] == os.environ["PATH"]
    finally:
        proc.communicate(timeout=60)
    assert proc.returncode == 0


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


# -- every process a real `tracr run` starts -------------------------------------------------

RUN_KEY_ENV = "TRACR_CHILD_ENV_RUN_KEY"  # the stub model's key, read from the environment by the run
#: Every secret the run's parent environment holds: none may reach any process below the run.
RUN_SECRETS = {**FOREIGN, **OWN_KEY, "HF_TOKEN": "hf_gatedweightsdownloadtoken0123456789", RUN_KEY_ENV: TEST_API_KEY}
#: The kinds of child a run of the job below starts (each must be seen, so the checks cover them).
CHILD_KINDS = {
    "resource tracker": "multiprocessing.resource_tracker",
    "render worker": "multiprocessing.spawn",
    "OCR server": "tracr.servers.rapidocr_server",
}


@dataclass
class WatchedRun:
    """A finished ``tracr run``: what /proc showed of each process below it, and (under strace) every exec's text."""

    returncode: int
    output: str
    seen: dict[tuple[int, str], dict[str, str]]  # (pid, command line) -> the environment it started with
    execs: list[str] | None  # strace's execve lines of processes below the run; None without strace


def _parent_pid(pid: str) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _descendants(root: int) -> list[int]:
    parents = {int(pid): _parent_pid(pid) for pid in os.listdir("/proc") if pid.isdigit()}
    found, frontier = [], {root}
    while frontier:
        children = {pid for pid, parent in parents.items() if parent in frontier}
        found += children
        frontier = children
    return found


def _watch_descendants(proc: subprocess.Popen[str]) -> dict[tuple[int, str], dict[str, str]]:
    """Until ``proc`` exits: each descendant's command line and the environment the kernel started it with.

    A pid is read again when its command line changes: between fork and exec a child
    still shows the run's own (and is no new program yet), after exec its own.
    """
    seen: dict[tuple[int, str], dict[str, str]] = {}
    while proc.poll() is None:
        for pid in _descendants(proc.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if cmdline and (pid, cmdline) not in seen:
                    seen[(pid, cmdline)] = _proc_environ(pid)
            except OSError:
                continue  # it ended between the listing and the read
        time.sleep(0.05)
    return {key: env for key, env in seen.items() if " cli.main run " not in key[1]}  # the run itself holds the keys


def _strace() -> list[str] | None:
    """``strace`` logging every exec with its whole environment, where it is installed and may trace."""
    if shutil.which("strace") is None:
        return None
    probe = subprocess.run(["strace", "-f", "--seccomp-bpf", "-qq", "-e", "trace=execve", "-o", "/dev/null", "true"], capture_output=True)
    # --seccomp-bpf: only the execs stop the traced processes, so the run keeps its speed
    flags = ["-f", "--seccomp-bpf", "-qq", "-e", "trace=execve", "-e", "signal=none", "-v", "-s", "1000000"]
    return ["strace", *flags] if probe.returncode == 0 else None


def _watch_run(tmp: Path, models: list[dict[str, object]], env: dict[str, str], *extra: str) -> WatchedRun:
    """``tracr run`` of ``models`` over a 2-page PDF, as a real process (under strace where it can), watched until it ends."""
    make_pdf(tmp / "inputs" / "doc.pdf", 2)
    config = write_config(tmp / "job.yaml", {"job_id": "child-env", "input_path": str(tmp / "inputs"), "models": models})
    tracer = _strace()
    trace = tmp / "execs.txt"
    command = [sys.executable, "-m", "cli.main", "run", str(config), "--outputs", str(tmp / "out"), "--no-progress", *extra]
    proc = subprocess.Popen(
        [*tracer, "-o", str(trace), *command] if tracer else command,
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        seen = _watch_descendants(proc)
        output = proc.communicate(timeout=300)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    execs = None
    if tracer:
        lines = [line for line in trace.read_text(errors="replace").splitlines() if "execve(" in line]
        execs = [line for line in lines if " cli.main run " not in line.replace('", "', " ")]  # all but the run's own exec
    return WatchedRun(proc.returncode, output, seen, execs)


@pytest.fixture(scope="module")
def watched_run(tmp_path_factory: pytest.TempPathFactory, prefect_server: str) -> Iterator[WatchedRun]:
    """One real ``tracr run`` (a local OCR server, a key from the environment, a key in the config), watched."""
    stub, port = start_server_process(["tracr.testing.openai_stub", "--port", "0", "--config", json.dumps({"api_key": TEST_API_KEY})])
    try:
        base_url = f"http://127.0.0.1:{port}/v1"
        models: list[dict[str, object]] = [
            {"model": "tracr-ocr", "mode": "local", "provider": "tracr-ocr", "max_concurrent_requests": 1},  # a local server
            {"model": "stub-ocr", "base_url": base_url, "api_key_env": RUN_KEY_ENV, "retries": 0},  # a key from the environment
            {"model": "stub-ocr", "name": "stub-inline", "base_url": base_url, "api_key": TEST_API_KEY, "retries": 0},  # in the config
        ]
        env = {**os.environ, **RUN_SECRETS}
        env.pop("TRACR_PASS_ENV", None)
        yield _watch_run(tmp_path_factory.mktemp("watched-run"), models, env)
    finally:
        stop_process_group(stub)


def _leaks(environment_text: str) -> list[str]:
    """The secrets (by name or by value) found in one process's environment, as text."""
    named = [name for name in RUN_SECRETS if f"{name}=" in environment_text]
    valued = [name for name, value in RUN_SECRETS.items() if value in environment_text]
    inline = ["TRACR_API_KEY_STUB_INLINE"] if "TRACR_API_KEY_" in environment_text else []
    return sorted({*named, *valued, *inline})


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_no_process_below_a_real_run_starts_with_a_key(watched_run: WatchedRun) -> None:
    """The built-in OCR server, render workers, the resource tracker: none started with a key, none missed.

    Before the fix, multiprocessing's resource tracker started from the run's whole
    environment (``OPENAI_API_KEY`` and the rest in its ``/proc/<pid>/environ``).
    """
    assert watched_run.returncode == 0, watched_run.output
    commands = sorted(cmdline for _, cmdline in watched_run.seen)
    for kind, marker in CHILD_KINDS.items():  # the watch saw each kind of child, so the check below covers them
        assert any(marker in cmdline for cmdline in commands), (kind, commands)
    for (pid, cmdline), started_with in watched_run.seen.items():
        text = "\n".join(f"{name}={value}" for name, value in started_with.items())
        assert not _leaks(text), (pid, cmdline, _leaks(text))
        assert [name for name in started_with if is_secret_name(name)] == [], (pid, cmdline)


def test_no_helper_a_real_run_execs_gets_a_key(watched_run: WatchedRun) -> None:
    """Every exec below the run, however short-lived (a library's ``uname -p``), traced with its environment.

    Before the fix the openai SDK's ``platform.platform()`` ran ``uname -p`` with the
    run's whole environment, and the resource tracker started with it too.
    """
    if watched_run.execs is None:
        pytest.skip("strace is not installed here, or may not trace: the /proc watch above still runs")
    assert watched_run.returncode == 0, watched_run.output
    for kind, marker in CHILD_KINDS.items():
        assert any(marker in line for line in watched_run.execs), (kind, watched_run.execs)
    for line in watched_run.execs:
        assert not _leaks(line), (line[:300], _leaks(line))


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_prefects_ephemeral_server_starts_without_a_key(tmp_path: Path) -> None:
    """``tracr run --ephemeral``: Prefect's throwaway server gets Prefect's settings, no model key.

    Before the fix Prefect started it with ``{**os.environ}``: every key of the command.
    """
    models: list[dict[str, object]] = [{"model": "pdf-text-layer", "mode": "local", "provider": "pdf-text"}]
    secrets = {name: value for name, value in RUN_SECRETS.items() if not name.startswith("PREFECT_")}  # the server's own: below
    env = {**{k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "TRACR_PASS_ENV")}, **secrets}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")  # the throwaway server's database goes there
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"  # a new database on a busy machine
    run = _watch_run(tmp_path, models, env, "--ephemeral")
    assert run.returncode == 0, run.output
    servers = {key: started_with for key, started_with in run.seen.items() if "prefect.server.api.server:create_app" in key[1]}
    assert servers, sorted(cmdline for _, cmdline in run.seen)
    for (pid, cmdline), started_with in run.seen.items():
        text = "\n".join(f"{name}={value}" for name, value in started_with.items())
        assert not _leaks(text), (pid, cmdline, _leaks(text))
    for started_with in servers.values():
        assert started_with["PREFECT__SERVER_EPHEMERAL"] == "1" and started_with["PATH"] == os.environ["PATH"]
