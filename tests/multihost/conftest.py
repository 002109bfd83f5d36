"""Opt-in group: one Prefect server on PostgreSQL and several stand-in GPU hosts.

Runs when ``TRACR_MULTIHOST=1`` (as root: PostgreSQL 15 installed, ``unshare``
allowed; ``tools/multihost/ci.sh`` installs what is missing). Otherwise skipped
with a reason saying how to enable it. The hosts are workers in their own
hostname/PID/mount namespaces over one shared outputs folder
(``tools/multihost/cluster.py``); the local model is the stand-in vLLM.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_API_KEY

REPO = Path(__file__).resolve().parents[2]
OPT_IN_ENV = "TRACR_MULTIHOST"
HOW_TO = (
    f"the multi-host group is opt-in: as root, `{OPT_IN_ENV}=1 python -m pytest -m multihost tests/multihost` "
    "(needs Debian's postgresql 15 and unshare), or `bash tools/multihost/ci.sh`; see docs/deployments.md section 7"
)


def _opted_in() -> bool:
    return os.environ.get(OPT_IN_ENV, "") not in ("", "0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.multihost)
            if not _opted_in():
                item.add_marker(pytest.mark.skip(reason=HOW_TO))


sys.path.insert(0, str(REPO / "tools" / "multihost"))


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    """PostgreSQL + a Prefect server + the ocr-job/process deployment + three hosts (2, 1 and 1 GPUs)."""
    from cluster import Cluster  # tools/multihost/cluster.py

    from tracr.testing.fake_vllm import install_fake_vllm

    work = Path(tempfile.mkdtemp(prefix="tracr-multihost-"))
    c = Cluster(
        work=work,
        outputs=work / "outputs",
        bin_dir=work / "bin",
        records=work / "records",
        # the hosted-model key the workers' jobs read (test_hosts_sharing_a_key_stay_inside_its_budget)
        extra_env={"TRACR_GPU_LEASE_S": "60", "FAKE_VLLM_LATENCY_S": "0.15", "TRACR_MULTIHOST_STUB_KEY": TEST_API_KEY},
    )
    install_fake_vllm(c.bin_dir)
    c.records.mkdir()
    c.outputs.mkdir()
    try:
        c.start_server()
        c.deploy()
        for name, gpus in (("node-a", 2), ("node-b", 1), ("node-c", 1)):
            c.start_host(name, gpus, limit=3)
        c.wait_workers()
        yield c
    finally:
        c.stop()
        if os.environ.get("TRACR_MULTIHOST_KEEP", "") in ("", "0"):  # keep logs and outputs with TRACR_MULTIHOST_KEEP=1
            import shutil

            shutil.rmtree(work, ignore_errors=True)
