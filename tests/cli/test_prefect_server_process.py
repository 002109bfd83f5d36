"""The local Prefect server's SQLite transactions: a job's end leaves its log clean, and crash detection still fires.

Prefect begins its SQLite transactions DEFERRED; the automation triggers read a
bucket and then write it, and when another connection commits in between, SQLite
answers ``database is locked`` at once (each failure logged a ~120-line traceback,
and the crash-detection automation lost what it counted). ``cli.prefect_server_process``
begins them IMMEDIATE. Tested with Prefect's own configuration classes on a real
SQLite file, then through tracr's real local server (a private ``TRACR_HOME``, its
own port): a real job's end, many tracr flow runs ending at once, and a silent
flow run marked Crashed. Every wait has a generous limit; none asserts a duration.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from prefect.server.database.configurations import AioSqliteConfiguration

from cli.prefect_server_process import LockFirstSqliteConfiguration
from tracr.local_prefect import LocalPrefectSettings

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "tracr" / "samples"
pytestmark = pytest.mark.timeout(900)

# ----------------------------------------------------------------------------- the transaction that failed


def _counter_db(path: Path) -> Path:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("CREATE TABLE counter (n INTEGER NOT NULL)")
        db.execute("INSERT INTO counter VALUES (0)")
    return path


def _write_elsewhere(path: Path) -> bool:
    """Another connection's write, not waiting for a lock (a busy database says so at once): whether it committed."""
    db = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        db.execute("UPDATE counter SET n = n + 1")
        return True
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    finally:
        db.close()


async def _read_then_write(config: AioSqliteConfiguration, path: Path) -> bool:
    """One transaction as the trigger service runs it (read the bucket, then write it), with another writer in between.

    Returns whether the other writer committed in between; raises what the transaction's own write raised.
    """
    engine = await config.engine()
    session = await config.session(engine)
    async with session:
        async with config.begin_transaction(session):
            await session.execute(sa.text("SELECT n FROM counter"))
            other_committed = await asyncio.to_thread(_write_elsewhere, path)
            await session.execute(sa.text("UPDATE counter SET n = n + 1"))
    return other_committed


async def test_prefects_deferred_transaction_fails_on_a_write_in_between(tmp_path: Path) -> None:
    """The failure in the server's log, reproduced with Prefect's stock configuration (``busy_timeout`` does not help)."""
    path = _counter_db(tmp_path / "stock.db")
    with pytest.raises(sa.exc.OperationalError, match="database is locked"):
        await _read_then_write(AioSqliteConfiguration(connection_url=f"sqlite+aiosqlite:///{path}"), path)


async def test_a_lock_first_transaction_commits_and_the_other_writer_waits_its_turn(tmp_path: Path) -> None:
    path = _counter_db(tmp_path / "lock-first.db")
    other_committed = await _read_then_write(LockFirstSqliteConfiguration(connection_url=f"sqlite+aiosqlite:///{path}"), path)
    assert not other_committed  # it found the lock taken: with a busy timeout (every Prefect connection has one) it waits
    assert _write_elsewhere(path)  # and once the transaction is done it writes
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT n FROM counter").fetchone() == (2,)


# ----------------------------------------------------------------------------- tracr's real local server


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _free_port() -> int:
    for _ in range(200):
        port = random.randint(21000, 39000)
        if _port_free(port):
            return port
    raise RuntimeError("no free port")


def _tracr(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


class LocalServer:
    """The local server a private home's tracr commands use, and what its files say."""

    def __init__(self, home: Path, port: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(TRACR_HOME=str(home), TRACR_PREFECT_PORT=str(port), TRACR_PREFECT_PORT_FALLBACKS="0", PYTHONUNBUFFERED="1")
        env["PREFECT_HOME"] = str(home / "client")  # no profile of the developer's
        env["TRACR_CRASH_DETECTION"] = "1"  # the suite turns it off for its shared harness server; here it is what is tested
        self.env = env
        self.settings = LocalPrefectSettings.from_env(env)
        self.api_url = f"http://127.0.0.1:{port}/api"

    def log(self) -> str:
        return self.settings.log_path.read_text(errors="replace")

    def pending_buckets(self) -> int:
        """Automation buckets still waiting for their flow run's next heartbeat or end state (count below 1)."""
        with sqlite3.connect(f"file:{self.settings.db_path}?mode=ro", uri=True, timeout=30) as db:
            return int(db.execute("SELECT count(*) FROM automation_bucket WHERE count < 1").fetchone()[0])

    def wait_for_triggers(self, limit_s: float = 180) -> None:
        """Until the trigger service has counted every end state (or given up on it: a lost event waits for its window)."""
        deadline = time.monotonic() + limit_s
        while self.pending_buckets():
            assert time.monotonic() < deadline, f"automation buckets still pending after {limit_s:.0f} s"
            time.sleep(1)

    def client_script(self, *args: str, timeout: float = 300) -> dict[str, str]:
        env = {**self.env, "PREFECT_API_URL": self.api_url, "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}
        done = subprocess.run(
            [sys.executable, "-c", CLIENT_SCRIPT, str(self.settings.db_path), *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _assert_clean(log: str) -> None:
    assert "database is locked" not in log, log[-6000:]
    assert "Traceback" not in log, log[-6000:]
    assert "ERROR" not in log, log[-6000:]
    assert "Action failed" not in log, log[-6000:]  # e.g. crashing a finished run whose end state the automation lost


@pytest.fixture(scope="module")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    server = LocalServer(tmp_path_factory.mktemp("tracr-home"), _free_port())
    started = _tracr(["server", "start"], server.env)
    assert started.returncode == 0, started.stderr
    yield server
    _tracr(["server", "stop"], server.env, timeout=120)


#: Talks to the local server as tracr's processes do (argv: the server's database, then what to do).
CLIENT_SCRIPT = textwrap.dedent(
    """
    import asyncio, inspect, json, sqlite3, sys, time
    from prefect import flow, get_client
    from prefect.events import emit_event
    from prefect.events.schemas.events import ResourceSpecification
    from prefect.states import Completed, Running
    import tasks.run.crash_detection as crash

    DB, WHAT = sys.argv[1], sys.argv[2]

    @flow(name="ocr-job")
    def stand_in():  # never called: its flow runs stand for jobs'
        pass

    def buckets():
        with sqlite3.connect(f"file:{DB}?mode=ro", uri=True, timeout=30) as db:
            return db.execute("SELECT bucketing_key, count FROM automation_bucket").fetchall()

    def counts(runs):
        found = {}
        for key, count in buckets():
            for run in runs:
                if str(run.id) in key:
                    found[run.id] = count
        return found

    async def until(what, check, beat=None, limit=240):
        deadline = time.monotonic() + limit
        while not (await check() if inspect.iscoroutinefunction(check) else check()):
            if time.monotonic() > deadline:
                raise SystemExit(f"gave up waiting for {what}")
            if beat:
                beat()
            await asyncio.sleep(1)

    async def running_runs(count):
        async with get_client() as client:
            runs = [await client.create_flow_run(stand_in) for _ in range(count)]
            for run in runs:
                await client.set_flow_run_state(run.id, Running(), force=True)
        return runs

    def heartbeats(runs):
        def beat():
            for run in runs:
                related = [{"prefect.resource.id": f"prefect.flow.{run.flow_id}", "prefect.resource.role": "flow",
                            "prefect.resource.name": "ocr-job"}]
                emit_event("prefect.flow-run.heartbeat", resource={"prefect.resource.id": f"prefect.flow-run.{run.id}"},
                           related=related)
        return beat

    async def state(run):
        async with get_client() as client:
            return (await client.read_flow_run(run.id)).state.type.value

    async def ends(count):
        # tracr's own automation, as every job sets it up; then many tracr flow runs end at the same moment
        await crash.ensure_crash_detection()
        runs = await running_runs(count)
        beat = heartbeats(runs)
        beat()
        await until("every run's first heartbeat counted", lambda: len(counts(runs)) == count, beat)
        async with get_client() as client:
            await asyncio.gather(*(client.set_flow_run_state(run.id, Completed(), force=True) for run in runs))
        await until("every end state counted", lambda: all(c >= 1 for c in counts(runs).values()))
        return {"completed": sum([await state(run) == "COMPLETED" for run in runs])}

    async def crash_one():
        # the trigger as ensure_crash_detection builds it, with a 15 s window, limited to two runs of this script
        silent, finished = await running_runs(2)
        automation = crash._automation(15)
        automation.name = f"test crash detection {silent.id}"
        automation.trigger.match = ResourceSpecification(
            {"prefect.resource.id": [f"prefect.flow-run.{silent.id}", f"prefect.flow-run.{finished.id}"]}
        )
        created = await automation.acreate()
        try:
            beat = heartbeats([silent, finished])
            beat()
            await until("both runs' first heartbeat counted", lambda: len(counts([silent, finished])) == 2, beat)
            async with get_client() as client:
                await client.set_flow_run_state(finished.id, Completed(), force=True)
            async def crashed():
                return await state(silent) == "CRASHED"

            await until("the silent run marked Crashed", crashed)
            return {"silent": await state(silent), "finished": await state(finished)}
        finally:
            await created.adelete()

    result = asyncio.run(ends(int(sys.argv[3])) if WHAT == "ends" else crash_one())
    print(json.dumps(result))
    """
)


def test_a_jobs_end_leaves_the_server_log_clean(local_server: LocalServer, tmp_path: Path) -> None:
    """A real job (three models ending together, crash detection on) through the real local server."""
    models = "".join(f"  - model: text-{name}\n    mode: local\n    provider: pdf-text\n" for name in "abc")
    config = tmp_path / "three.yaml"
    config.write_text(f"job_id: three\ninput_path: {SAMPLES}/\nmodels:\n{models}")
    for _ in range(2):
        done = _tracr(["run", str(config), "--outputs", str(tmp_path / "out")], local_server.env)
        assert done.returncode == 0, done.stdout + done.stderr
    local_server.wait_for_triggers()
    _assert_clean(local_server.log())


def test_many_tracr_flow_runs_ending_at_once_leave_the_log_clean(local_server: LocalServer) -> None:
    """Forty flow runs of tracr's job flow end at the same moment; the automation counts every end state, quietly."""
    assert local_server.client_script("ends", "40") == {"completed": 40}
    local_server.wait_for_triggers()
    _assert_clean(local_server.log())
    dead_letters = local_server.settings.state_dir / "home" / "dlq"  # events the server gave up on after 3 retries
    assert not dead_letters.exists() or not any(dead_letters.iterdir())


def test_crash_detection_still_marks_a_silent_flow_run_crashed(local_server: LocalServer) -> None:
    assert local_server.client_script("crash") == {"silent": "CRASHED", "finished": "COMPLETED"}
    _assert_clean(local_server.log())
