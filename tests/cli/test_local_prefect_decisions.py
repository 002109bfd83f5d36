"""The local Prefect server's pure decisions and the progress lines: no server, no Prefect import."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tracr.local_prefect import (
    DEFAULT_PORT,
    LocalPrefectSettings,
    PrefectUnavailable,
    Probe,
    ServerRecord,
    Verdict,
    candidate_ports,
    classify_start_log,
    flow_run_url,
    judge_record,
    port_fallback_line,
    profile_api_url,
    read_port_memo,
    ui_url,
)
from tracr.outputs.layout import OutputLayout
from tracr.outputs.progress import JournalCounter, RateTracker, RunTarget, format_line, format_plain, snapshot


@pytest.mark.parametrize(
    ("probe", "verdict"),
    [
        (Probe(pid_alive=False, pid_is_prefect_server=False, health_ok=False), Verdict.DEAD),
        (Probe(pid_alive=False, pid_is_prefect_server=False, health_ok=True, version="3.8.8"), Verdict.DEAD),  # someone else on the port
        (Probe(pid_alive=True, pid_is_prefect_server=False, health_ok=True, version="3.8.8"), Verdict.FOREIGN),  # pid reused
        (Probe(pid_alive=True, pid_is_prefect_server=True, health_ok=True, version=None), Verdict.FOREIGN),  # /health but no Prefect API
        (Probe(pid_alive=True, pid_is_prefect_server=True, health_ok=False), Verdict.STARTING),
        (Probe(pid_alive=True, pid_is_prefect_server=True, health_ok=True, version="3.8.8"), Verdict.LIVE),
    ],
)
def test_judge_record(probe: Probe, verdict: Verdict) -> None:
    assert judge_record(probe) == verdict


def test_settings_from_env(tmp_path: Path) -> None:
    settings = LocalPrefectSettings.from_env({"TRACR_HOME": str(tmp_path), "TRACR_GPU_HOST": "Node_A"})
    here = tmp_path / "prefect" / "hosts" / "node-a"  # one folder per host: a home may be shared by machines
    assert settings.state_dir == here and settings.port == DEFAULT_PORT and settings.start_timeout_s == 180
    assert settings.host_id == "node-a" and settings.shared_dir == tmp_path / "prefect"
    assert settings.record_path.parent == settings.db_path.parent == settings.port_path.parent == settings.state_dir
    env = settings.server_env(4999)
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false" and env["DO_NOT_TRACK"] == "1"
    assert env["PREFECT_API_DATABASE_CONNECTION_URL"].endswith(str(here / "prefect.db"))
    xdg = LocalPrefectSettings.from_env({"XDG_STATE_HOME": str(tmp_path / "state"), "TRACR_GPU_HOST": "b"})
    assert xdg.state_dir == tmp_path / "state" / "tracr" / "prefect" / "hosts" / "b"
    custom = LocalPrefectSettings.from_env(
        {"TRACR_HOME": "x", "TRACR_PREFECT_PORT": "5000", "TRACR_PREFECT_PORT_FALLBACKS": "0", "TRACR_PREFECT_START_TIMEOUT_S": "7.5"}
    )
    assert candidate_ports(custom) == [5000] and custom.start_timeout_s == 7.5
    assert candidate_ports(LocalPrefectSettings(state_dir=tmp_path, port=4270, port_fallbacks=2)) == [4270, 4271, 4272]
    with pytest.raises(PrefectUnavailable, match="TRACR_PREFECT_PORT='abc' is not a number"):
        LocalPrefectSettings.from_env({"TRACR_PREFECT_PORT": "abc"})


def test_the_port_a_home_used_last_comes_first() -> None:
    settings = LocalPrefectSettings(state_dir=Path("s"), port=4270, port_fallbacks=2)
    assert candidate_ports(settings, 4271) == [4271, 4270, 4272]
    assert candidate_ports(settings, 4270) == [4270, 4271, 4272]
    assert candidate_ports(settings, 5000) == [4270, 4271, 4272]  # TRACR_PREFECT_PORT changed since: not used
    assert read_port_memo("4271\n") == 4271 and read_port_memo("") is None and read_port_memo("99999") is None
    line = port_fallback_line(4270, 4271, "another process (pid 7: nc -l 4270)", remembered=False)
    assert "port 4270 is taken by another process (pid 7: nc -l 4270)" in line and "keeps port 4271" in line
    assert "TRACR_PREFECT_PORT" in line
    line = port_fallback_line(4271, 4270, "another process", remembered=True)
    assert "this home's Prefect port" in line and "links to port 4271 no longer answer" in line


def test_a_record_of_another_host_is_never_judged_by_its_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACR_GPU_HOST", "node-a")
    record = ServerRecord(pid=1, port=4270, url="http://127.0.0.1:4270/api", started_at="t", db_path="db", host="node-b")
    assert ServerRecord.from_json(record.to_json()) == record and not record.of_this_host
    assert record.__class__(**{**record.__dict__, "host": None}).of_this_host  # written before host ids: local
    assert judge_record(Probe(pid_alive=True, pid_is_prefect_server=True, health_ok=True, version="3", this_host=False)) == (
        Verdict.OTHER_HOST
    )


def test_record_round_trip_and_garbage() -> None:
    record = ServerRecord(
        pid=12, port=4270, url="http://127.0.0.1:4270/api", started_at="2026-01-01T00:00:00Z", db_path="/x/prefect.db", version="3.8.8"
    )
    assert ServerRecord.from_json(record.to_json()) == record
    assert record.ui == "http://127.0.0.1:4270"
    assert (
        ServerRecord.from_json('{"pid": 1') is None
        and ServerRecord.from_json("[]") is None
        and ServerRecord.from_json('{"pid": "x"}') is None
    )


def test_urls() -> None:
    assert ui_url("http://127.0.0.1:4270/api/") == "http://127.0.0.1:4270"
    assert flow_run_url("http://127.0.0.1:4270/api", "abc") == "http://127.0.0.1:4270/runs/flow-run/abc"


def test_classify_start_log() -> None:
    what, todo = classify_start_log("...\nsqlite3.DatabaseError: file is not a database\n", "/s/prefect.db")
    assert "/s/prefect.db" in what and "not a SQLite database" in what and "move the file away" in todo
    assert "port" in classify_start_log("OSError: [Errno 98] Address already in use", "db")[0]
    assert classify_start_log("all fine", "db") is None


def _journal(path: Path, lines: list[dict], partial: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        handle.write("".join(json.dumps(line) + "\n" for line in lines) + partial)


def test_journal_counter_reads_only_appended_whole_lines(tmp_path: Path) -> None:
    run_dir = tmp_path / "run-1"
    counter = JournalCounter()
    assert counter.count(run_dir) == (0, 0)
    _journal(run_dir / "a" / "pages.jsonl", [{"page": 1, "status": "done"}, {"page": 2, "status": "failed"}], partial='{"page": 3, "sta')
    assert counter.count(run_dir) == (1, 1)
    with open(run_dir / "a" / "pages.jsonl", "a") as handle:
        handle.write('tus": "done"}\n')
    _journal(run_dir / "a" / "pages.jsonl", [{"page": 2, "status": "done"}])  # a resumed run retried page 2
    _journal(run_dir / "b" / "pages.jsonl", [{"page": 1, "status": "done"}])
    assert counter.count(run_dir) == (4, 0)


def test_rate_and_lines() -> None:
    rates = RateTracker()
    assert rates.rate("starting", 0, now=100.0) is None
    assert rates.rate("running", 10, now=101.0) is None  # first seen running: pages before (a resume) do not count
    assert rates.rate("running", 12, now=102.0) is None  # the first pages seen done open the window (tests/cli/test_progress.py)
    assert rates.rate("running", 32, now=112.0) == pytest.approx(2.0)
    target = RunTarget("tracr-ocr", run=2)
    meta = {"status": "running", "rollup": {"pages_total": 50, "pages_done": 20}}
    progress = snapshot(target, meta, (29, 1), 2.0)
    assert (progress.done, progress.failed, progress.total, progress.eta_s) == (29, 1, 50, 10.0)
    line = format_line(progress)
    assert (
        "tracr-ocr" in line
        and "run-2" in line
        and "29/50 pages" in line
        and "1 failed" in line
        and "2.0 pages/s" in line
        and "ETA 0:10" in line
    )
    assert format_plain(progress) == "progress: tracr-ocr run-2 running 29/50 pages 1 failed 2.0 pages/s ETA 0:10"
    waiting = format_line(snapshot(RunTarget("vllm-x"), {"status": "waiting_resources", "rollup": {"pages_total": 9}}, (0, 0), None))
    assert "waiting for GPUs" in waiting and "0/9 pages" in waiting and "run-?" in waiting
    assert "starting server" in format_line(snapshot(target, {"status": "starting"}, (0, 0), None))
    done = snapshot(target, {"status": "completed", "rollup": {"pages_total": 50, "pages_done": 50, "pages_per_s": 3.5}}, (50, 0), 1.0)
    assert done.pages_per_s == 3.5 and "ETA" not in format_line(done)


def test_run_target_resolves_the_first_new_run(tmp_path: Path) -> None:
    layout = OutputLayout(tmp_path)
    for number in (1, 2):
        (tmp_path / "job" / "m" / f"run-{number}").mkdir(parents=True)
        (tmp_path / "job" / "m" / f"run-{number}" / "run_metadata.json").write_text("{}")
    target = RunTarget("m", after=2)
    assert target.resolve(layout, "job") is None
    (tmp_path / "job" / "m" / "run-3").mkdir()
    (tmp_path / "job" / "m" / "run-3" / "run_metadata.json").write_text("{}")
    assert target.resolve(layout, "job") == 3 and RunTarget("m", run=1).resolve(layout, "job") == 1
    assert os.path.isdir(tmp_path / "job")


def test_profile_api_url(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles.toml"
    profiles.write_text('active = "team"\n[profiles.ephemeral]\n[profiles.team]\nPREFECT_API_URL = "http://prefect-host:4200/api"\n')
    assert profile_api_url({"PREFECT_HOME": str(tmp_path)}) == "http://prefect-host:4200/api"
    assert profile_api_url({"PREFECT_PROFILES_PATH": str(profiles), "PREFECT_PROFILE": "ephemeral"}) is None
    assert profile_api_url({"PREFECT_HOME": str(tmp_path / "none")}) is None
    profiles.write_text("not toml [")
    assert profile_api_url({"PREFECT_HOME": str(tmp_path)}) is None
