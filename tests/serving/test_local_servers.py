"""A job's LocalServers without Prefect: sharing, announced runs, the binding runs find them by."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tasks.serving.process import ServerStartError
from tasks.serving.shared import LocalEndpoint, LocalServers, ServerSession
from tracr.config.job import ModelSpec, RenderSettings
from tracr.config.models import model_spec
from tracr.outputs.layout import RunLocation
from tracr.run.plan import RunPlan


class FakeStarts:
    """A ``start`` that serves until released and counts its starts."""

    def __init__(self, fail: bool = False) -> None:
        self.started: list[ServerSession] = []
        self.fail = fail

    async def __call__(self, session: ServerSession) -> None:
        self.started.append(session)
        if self.fail:
            raise ServerStartError("no server today")
        session.ready.set_result(LocalEndpoint(f"http://127.0.0.1:{8000 + len(self.started)}/v1", session.model.model))
        await session.release.wait()


def _spec() -> ModelSpec:
    return model_spec(model="org/m-7b", mode="local", provider="vllm")


def _plan(root: Path, run: int) -> RunPlan:
    return RunPlan(
        job_id="job",
        outputs_root=str(root),
        run=run,
        model=_spec(),
        pdfs=[],
        prompt="p",
        max_tokens=8,
        temperature=0.0,
        render=RenderSettings(),
    )


async def test_overlapping_runs_share_one_server_and_the_last_one_stops_it(tmp_path):
    starts = FakeStarts()
    servers = LocalServers(starts)
    location = RunLocation(tmp_path, "job", "org-m-7b", 1)
    async with servers.serve(_spec(), location) as first:
        async with servers.serve(_spec(), location) as second:
            assert second.base_url == first.base_url and second.shared and not first.shared
    assert len(starts.started) == 1 and starts.started[0].release.is_set()


async def test_an_announced_run_keeps_the_server_until_it_joins_or_the_job_closes(tmp_path):
    starts = FakeStarts()
    servers = LocalServers(starts)
    plans = [_plan(tmp_path, 1), _plan(tmp_path, 2), _plan(tmp_path, 3)]
    servers.expect(plans)
    async with servers.serve(plans[0]):
        pass
    async with servers.serve(plans[1]) as endpoint:
        assert endpoint.shared  # the server waited for the second run
    assert len(starts.started) == 1 and not starts.started[0].release.is_set()  # the third is still announced
    await servers.close()
    assert starts.started[0].release.is_set()


async def test_a_failed_start_reaches_the_run_and_the_next_run_starts_afresh(tmp_path):
    starts = FakeStarts(fail=True)
    servers = LocalServers(starts)
    location = RunLocation(tmp_path, "job", "org-m-7b", 1)
    for _ in range(2):
        with pytest.raises(ServerStartError, match="no server today"):
            async with servers.serve(_spec(), location):
                pass
    assert len(starts.started) == 2


async def test_runs_find_the_servers_bound_in_their_context(tmp_path):
    servers = LocalServers(FakeStarts())
    assert LocalServers.current() is None
    with servers.bound():
        assert await asyncio.create_task(_current()) is servers  # a task started inside inherits the binding
    assert LocalServers.current() is None


async def _current() -> LocalServers | None:
    return LocalServers.current()
