"""A deleted and recreated outputs root, and another filesystem under the same path, through the real CLI.

Host A is this machine running ``tracr run`` / ``tracr doctor`` against the local
Prefect server tracr starts (a private ``TRACR_HOME``, its own port, no
``PREFECT_API_URL``). Host B (``TRACR_GPU_HOST=node-b``) shares that server but
sees its own tmpfs under the very same outputs path: each of its commands runs
in a mount namespace (``unshare -m``) with the tmpfs bind-mounted over the path.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import mounted_tmpfs
from tracr.serving.host import normalise_host

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "tracr" / "samples"
pytestmark = [
    pytest.mark.timeout(900),
    pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0, reason="needs root and unshare for host B's mounts"),
]


def _free_port() -> int:
    for _ in range(200):
        port = random.randint(21000, 39000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port")


def _tracr(args: list[str], env: dict[str, str], prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*prefix, sys.executable, "-m", "cli.main", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=400
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result


def _storage_line(doctor: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    match = re.search(r"^(OK|WARN|FAIL) +storage +(.*)$", doctor.stdout, re.M)
    assert match, doctor.stdout + doctor.stderr
    return match.group(1), match.group(2)


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    home = tmp_path_factory.mktemp("tracr-home")
    work = tmp_path_factory.mktemp("work")
    port = _free_port()
    env_a = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k not in ("TRACR_GPU_HOST", "TRACR_OUTPUTS")}
    env_a.update(TRACR_HOME=str(home), TRACR_PREFECT_PORT=str(port), TRACR_PREFECT_PORT_FALLBACKS="0", PREFECT_HOME=str(home / "client"))
    config = work / "text.yaml"
    config.write_text(
        f"job_id: textonly\ninput_path: {SAMPLES}/\nmodels:\n  - model: pdf-text-layer\n    mode: local\n    provider: pdf-text\n"
    )
    disks = mounted_tmpfs(work, "64m")
    disk = next(disks)  # host B's own filesystem
    yield {
        "env_a": env_a,
        "port": port,
        "config": config,
        "outputs": work / "outputs",
        "disk": disk,
        "host_a": normalise_host(socket.gethostname()),
    }
    _tracr(["server", "stop"], env_a)
    next(disks, None)  # unmounts


def _on_host_b(hosts: dict[str, object], args: list[str]) -> subprocess.CompletedProcess[str]:
    """``tracr ARGS`` as node-b: the same Prefect server (by URL), its own filesystem under the same outputs path."""
    env = {**hosts["env_a"], "TRACR_GPU_HOST": "node-b", "PREFECT_API_URL": f"http://127.0.0.1:{hosts['port']}/api"}  # type: ignore[dict-item]
    mount = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'
    prefix = ("unshare", "-m", "--propagation", "private", "sh", "-c", mount, "sh", str(hosts["disk"]), str(hosts["outputs"]))
    return _tracr(args, env, prefix)


def test_a_deleted_outputs_root_just_works_and_doctor_agrees(hosts: dict[str, object]) -> None:
    env, config, outputs = hosts["env_a"], str(hosts["config"]), hosts["outputs"]
    assert isinstance(env, dict) and isinstance(outputs, Path)
    first = _tracr(["run", config, "--outputs", str(outputs)], env)
    assert first.returncode == 0, first.stdout + first.stderr
    shutil.rmtree(outputs)  # the everyday clean-up

    level, detail = _storage_line(_tracr(["doctor", "--outputs", str(outputs)], env))
    assert level == "OK" and "no root yet" in detail and "publishes the new id" in detail, detail
    again = _tracr(["run", config, "--outputs", str(outputs)], env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (outputs / "textonly" / "pdf-text-layer" / "run-1" / "run_metadata.json").is_file()
    level, detail = _storage_line(_tracr(["doctor", "--outputs", str(outputs)], env))
    assert level == "OK" and f"the one published by host {hosts['host_a']}" in detail, detail


def test_another_filesystem_under_the_same_path_is_refused_until_reset(hosts: dict[str, object]) -> None:
    env, config, outputs, disk = hosts["env_a"], str(hosts["config"]), hosts["outputs"], hosts["disk"]
    assert isinstance(env, dict) and isinstance(outputs, Path) and isinstance(disk, Path)
    outputs.mkdir(exist_ok=True)
    if not (outputs / ".tracr" / "root-id").exists():  # run alone: host A publishes its root first
        assert _tracr(["run", config, "--outputs", str(outputs)], env).returncode == 0
    reset = f"tracr storage reset --outputs {outputs}"
    published_by_a = re.compile(rf"host {hosts['host_a']} at \d{{4}}-\d\d-\d\dT[\d:.]+Z? published id [0-9a-f]{{32}}")

    level, detail = _storage_line(_on_host_b(hosts, ["doctor", "--outputs", str(outputs)]))
    assert level == "FAIL" and "(host node-b)" in detail and published_by_a.search(detail) and reset in detail, detail
    refused = _on_host_b(hosts, ["run", config, "--outputs", str(outputs)])
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "not the same filesystem" in refused.stderr and published_by_a.search(refused.stderr) and reset in refused.stderr, refused.stderr
    assert not (disk / "textonly").exists()  # nothing written on B's filesystem

    moved = _on_host_b(hosts, ["storage", "reset", "--outputs", str(outputs)])  # the root moved to B's filesystem on purpose
    assert moved.returncode == 0 and "is now the one published for this path" in moved.stdout, moved.stdout + moved.stderr
    done = _on_host_b(hosts, ["run", config, "--outputs", str(outputs)])
    assert done.returncode == 0, done.stdout + done.stderr
    assert (disk / "textonly" / "pdf-text-layer" / "run-1" / "run_metadata.json").is_file()

    level, detail = _storage_line(_tracr(["doctor", "--outputs", str(outputs)], env))  # now host A is the odd one out
    assert level == "FAIL" and "published id" in detail and "host node-b at" in detail and reset in detail, detail
    status = _tracr(["storage", "--outputs", str(outputs)], env)
    assert status.returncode == 1 and _storage_line(status) == ("FAIL", detail)
