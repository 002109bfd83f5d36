"""Shared fixtures: one Prefect test server per session, stub model servers, PDFs.

Everything is real: Prefect's test harness runs a real API server on SQLite, the
stub is a real OpenAI-compatible HTTP server process on loopback, PDFs are made
with PyMuPDF here (tests never read ../shared).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pymupdf
import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# Jobs in the suite do not install the crash-detection automation on the shared SQLite test server (its trigger
# buckets add writes to every flow event); tests/flows/test_hosts_and_crashes.py and the multi-host group test it.
os.environ.setdefault("TRACR_CRASH_DETECTION", "0")

from tracr.testing.processes import start_server_process, stop_process_group

TEST_API_KEY = "sk-tracr-test-4f9d1c7e2a8b6035-do-not-leak"


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """Prefect's test harness, started once (it takes ~15 s); yields the DB URL."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_DATABASE_CONNECTION_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        os.environ["PREFECT_API_URL"] = PREFECT_API_URL.value()
        yield PREFECT_SERVER_DATABASE_CONNECTION_URL.value()
        os.environ.pop("PREFECT_API_URL", None)


@dataclass
class StubServer:
    """A running stub model server."""

    port: int
    config: dict[str, Any]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"http://127.0.0.1:{self.port}/_stats", timeout=10).json()

    def reset(self) -> None:
        httpx.post(f"http://127.0.0.1:{self.port}/_reset", timeout=10).raise_for_status()


@pytest.fixture
def stub_server() -> Iterator[Callable[..., StubServer]]:
    """Factory: ``stub_server(latency_s=0.05, rules=[...])`` starts a stub process."""
    started = []

    def start(**config: Any) -> StubServer:
        config.setdefault("api_key", TEST_API_KEY)
        proc, port = start_server_process(["tracr.testing.openai_stub", "--port", "0", "--config", json.dumps(config)])
        started.append(proc)
        return StubServer(port=port, config=config)

    yield start
    for proc in started:
        stop_process_group(proc)


def make_pdf(path: Path, pages: int, *, width: float = 595, height: float = 842, label: str = "page", rotate: int = 0) -> Path:
    """A PDF whose pages carry distinct text (so rendered images differ)."""
    doc = pymupdf.open()
    for number in range(1, pages + 1):
        page = doc.new_page(width=width, height=height)
        page.insert_text((40, 60), f"{label} {number} of {path.stem}", fontsize=18)
        page.insert_text((40, 100), "The quick brown fox jumps over the lazy dog.", fontsize=11)
        if rotate:
            page.set_rotation(rotate)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(path)
    return path


@pytest.fixture
def pdf_factory(tmp_path: Path) -> Callable[..., Path]:
    def factory(name: str, pages: int, **kwargs: Any) -> Path:
        return make_pdf(tmp_path / "inputs" / name, pages, **kwargs)

    return factory


def write_config(path: Path, config: dict[str, Any]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def mounted_tmpfs(parent: Path, size: str) -> Iterator[Path]:
    """A real, small tmpfs under ``parent`` (a new path each time) for full-disk tests; skipped where mounting needs root."""
    import subprocess
    import uuid

    mount = parent / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
