"""Opt-in group: a real Docker engine, real containers, a real Docker work pool.

Runs when ``TRACR_DOCKER=1`` (the session starts the engine with
``tools/docker/engine.sh`` when none answers, and stops it at the end) or when
``-m docker`` is given and an engine already answers. Otherwise skipped with a
reason saying how to enable it. Images are built offline and cached by
``tools/docker/build_images.sh`` (docs/containers.md).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
OPT_IN_ENV = "TRACR_DOCKER"
ENGINE = REPO / "tools/docker/engine.sh"
BUILD = REPO / "tools/docker/build_images.sh"
STANDIN_IMAGE = os.environ.get("TRACR_STANDIN_IMAGE", "tracr-vllm-standin:latest")
PROJECT_IMAGE = os.environ.get("TRACR_PROJECT_IMAGE", "tracr:latest")
HOW_TO = (
    f"the Docker group is opt-in: as root, `{OPT_IN_ENV}=1 python -m pytest -m docker tests/docker` "
    "(starts dockerd; apt-get install -y docker.io debootstrap tini first), or start an engine "
    "(tools/docker/engine.sh start) and run `python -m pytest -m docker tests/docker`; see docs/containers.md"
)


def _opted_in() -> bool:
    return os.environ.get(OPT_IN_ENV, "") not in ("", "0")


def engine_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def _enabled(config: pytest.Config) -> bool:
    if _opted_in():
        return True
    return "docker" in (config.option.markexpr or "") and engine_answers()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    ours = [item for item in items if here in Path(str(item.path)).parents]
    if not ours:
        return
    enabled = _enabled(config)
    for item in ours:
        item.add_marker(pytest.mark.docker)
        if not enabled:
            item.add_marker(pytest.mark.skip(reason=HOW_TO))


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Any]:
    """A docker-py client to an engine that answers (started here, and stopped at the end, when none did)."""
    import docker

    started = False
    if not engine_answers():
        if not _opted_in():
            pytest.skip(HOW_TO)
        result = subprocess.run(["bash", str(ENGINE), "start"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"could not start the Docker engine:\n{result.stdout}\n{result.stderr}\n{HOW_TO}"
        started = True
    client = docker.from_env(timeout=60)
    try:
        yield client
    finally:
        client.close()
        if started:
            subprocess.run(["bash", str(ENGINE), "stop"], capture_output=True, text=True, timeout=120)


def _build(target: str, timeout: int) -> None:
    result = subprocess.run(["bash", str(BUILD), target], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"tools/docker/build_images.sh {target} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


@pytest.fixture(scope="session")
def standin_image(docker_engine: Any) -> str:
    """The stand-in vLLM image (built when missing or stale: ~2 min cold, seconds warm)."""
    _build("standin", 900)
    return STANDIN_IMAGE


@pytest.fixture(scope="session")
def project_image(docker_engine: Any) -> str:
    """The project image from deployments/Dockerfile on the offline base (~5 min cold, seconds warm)."""
    _build("project", 1500)
    return PROJECT_IMAGE


@pytest.fixture
def tracr_containers(docker_engine: Any) -> Any:
    """Lists the containers, volumes and networks tracr labelled; asserts after the test that none is left."""

    class Labelled:
        def containers(self) -> list[Any]:
            return docker_engine.containers.list(all=True, filters={"label": "io.tracr.serve-key"})

        def volumes(self) -> set[str]:
            return {v.name for v in docker_engine.volumes.list()}

        def networks(self) -> set[str]:
            return {n.name for n in docker_engine.networks.list()}

    labelled = Labelled()
    leftovers = [c for c in labelled.containers()]
    for container in leftovers:  # an earlier aborted session's; not this test's concern
        container.remove(force=True, v=True)
    volumes, networks = labelled.volumes(), labelled.networks()
    yield labelled
    left = [(c.short_id, c.status, c.labels.get("io.tracr.serve-key")) for c in labelled.containers()]
    for container in labelled.containers():
        container.remove(force=True, v=True)
    assert left == [], f"containers left behind: {left}"
    assert labelled.volumes() - volumes == set(), "volumes left behind"
    assert labelled.networks() - networks == set(), "networks left behind"


@pytest.fixture
def gpu_host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A fresh GPU host name (its own slot limits), one declared GPU, a private HF cache folder."""
    name = f"d{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("TRACR_GPU_HOST", name)
    monkeypatch.setenv("TRACR_GPUS", "1x80GB")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("TRACR_DOCKER_GPU_REQUEST", raising=False)
    return name
