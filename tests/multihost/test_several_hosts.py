"""Several GPU hosts on one Prefect server on PostgreSQL, as an operator runs them (docs/deployments.md section 7).

Three stand-in hosts (``node-a`` with 2 GPUs, ``node-b`` and ``node-c`` with 1,
declared with ``TRACR_GPUS``), each a process worker in its own hostname, PID and
mount namespaces, share one outputs folder. Jobs of stand-in vLLM models are
submitted with ``tracr submit`` (placement from the GPU limits each host
publishes) or straight to a host's queue, and contend for the GPUs.

One host is SIGKILLed mid-job: nothing of the job may survive on it, its flow
runs must end ``Crashed`` (heartbeat automation), and a plain resume elsewhere
must finish the run with no page written twice.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_pdf, write_config

pytestmark = pytest.mark.timeout(900)

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
FINDINGS: list[str] = []  # what the harness measured, printed at the end (pytest -s, or the -ra summary)


def note(text: str) -> None:
    FINDINGS.append(text)
    print(f"[multihost] {text}", flush=True)


@pytest.fixture(scope="module", autouse=True)
def _report() -> Any:
    yield
    print("\n[multihost] findings:\n  " + "\n  ".join(FINDINGS), flush=True)


def _vllm(model: str, gpus: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "mode": "local",
        "provider": "vllm",
        "tensor_parallel_size": gpus,
        "startup_timeout_s": 60,
        "max_concurrent_requests": 2,
        "retries": 0,
        **extra,
    }


class Api:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)

    def limits(self) -> dict[str, int]:
        r = self.http.post("/v2/concurrency_limits/filter", json={"limit": 200})
        r.raise_for_status()
        return {item["name"]: int(item["active_slots"]) for item in r.json()}

    def flow_run(self, run_id: str) -> dict[str, Any]:
        r = self.http.get(f"/flow_runs/{run_id}")
        r.raise_for_status()
        return r.json()

    def state(self, run_id: str) -> str:
        return self.flow_run(run_id)["state"]["type"]

    def subflows_of(self, run_id: str) -> list[dict[str, Any]]:
        """Every flow run below a job (model runs, server subflows), through their parent task runs."""
        found, frontier = [], [run_id]
        while frontier:
            r = self.http.post("/task_runs/filter", json={"task_runs": {"flow_run_id": {"any_": frontier}}, "limit": 200})
            r.raise_for_status()
            ids = [t["id"] for t in r.json()]
            frontier = []
            if ids:
                r = self.http.post("/flow_runs/filter", json={"flow_runs": {"parent_task_run_id": {"any_": ids}}, "limit": 200})
                r.raise_for_status()
                found += r.json()
                frontier = [f["id"] for f in r.json()]
        return found

    def submit(self, request: dict[str, Any], queue: str) -> str:
        """A flow run of ocr-job/process on one host's work queue (what ``tracr submit`` does after choosing)."""
        dep = self.http.get("/deployments/name/ocr-job/process").json()
        r = self.http.post(f"/deployments/{dep['id']}/create_flow_run", json={"parameters": {"request": request}, "work_queue_name": queue})
        r.raise_for_status()
        return str(r.json()["id"])

    def wait(self, run_ids: list[str], timeout_s: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout_s
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = {i: self.state(i) for i in run_ids}
            if all(s in FINAL for s in states.values()):
                return states
            time.sleep(1)
        raise AssertionError(f"runs not finished after {timeout_s} s: {states}")


def tracr_submit(cluster: Any, config: Path, *extra: str) -> tuple[str, str]:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "tracr"), "submit", str(config), *extra],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    # "submitted <job> to work queue <queue> (...): flow run <id>"
    words = out.stdout.split()
    return words[words.index("queue") + 1], words[-1]


class Sampler(threading.Thread):
    """Samples the GPU limits' active slots and the live servers' PID records while jobs run."""

    def __init__(self, api: Api, cluster: Any, period_s: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.api, self.cluster, self.period_s = api, cluster, period_s
        self.samples = 0
        self.max_active: Counter[str] = Counter()
        self.unrecorded: dict[tuple[str, int], int] = {}  # (host, pid) -> consecutive samples a live server had no PID record
        self.unrecorded_seen: set[tuple[str, int]] = set()
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                for name, active in self.api.limits().items():
                    if name.startswith("tracr-gpu-"):
                        self.max_active[name] = max(self.max_active[name], active)
                self.samples += 1
                self._check_records()
            except Exception:  # a sample lost to a busy server is only a sample
                pass
            self.stop_event.wait(self.period_s)

    def _check_records(self) -> None:
        servers = self.cluster.outputs / ".tracr" / "servers"
        recorded = set()
        for path in servers.glob("*/*.json") if servers.is_dir() else []:  # one folder per host
            try:
                data = json.loads(path.read_text())
                recorded.add((path.parent.name, data["host"], int(data["pid"]), int(data["port"])))
            except (OSError, ValueError, KeyError):
                continue
        for rec in fake_records(self.cluster):
            key = (rec["gpu_host"], rec["pid"])
            live = rec.get("healthy_at") and not rec.get("stopped_at") and time.time() - rec["healthy_at"] > 2
            port = _port(rec)
            if live and (rec["gpu_host"], rec["gpu_host"], rec["pid"], port) not in recorded:
                self.unrecorded[key] = self.unrecorded.get(key, 0) + 1
                if self.unrecorded[key] >= 3:  # not a start or stop in progress
                    self.unrecorded_seen.add(key)
            else:
                self.unrecorded.pop(key, None)


def _port(rec: dict[str, Any]) -> int:
    argv = rec.get("argv") or []
    return int(argv[argv.index("--port") + 1]) if "--port" in argv else -1


def fake_records(cluster: Any) -> list[dict[str, Any]]:
    out = []
    for path in cluster.records.glob("*/*.json"):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return out


def gpu_overlaps(records: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """Pairs of stand-in servers that held the same GPU of the same host at the same time."""
    now = time.time()
    spans = []
    for r in records:
        if r.get("mode") != "ok" or not r.get("cuda_visible_devices"):
            continue
        for gpu in r["cuda_visible_devices"].split(","):
            spans.append((r["gpu_host"], gpu, r["started_at"], r.get("stopped_at") or now, f"{r['served_model']}#{r['pid']}"))
    bad = []
    for i, a in enumerate(spans):
        for b in spans[i + 1 :]:
            if a[:2] == b[:2] and a[2] < b[3] and b[2] < a[3]:
                bad.append((f"{a[0]} GPU {a[1]}", a[4], b[4]))
    return bad


def journal_done_counts(job_dir: Path) -> tuple[int, list[str]]:
    """(pages with a done record, pages with more than one done record) over every journal of a job."""
    done, twice = 0, []
    for journal in job_dir.glob("*/run-*/*/pages.jsonl"):
        counts: Counter[int] = Counter()
        for line in journal.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("status") == "done":
                counts[int(rec["page"])] += 1
        done += len(counts)
        twice += [f"{journal.parent.relative_to(job_dir)} page {p} ({n}x)" for p, n in counts.items() if n > 1]
    return done, twice


def _config(cluster: Any, job_id: str, models: list[dict[str, Any]], inputs: Path) -> Path:
    return write_config(cluster.work / f"{job_id}.yaml", {"job_id": job_id, "input_path": str(inputs), "models": models})


def _inputs(cluster: Any, name: str, pdfs: int, pages: int) -> Path:
    folder = cluster.work / "inputs" / name
    for i in range(pdfs):
        make_pdf(folder / f"doc{i}.pdf", pages)
    return folder


def _why_not_completed(cluster: Any, api: Api, unfinished: dict[str, tuple[str, str]], jobs: dict[str, Any]) -> str:
    """Each job that did not complete: its state message and each model run's status and error."""
    lines = []
    for job_id, (run, state) in unfinished.items():
        message = api.flow_run(run)["state"].get("message") or ""
        lines.append(f"{job_id}: {state} {message[:300]}")
        for spec in jobs[job_id]:
            meta_path = cluster.outputs / job_id / spec["model"].replace("/", "-") / "run-1" / "run_metadata.json"
            meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
            lines.append(f"  {spec['model']}: {meta.get('status', 'no run metadata')} {str(meta.get('error', ''))[:300]}")
    return "\n".join(lines)


def test_jobs_contend_for_gpus_across_hosts(cluster: Any) -> None:
    """Seven jobs placed by `tracr submit` on 4 GPUs of three hosts: each completes, no GPU is held twice."""
    api = Api(cluster.api_url)
    inputs = _inputs(cluster, "contend", 2, 3)
    jobs = {
        "tp2-a": [_vllm("org/big-a", 2)],
        "tp2-b": [_vllm("org/big-b", 2)],
        "one-a": [_vllm("org/small-a")],
        "one-b": [_vllm("org/small-b")],
        "one-c": [_vllm("org/small-c")],
        "one-d": [_vllm("org/small-d")],
        "pair": [_vllm("org/pair-x"), _vllm("org/pair-y")],
    }
    sampler = Sampler(api, cluster)
    sampler.start()
    started = time.monotonic()
    placed: dict[str, tuple[str, str]] = {}
    for job_id, models in jobs.items():
        placed[job_id] = tracr_submit(cluster, _config(cluster, job_id, models, inputs))
    assert placed["tp2-a"][0] == placed["tp2-b"][0] == "node-a", placed  # only node-a can hold 2 GPUs
    assert {q for q, _ in placed.values()} == {"node-a", "node-b", "node-c"}, placed  # every host got work
    states = api.wait([run for _, run in placed.values()], timeout_s=420)
    sampler.stop_event.set()
    sampler.join(10)
    elapsed = time.monotonic() - started
    unfinished = {job_id: (run, states[run]) for job_id, (_, run) in placed.items() if states[run] != "COMPLETED"}
    assert not unfinished, _why_not_completed(cluster, api, unfinished, jobs)
    for job_id, models in jobs.items():
        for spec in models:
            meta = json.loads((cluster.outputs / job_id / spec["model"].replace("/", "-") / "run-1" / "run_metadata.json").read_text())
            assert meta["status"] == "completed" and meta["rollup"]["pages_done"] == 6, (job_id, meta["status"], meta.get("error"))
    records = fake_records(cluster)
    assert len([r for r in records if r["mode"] == "ok"]) >= 8
    by_host = Counter(r["gpu_host"] for r in records)
    assert {r["host"] for r in records} == set(by_host), "each server ran in the namespace of the host whose GPUs it got"
    assert not gpu_overlaps(records), gpu_overlaps(records)
    holders = max(sampler.max_active.values())
    assert holders <= 1 and sampler.samples > 20, (sampler.max_active, sampler.samples)
    note(
        f"contention: {len(jobs)} jobs ({sum(len(m) for m in jobs.values())} model runs) on 3 hosts (2+1+1 GPUs) in {elapsed:.0f} s; "
        f"placement {dict((j, q) for j, (q, _) in placed.items())}; servers per host {dict(by_host)}; "
        f"GPU-holder maximum {holders} over {sampler.samples} samples of {len(sampler.max_active)} limits"
    )
    lost = sorted(sampler.unrecorded_seen)
    assert not lost, f"a live server lost its PID record to another host's sweep: {lost}"


def test_one_job_split_across_two_workers(cluster: Any) -> None:
    """Pages/s of one job on one worker vs the same pages split in two halves on two workers."""
    api = Api(cluster.api_url)
    whole = _inputs(cluster, "split-whole", 4, 5)
    halves = [_inputs(cluster, "split-h0", 2, 5), _inputs(cluster, "split-h1", 2, 5)]
    model = [_vllm("org/split", max_concurrent_requests=4)]

    def run(pairs: list[tuple[Path, str]], job_id: str) -> float:
        ids = [
            api.submit({"config_path": str(_config(cluster, f"{job_id}-{i}", model, inp)), "job_id": job_id, "force": True}, q)
            for i, (inp, q) in enumerate(pairs)
        ]
        states = api.wait(ids, timeout_s=300)
        assert all(s == "COMPLETED" for s in states.values()), states
        runs = [api.flow_run(i) for i in ids]
        from datetime import datetime

        start = min(datetime.fromisoformat(r["start_time"]) for r in runs)
        end = max(datetime.fromisoformat(r["end_time"]) for r in runs)
        done, twice = journal_done_counts(cluster.outputs / job_id)
        assert done == 20 and not twice, (done, twice)
        return 20 / (end - start).total_seconds()

    one = run([(whole, "node-b")], "split-one")
    two = run([(halves[0], "node-b"), (halves[1], "node-c")], "split-two")
    note(
        f"throughput: 20 pages, one worker {one:.2f} pages/s, two workers (halves on node-b and node-c) {two:.2f} pages/s "
        f"(flow-run wall time incl. process and server start; all hosts share this machine's 2 cores)"
    )
    assert one > 0 and two > 0


def test_killed_worker_crashes_and_resumes_elsewhere(cluster: Any) -> None:
    """SIGKILL node-b's worker and job mid-run: GPU comes back, runs end Crashed, resume on node-c writes no page twice."""
    api = Api(cluster.api_url)
    inputs = _inputs(cluster, "kill", 4, 10)
    config = _config(cluster, "killme", [_vllm("org/victim", max_concurrent_requests=1)], inputs)
    job_dir = cluster.outputs / "killme"
    host = cluster.hosts["node-b"]
    run_id = api.submit({"config_path": str(config)}, "node-b")
    deadline = time.monotonic() + 240
    while journal_done_counts(job_dir)[0] < 4:
        assert time.monotonic() < deadline, f"the job did not get going: {api.state(run_id)}"
        assert api.state(run_id) not in FINAL, api.flow_run(run_id)["state"]
        time.sleep(0.5)
    # the worker and its flow-run process (python -m prefect.engine, a child of the worker): SIGKILL, as a crash would
    procs = dict(host.processes())
    worker = [p for p, cmd in procs.items() if "-m prefect worker start" in cmd and "reaper.py" not in cmd]
    assert len(worker) == 1, procs
    from cluster import _children  # tools/multihost/cluster.py

    engine = [p for p in _children(worker[0]) if "prefect.engine" in procs.get(p, "")]
    assert engine, procs
    for pid in worker + engine:
        subprocess.run(["kill", "-KILL", str(pid)], check=True)
    killed_at = time.monotonic()
    done_at_kill = journal_done_counts(job_dir)[0]

    gpu_free_s = crashed_s = subflows_ended_s = None
    limit = "tracr-gpu-node-b-0"
    while time.monotonic() - killed_at < 180 and (gpu_free_s is None or crashed_s is None or subflows_ended_s is None):
        if gpu_free_s is None and api.limits().get(limit, 1) == 0:
            gpu_free_s = time.monotonic() - killed_at
        if crashed_s is None and api.state(run_id) == "CRASHED":
            crashed_s = time.monotonic() - killed_at
        if subflows_ended_s is None and all(f["state"]["type"] in FINAL for f in api.subflows_of(run_id)):
            subflows_ended_s = time.monotonic() - killed_at  # each flow run is judged by its own heartbeats
        time.sleep(1)
    reaper = host.reaper_pid()
    left = [(p, cmd) for p, cmd in host.processes() if p != reaper]
    subflows = api.subflows_of(run_id)
    note(
        f"kill: {done_at_kill} pages done when node-b's worker and job were SIGKILLed; GPU slot free after "
        f"{gpu_free_s and round(gpu_free_s)} s (lease 60 s); job run Crashed after {crashed_s and round(crashed_s)} s, "
        f"its subflows ended after {subflows_ended_s and round(subflows_ended_s)} s; "
        f"subflows {Counter(f['state']['type'] for f in subflows)}; {len(left)} process(es) of node-b left: "
        f"{[c[:80] for _, c in left]}"
    )
    assert gpu_free_s is not None, "the killed holder's GPU slot never came back"
    assert not left, f"a SIGKILLed job left {len(left)} live process(es) on its host: {[c[:100] for _, c in left]}"
    assert crashed_s is not None, f"the killed job's flow run is {api.state(run_id)}, not Crashed"
    subflow_states = [f["state"]["type"] for f in subflows]
    assert all(state in FINAL for state in subflow_states), f"subflows of the killed job not ended: {subflow_states}"

    cluster.retire("node-b")  # the dead machine stays down (with nothing left in it, its namespace is gone anyway)

    # Resume on another host, plainly: the dead host's claim is stale because its flow run is Crashed.
    request = {"config_path": str(config), "resume": True}
    resumed = api.submit(request, "node-c")
    assert api.wait([resumed], timeout_s=300)[resumed] == "COMPLETED"
    meta = json.loads((job_dir / "org-victim" / "run-1" / "run_metadata.json").read_text())
    assert meta["status"] == "completed" and meta["rollup"]["pages_done"] == 40, (meta["status"], meta["rollup"])
    assert not (job_dir / "org-victim" / "run-2").exists(), "the resume continued run-1 in place"
    done, twice = journal_done_counts(job_dir)
    assert done == 40 and not twice, twice
    resumed_on = {r["gpu_host"] for r in fake_records(cluster) if r["served_model"] == "org/victim"}
    assert resumed_on == {"node-b", "node-c"}, resumed_on
    assert not gpu_overlaps(fake_records(cluster)), gpu_overlaps(fake_records(cluster))
    note(f"resume: on node-c, run-1 completed with 40 pages, {done_at_kill}+ kept from node-b, no page with two done records")


def test_a_host_without_the_shared_root_refuses_the_job(cluster: Any) -> None:
    """node-d has a tmpfs over the outputs path: its storage check sees another root id and fails before writing."""
    api = Api(cluster.api_url)
    cluster.start_host("node-d", 1, limit=1, private_outputs=True)
    cluster.wait_workers()
    config = _config(cluster, "elsewhere", [_vllm("org/lost")], _inputs(cluster, "elsewhere", 1, 2))
    run_id = api.submit({"config_path": str(config)}, "node-d")
    assert api.wait([run_id], timeout_s=180)[run_id] == "FAILED"
    message = api.flow_run(run_id)["state"]["message"] or ""
    assert "not the same filesystem" in message, message
    assert not (cluster.outputs / "elsewhere").exists()  # nothing of it reached the shared root
    note(f"storage: node-d (tmpfs over the outputs path) refused the job: {message[:160]}")


def test_hosts_sharing_a_key_stay_inside_its_budget(cluster: Any) -> None:
    """Two hosts run a job each with one hosted key of 60 requests/min: the provider sees at most 60 in any minute."""
    from tests.conftest import TEST_API_KEY
    from tests.ratelimits.test_shared_budget import max_in_window
    from tracr.testing.processes import start_server_process, stop_process_group

    rpm = 60
    stub, port = start_server_process(
        [
            "tracr.testing.openai_stub",
            "--port",
            "0",
            "--config",
            json.dumps({"api_key": TEST_API_KEY, "latency_s": 0.02, "requests_per_minute": rpm}),
        ]
    )
    try:
        api = Api(cluster.api_url)
        model = {
            "model": "stub-ocr",
            "mode": "api",
            "provider": "custom",
            "base_url": f"http://127.0.0.1:{port}/v1",
            "api_key_env": "TRACR_MULTIHOST_STUB_KEY",
            "max_concurrent_requests": 8,
            "requests_per_minute": rpm,
            "retries": 3,
        }
        runs = [
            api.submit({"config_path": str(_config(cluster, f"budget-{host}", [model], _inputs(cluster, f"budget-{host}", 1, 40)))}, host)
            for host in ("node-a", "node-c")  # node-b's worker was killed by the test before
        ]
        states = api.wait(runs, timeout_s=400)
        assert all(s == "COMPLETED" for s in states.values()), states
        arrivals = httpx.get(f"http://127.0.0.1:{port}/_arrivals", timeout=10).json()["arrivals"]
    finally:
        stop_process_group(stub)
    assert len(arrivals) == 80 > rpm  # more than a minute's budget: the sliding minute was exercised
    assert [a for a in arrivals if a[2] != "ok"] == []  # the provider never had to refuse one
    busiest = max_in_window([a[0] for a in arrivals], 60.0)
    assert busiest <= rpm, busiest
    hosts = {
        json.loads((cluster.outputs / f"budget-{h}" / "stub-ocr" / "run-1" / "run_metadata.json").read_text())["host"]["hostname"]
        for h in ("node-a", "node-c")
    }
    assert hosts == {"node-a", "node-c"}, hosts  # each job ran on its own host
    note(f"shared key: 2 hosts ({', '.join(sorted(hosts))}), 80 pages, budget {rpm}/min, busiest minute {busiest}, 0 refused")
