"""The tracr-managed local Prefect server, with real ``prefect server start`` processes and the real CLI.

Every test uses a private state folder (``TRACR_HOME``) and its own ports, and
runs the CLI without ``PREFECT_API_URL``, so a developer's own server (or the
suite's test harness) is never touched. The tests in the ``shared`` group run in
file order on one server: it is started once (replacing a stale record, by two
runs at the same moment), reused, then stopped.
"""

from __future__ import annotations

import os
import random
import re
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cli.prefect_server import probe_record, server_state
from tests.scoring.job_tree import build_job
from tracr.local_prefect import LocalPrefectSettings, ServerRecord, Verdict

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "tracr" / "samples"
pytestmark = pytest.mark.timeout(600)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _free_ports(count: int) -> int:
    """A base port with ``count`` free ports from it (tests never use 4270, the default)."""
    for _ in range(200):
        base = random.randint(21000, 39000)
        if all(_port_free(base + i) for i in range(count)):
            return base
    raise RuntimeError("no free port block")


def _env(home: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(TRACR_HOME=str(home), TRACR_PREFECT_PORT=str(port), TRACR_PREFECT_PORT_FALLBACKS="0", PYTHONUNBUFFERED="1")
    env.update(extra)
    env["PREFECT_HOME"] = str(home / "client")  # no profile of the developer's (a profile's PREFECT_API_URL would win)
    return env


def _settings(env: dict[str, str]) -> LocalPrefectSettings:
    """This host's state folder for ``env`` (``$TRACR_HOME/prefect/hosts/<host id>``)."""
    return LocalPrefectSettings.from_env(env)


def _tracr(args: list[str], env: dict[str, str], timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _in_pty(args: list[str], env: dict[str, str], timeout: float = 400) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as stdin/stdout/stderr; returns (exit code, everything it wrote)."""
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", *args], cwd=REPO, env={**env, "TERM": "xterm"}, stdin=slave, stdout=slave, stderr=slave
    )
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the terminal's last writer closed it
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=30), b"".join(chunks).decode(errors="replace")


def _job_config(tmp: Path) -> Path:
    path = tmp / "text.yaml"
    path.write_text(
        f"job_id: textonly\ninput_path: {SAMPLES}/\nmodels:\n  - model: pdf-text-layer\n    mode: local\n    provider: pdf-text\n"
    )
    return path


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("tracr: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return False
    except ProcessLookupError:
        return True


def _server_processes(port: int) -> list[int]:
    """Pids whose command line starts a Prefect server on ``port``."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"server" in argv and b"--port" in argv and str(port).encode() in argv:
                found.append(int(proc.name))
    return found


# ----------------------------------------------------------------------------- start-ups that cannot succeed


def test_a_port_fallback_is_said_and_the_home_keeps_its_port(tmp_path: Path) -> None:
    """4270 taken: the start says by whom and uses the next port; after a restart with 4270 free, the same port again."""
    port = _free_ports(2)
    env = _env(tmp_path, port, TRACR_PREFECT_PORT_FALLBACKS="1")
    try:
        with socket.socket() as listener:  # not a Prefect server
            listener.bind(("127.0.0.1", port))
            listener.listen()
            started = _tracr(["server", "start"], env)
            assert started.returncode == 0, started.stdout + started.stderr
            said = f"port {port} is taken by another process (pid {os.getpid()}: "
            assert said in started.stderr and f"starts on port {port + 1} instead" in started.stderr, started.stderr
            assert "TRACR_PREFECT_PORT" in started.stderr and _record(env).port == port + 1
            assert _tracr(["server", "stop"], env).returncode == 0
        assert _port_free(port)
        again = _tracr(["server", "start"], env)
        assert again.returncode == 0 and f"http://127.0.0.1:{port + 1}" in again.stdout, again.stdout + again.stderr
        assert "is taken" not in again.stderr and _record(env).port == port + 1  # earlier links still answer
    finally:
        _tracr(["server", "stop"], env, timeout=120)
    assert not _server_processes(port + 1)


def test_port_taken_by_another_listener_gives_one_line(tmp_path: Path) -> None:
    port = _free_ports(1)
    with socket.socket() as listener:  # not a Prefect server; no fallback port allowed
        listener.bind(("127.0.0.1", port))
        listener.listen()
        env = _env(tmp_path, port)
        started = time.monotonic()
        line = _one_line_error(_tracr(["server", "start"], env))
        assert f"port {port}" in line and "taken" in line and "TRACR_PREFECT_PORT" in line and "tracr server status" in line
        line = _one_line_error(_tracr(["run", str(_job_config(tmp_path)), "--outputs", str(tmp_path / "out")], env))
        assert f"port {port}" in line
        assert time.monotonic() - started < 60
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_corrupt_database_gives_one_line(tmp_path: Path) -> None:
    port = _free_ports(1)
    env = _env(tmp_path, port)
    state = _settings(env).state_dir
    state.mkdir(parents=True)
    (state / "prefect.db").write_bytes(b"this is not sqlite " * 1000)
    line = _one_line_error(_tracr(["server", "start"], env))
    assert "could not start" in line and "not a SQLite database" in line and str(state / "prefect.db") in line
    assert not (state / "server.json").exists() and _port_free(port) and not _server_processes(port)


def test_start_timeout_gives_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    port = _free_ports(1)
    line = _one_line_error(_tracr(["server", "start"], _env(tmp_path, port, TRACR_PREFECT_START_TIMEOUT_S="1")))
    assert "did not answer" in line and "within 1 s" in line and "TRACR_PREFECT_START_TIMEOUT_S" in line
    assert not _server_processes(port) and _port_free(port)


def test_an_unreachable_prefect_api_gives_one_line(tmp_path: Path) -> None:
    port = _free_ports(1)  # nothing listens there
    env = {**_env(tmp_path, port), "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
    line = _one_line_error(_tracr(["cancel", "some-job"], env))
    assert f"cannot reach the Prefect API at http://127.0.0.1:{port}/api" in line and "PREFECT_API_URL" in line


def test_state_from_before_host_ids_moves_into_this_hosts_folder(tmp_path: Path) -> None:
    """A home's state written before host ids (its server gone) becomes this host's: history kept, stale record dropped."""
    env = _env(tmp_path, _free_ports(1))
    settings = _settings(env)
    shared = tmp_path / "prefect"
    (shared / "home").mkdir(parents=True)
    (shared / "prefect.db").write_bytes(b"the job history")
    (shared / "server.log").write_text("old log\n")
    dead = subprocess.Popen(["true"])
    dead.wait()
    old = ServerRecord(pid=dead.pid, port=4270, url="http://127.0.0.1:4270/api", started_at="2020-01-01T00:00:00Z", db_path="x")
    (shared / "server.json").write_text(old.to_json())  # no host: written before host ids
    assert server_state(settings) == (None, None)
    assert (settings.db_path.read_bytes(), settings.log_path.read_text()) == (b"the job history", "old log\n")
    assert (settings.state_dir / "home").is_dir() and settings.state_dir.parent == shared / "hosts"
    assert not (shared / "server.json").exists() and not (shared / "prefect.db").exists()


def test_a_live_pid_that_is_no_prefect_server_is_foreign(tmp_path: Path) -> None:
    settings = LocalPrefectSettings(state_dir=tmp_path)
    tmp_path.mkdir(exist_ok=True)
    record = ServerRecord(pid=os.getpid(), port=_free_ports(1), url="http://127.0.0.1:9/api", started_at="x", db_path="db")
    settings.record_path.write_text(record.to_json())
    assert server_state(settings) == (Verdict.FOREIGN, record)
    assert not probe_record(record).pid_is_prefect_server


# ----------------------------------------------------------------------------- one shared server


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("tracr-home")
    port = _free_ports(1)
    env = _env(home, port, TRACR_PROGRESS_INTERVAL_S="1")
    yield home, port, env
    _tracr(["server", "stop"], env, timeout=120)
    for pid in _server_processes(port):  # a failed test must not leave a server behind
        try:
            os.killpg(pid, 9)
        except (ProcessLookupError, PermissionError):
            pass


def _record(env: dict[str, str]) -> ServerRecord:
    record = ServerRecord.from_json(_settings(env).record_path.read_text())
    assert record is not None
    return record


def test_stale_record_replaced_and_two_runs_at_once_share_one_server(shared, tmp_path: Path) -> None:
    home, port, env = shared
    dead = subprocess.Popen(["true"])
    dead.wait()
    settings = _settings(env)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    stale = ServerRecord(pid=dead.pid, port=port, url=f"http://127.0.0.1:{port}/api", started_at="2020-01-01T00:00:00Z", db_path="old.db")
    settings.record_path.write_text(stale.to_json())
    status = _tracr(["server", "status"], env)
    assert status.returncode == 1 and "stale record" in status.stdout, status.stdout + status.stderr

    config = _job_config(tmp_path)
    runs = [_spawn(["run", str(config), "--job-id", f"both-{i}", "--outputs", str(tmp_path / "out")], env) for i in (1, 2)]
    outputs = [proc.communicate(timeout=500) for proc in runs]
    for proc, (out, err) in zip(runs, outputs, strict=False):
        assert proc.returncode == 0, out + err
        assert "Traceback" not in err
        assert re.search(rf"watch this job: http://127\.0\.0\.1:{port}/runs/flow-run/[0-9a-f-]{{36}}", err), err
        assert "progress: pdf-text-layer run-1" in out, out  # no terminal: plain lines
        assert "completed" in out and "outputs:" in out
    errs = "".join(err for _, err in outputs)
    assert errs.count("starting the local Prefect server") == 1, errs
    assert errs.count("replacing a stale record") == 1, errs
    record = _record(env)
    assert record.pid != dead.pid and record.port == port and judge_live(record)
    assert len({p for p in _server_processes(port) if os.getpgid(p) == p}) == 1  # one server process group


def judge_live(record: ServerRecord) -> bool:
    from tracr.local_prefect import judge_record

    return judge_record(probe_record(record)) == Verdict.LIVE


def test_reused_by_later_commands_with_live_progress_in_a_terminal(shared, tmp_path: Path) -> None:
    home, port, env = shared
    before = _record(env)
    config = _job_config(tmp_path)
    code, text = _in_pty(["run", str(config), "--outputs", str(tmp_path / "out")], env)
    assert code == 0, text
    assert "starting the local Prefect server" not in text and "Traceback" not in text
    assert "\x1b[" in text  # a live display redraws in place
    assert re.search(r"pdf-text-layer\s+run-1\s+completed\s+5/5 pages\s+0 failed", text), text
    # The final table stays: model, run, status, done, failed, cut off, of.
    assert "progress: " not in text and re.search(r"pdf-text-layer\s+1\s+completed\s+5\s+0\s+0\s+5", text)
    assert _record(env) == before  # the same server, not a new one
    url = re.search(rf"watch this job: (http://127\.0\.0\.1:{port}/runs/flow-run/([0-9a-f-]{{36}}))", text)
    assert url, text
    page = httpx.get(url.group(1), headers={"Accept": "text/html"}, follow_redirects=True, timeout=30)  # as a browser asks
    assert page.status_code == 200 and "<html" in page.text  # the UI page answers after the job
    flow_run = httpx.get(f"{before.url}/flow_runs/{url.group(2)}", timeout=30).json()
    assert flow_run["state_type"] == "COMPLETED" and flow_run["name"] == "textonly"

    started = time.monotonic()
    cancel = _tracr(["cancel", "no-such-job"], env)
    cancel_s = time.monotonic() - started
    assert cancel.returncode == 0 and "nothing to cancel" in cancel.stderr and "Traceback" not in cancel.stderr, cancel.stderr
    started = time.monotonic()
    resume = _tracr(["run", str(config), "--outputs", str(tmp_path / "out"), "--resume"], env)
    resume_s = time.monotonic() - started
    assert resume.returncode == 0 and "nothing to resume" in resume.stdout and "tokens in/out" not in resume.stdout, resume.stdout
    # About a second on an idle machine; the bound leaves room for a loaded one (the suite runs beside other work).
    assert cancel_s < 30 and resume_s < 15, (cancel_s, resume_s)

    status = _tracr(["server", "status"], env)
    assert status.returncode == 0 and f"pid {before.pid}" in status.stdout and before.ui in status.stdout
    ui = _tracr(["server", "ui"], env)
    assert ui.stdout.strip() == before.ui
    doctor = _tracr(["doctor"], env)
    assert re.search(rf"OK\s+local prefect server.*running: {re.escape(before.ui)}", doctor.stdout), doctor.stdout
    assert _record(env) == before


def test_score_runs_on_the_local_server_quietly(shared, tmp_path: Path) -> None:
    """`tracr score` uses the server `tracr run` uses, and prints its table and one link: no Prefect log lines."""
    home, port, env = shared
    before = _record(env) if _settings(env).record_path.exists() else None
    build_job(tmp_path / "out")
    result = _tracr(["score", "scored", "--outputs", str(tmp_path / "out")], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"loopy\s+1\s+2\s+50\.0%", result.stdout) and "scores: " in result.stdout, result.stdout
    ours = ("starting the local Prefect server", "local Prefect server ready", "watch this scoring: ")  # the first two: run alone
    assert all(line.startswith(ours) for line in result.stderr.splitlines() if line.strip()), result.stderr
    assert "temporary server" not in result.stderr and "docs.prefect.io" not in result.stderr and "INFO" not in result.stderr
    link = re.search(rf"watch this scoring: http://127\.0\.0\.1:{port}/runs/flow-run/([0-9a-f-]{{36}})", result.stderr)
    assert link, result.stderr
    record = _record(env)
    assert before is None or record == before  # the same server, not a new one
    flow_run = httpx.get(f"{record.url}/flow_runs/{link.group(1)}", timeout=30).json()  # it ran there
    assert flow_run["state_type"] == "COMPLETED" and flow_run["name"] == "score scored"


def test_a_live_server_recorded_before_host_ids_is_adopted(shared) -> None:
    """A server started by tracr before host ids (its record in the home's shared folder) is reused and stopped as this host's."""
    home, port, env = shared
    record = _record(env)
    settings = _settings(env)
    old = ServerRecord(**{**record.__dict__, "host": None})
    (home / "prefect" / "server.json").write_text(old.to_json())
    settings.record_path.unlink()
    status = _tracr(["server", "status"], env)
    assert status.returncode == 0 and f"pid {record.pid}" in status.stdout, status.stdout + status.stderr
    assert _record(env) == record and not (home / "prefect" / "server.json").exists()


def test_stop_leaves_no_process_or_port(shared) -> None:
    home, port, env = shared
    record = _record(env)
    stopped = _tracr(["server", "stop"], env)
    assert stopped.returncode == 0 and f"pid {record.pid}" in stopped.stdout, stopped.stdout + stopped.stderr
    assert _group_gone(record.pid) and not _server_processes(port) and _port_free(port)
    assert not _settings(env).record_path.exists() and not (home / "prefect" / "server.json").exists()
    status = _tracr(["server", "status"], env)
    assert status.returncode == 1 and "not running" in status.stdout
    assert "not running" in _tracr(["server", "stop"], env).stdout
