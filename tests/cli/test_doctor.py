"""``tracr doctor``: a real subprocess against the test Prefect server and real stub endpoints."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import TEST_API_KEY, write_config
from tracr.doctor import (
    Check,
    GpuProbe,
    Level,
    ModelsProbe,
    OutputsProbe,
    check_gpus,
    check_models_listing,
    check_outputs,
    exit_code,
    format_report,
)

REPO = Path(__file__).resolve().parents[2]
KEY_ENV = "TRACR_DOCTOR_KEY"


def doctor(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, tuple[str, str]], str]:
    """Run ``tracr doctor``; return the exit code, {check name: (level, detail)} and the raw output."""
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "doctor", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    assert "Traceback" not in result.stderr, result.stdout + result.stderr
    lines = {}
    for line in result.stdout.splitlines():
        match = re.match(r"^(OK|WARN|FAIL) +(.+?)  +(.*)$", line)
        assert match, f"unaligned or unlabelled line: {line!r}\n{result.stdout}{result.stderr}"
        lines[match.group(2).strip()] = (match.group(1), match.group(3))
    return result.returncode, lines, result.stdout + result.stderr


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _model(name: str, base_url: str, model: str = "stub-ocr", key_env: str = KEY_ENV) -> dict:
    return {"name": name, "model": model, "provider": "custom", "base_url": base_url, "api_key_env": key_env}


def test_doctor_preflights_each_model(tmp_path, stub_server, pdf_factory, prefect_server):
    stub = stub_server()
    pdf_factory("a.pdf", 1)
    config = write_config(
        tmp_path / "job.yaml",
        {
            "job_id": "doc",
            "input_path": str(tmp_path / "inputs"),
            "models": [
                _model("good", stub.base_url),
                _model("missing-model", stub.base_url, model="not-served"),
                _model("no-key", stub.base_url, key_env="TRACR_DOCTOR_UNSET_KEY"),
                _model("down", f"http://127.0.0.1:{_closed_port()}/v1"),
            ],
        },
    )
    code, lines, out = doctor(str(config), "--outputs", str(tmp_path / "out"), env={KEY_ENV: TEST_API_KEY})
    assert code == 1, out
    assert "prefect api" in lines, out
    assert lines["prefect api"][0] == "OK" and "is healthy" in lines["prefect api"][1]
    assert lines["prefect api"][1].startswith(os.environ["PREFECT_API_URL"])
    assert lines["gpus"][0] == "OK" and "no model of this config needs one" in lines["gpus"][1]
    assert lines["outputs"][0] == "OK" and "writable" in lines["outputs"][1]
    # `tracr run` refuses a config whose key variable is not set: doctor says so in the same words, and still preflights
    unset = (
        "models[2].api_key_env: environment variable TRACR_DOCTOR_UNSET_KEY is not set (export it before running, or name another variable)"
    )
    assert lines["config"] == ("FAIL", unset)
    assert lines["models[0] good key"] == ("OK", f"{KEY_ENV} is set")
    assert lines["models[0] good endpoint"][0] == "OK" and lines["models[0] good model"] == ("OK", "'stub-ocr' listed by /models")
    assert lines["models[1] missing-model model"] == ("FAIL", "'not-served' not listed by /models (serves: stub-ocr)")
    assert lines["models[2] no-key key"] == ("FAIL", "environment variable TRACR_DOCTOR_UNSET_KEY is not set")
    assert lines["models[2] no-key endpoint"] == ("FAIL", f"{stub.base_url}: needs a key, and none is set (HTTP 401)")
    assert lines["models[3] down endpoint"][0] == "FAIL" and "unreachable: ConnectError" in lines["models[3] down endpoint"][1]
    assert TEST_API_KEY not in out
    assert not (tmp_path / "out").exists()  # doctor only looks

    good = write_config(
        tmp_path / "good.yaml", {"job_id": "doc", "input_path": str(tmp_path / "inputs"), "models": [_model("good", stub.base_url)]}
    )
    code, lines, out = doctor(str(good), env={KEY_ENV: TEST_API_KEY})
    assert code == 0, out and all(level == "OK" for level, _ in lines.values())
    code, lines, out = doctor(str(good), env={KEY_ENV: "sk-wrong"})
    assert code == 1 and lines["models[0] good endpoint"] == ("FAIL", f"{stub.base_url}: key rejected (HTTP 401)")
    assert "sk-wrong" not in out


async def test_doctor_checks_block_backed_models(tmp_path, stub_server, pdf_factory, prefect_server):
    from blocks.model_target import ModelTarget

    stub = stub_server(model="via-block")
    await ModelTarget(base_url=stub.base_url, model="via-block", api_key=TEST_API_KEY).asave("doctor-target", overwrite=True)
    pdf_factory("a.pdf", 1)
    config = write_config(
        tmp_path / "job.yaml",
        {"job_id": "doc", "input_path": str(tmp_path / "inputs"), "models": [{"block": "doctor-target"}, {"block": "doctor-absent"}]},
    )
    code, lines, out = doctor(str(config))
    assert code == 1, out
    assert lines["models[0] doctor-target block"] == ("OK", "'doctor-target' found")
    assert lines["models[0] doctor-target key"] == ("OK", "held by the block")
    assert lines["models[0] doctor-target model"] == ("OK", "'via-block' listed by /models")  # the block's key was accepted
    assert lines["models[1] doctor-absent block"][0] == "FAIL" and "no tracr-model-target block named 'doctor-absent'" in out
    assert TEST_API_KEY not in out


def test_doctor_environment_failures(tmp_path, pdf_factory):
    pdf_factory("a.pdf", 1)
    vllm = write_config(
        tmp_path / "vllm.yaml",
        {
            "job_id": "doc",
            "input_path": str(tmp_path / "inputs"),
            "models": [{"model": "org/big", "mode": "local", "provider": "vllm", "tensor_parallel_size": 2}],
        },
    )
    unreachable = f"http://127.0.0.1:{_closed_port()}/api"
    code, lines, out = doctor(str(vllm), env={"PREFECT_API_URL": unreachable})
    assert code == 1, out
    assert lines["prefect api"][0] == "FAIL" and lines["prefect api"][1].startswith(f"{unreachable} unreachable")
    assert lines["gpus"][0] == "FAIL" and "models[0] org-big needs 2" in lines["gpus"][1]
    assert lines["models[0] org-big runtime"] == ("FAIL", "vllm is not installed or not on PATH")

    bad = write_config(
        tmp_path / "bad.yaml", {"job_id": "doc", "input_path": str(tmp_path / "none"), "models": [{"model": "m", "colour": 1}]}
    )
    # No PREFECT_API_URL: doctor reports the local Prefect server (private state; its port taken, so it cannot start).
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken = listener.getsockname()[1]
        env = {
            **{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"},
            "PREFECT_HOME": str(tmp_path / "prefect-home"),
            "TRACR_HOME": str(tmp_path / "tracr-home"),
            "TRACR_PREFECT_PORT": str(taken),
            "TRACR_PREFECT_PORT_FALLBACKS": "0",
        }
        result = subprocess.run(
            [sys.executable, "-m", "cli.main", "doctor", str(bad)], capture_output=True, text=True, cwd=REPO, env=env, timeout=120
        )
    assert result.returncode == 1
    assert re.search(r"^FAIL +config +models\[0\]\.colour: unknown key", result.stdout, re.M)
    assert re.search(rf"^FAIL +local prefect server +cannot start the local Prefect server: port {taken} .*taken", result.stdout, re.M), (
        result.stdout
    )
    assert re.search(r"^FAIL +prefect api +not checked", result.stdout, re.M)
    assert re.search(r"^FAIL +config +input_path .*: no such file or folder", result.stdout, re.M)


def test_verdicts_are_plain_functions():
    assert check_gpus(GpuProbe(error="NVML: NVML Shared Library Not Found"), None).level is Level.WARN
    assert check_gpus(GpuProbe(names=["0:NVIDIA H100"]), 1, "models[0] x").level is Level.OK
    assert check_gpus(GpuProbe(names=["0:NVIDIA H100"]), 2, "models[0] x").detail == "1 seen: 0:NVIDIA H100; models[0] x needs 2"
    full = OutputsProbe(Path("/o"), Path("/o"), True, 10 << 20)
    assert check_outputs(full).level is Level.WARN and "only 0.0 GiB free" in check_outputs(full).detail
    assert (
        check_outputs(OutputsProbe(Path("/o/x"), Path("/o"), False, 0, "Permission denied")).detail
        == "/o/x (to be created under /o): not writable (Permission denied)"
    )
    gemini = check_models_listing("m", "https://g/v1", "gemini-2.5-flash", ModelsProbe(200, ["models/gemini-2.5-flash"]), True)
    assert [c.level for c in gemini] == [Level.OK, Level.OK]
    no_listing = check_models_listing("m", "https://x/v1", "m1", ModelsProbe(404), True)
    assert [c.level for c in no_listing] == [Level.OK, Level.WARN]
    report = format_report([Check(Level.OK, "a", "x"), Check(Level.FAIL, "longer name", "y")])
    assert report == "OK    a            x\nFAIL  longer name  y"
    assert exit_code([Check(Level.WARN, "a", "x")]) == 0 and exit_code([Check(Level.FAIL, "a", "x")]) == 1


def test_outputs_root_that_cannot_be_written_fails(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # works as root too, unlike a read-only folder
    code, lines, out = doctor("--outputs", str(blocker / "out"))
    assert code == 1, out
    assert lines["outputs"][0] == "FAIL" and "not writable (Not a directory)" in lines["outputs"][1]


def _config_problems(output: str) -> list[str]:
    return re.findall(r"^FAIL +config +(.*)$", output, re.M)


def test_doctor_and_run_refuse_a_config_for_the_same_problems(tmp_path, pdf_factory, prefect_server):
    """Every problem `tracr run` lists, doctor lists as a FAIL config line (and none it does not); a missing key among them."""
    pdf_factory("a.pdf", 1)
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    bad = write_config(
        tmp_path / "bad.yaml",
        {
            "job_id": "doc",
            "input_path": [str(tmp_path / "inputs"), str(tmp_path / "gone.pdf")],
            "models": [
                {"model": "gpt-4.1-mini", "provider": "openai"},
                {"model": "m", "mode": "local", "provider": "pdf-text", "colour": 1},
            ],
        },
    )
    run = subprocess.run(
        [sys.executable, "-m", "cli.main", "run", str(bad), "--job-id", "../out"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    refused = [line.removeprefix("  - ") for line in run.stderr.splitlines() if line.startswith("  - ")]
    assert any("OPENAI_API_KEY is not set" in p for p in refused) and any("colour: unknown key" in p for p in refused), refused
    assert any(p.startswith("job_id: ") for p in refused) and any("gone.pdf" in p for p in refused), refused
    code, _, out = doctor(str(bad), "--job-id", "../out", env={"OPENAI_API_KEY": ""})
    assert code == 1 and _config_problems(out) == refused, out

    keyless = _model("keyless", f"http://127.0.0.1:{_closed_port()}/v1", key_env="TRACR_DOCTOR_UNSET_KEY")
    good = write_config(tmp_path / "good.yaml", {"job_id": "doc", "input_path": str(tmp_path / "inputs"), "models": [keyless]})
    code, lines, out = doctor(str(good), "--outputs", str(tmp_path / "out"))
    assert _config_problems(out) == [
        "models[0].api_key_env: environment variable TRACR_DOCTOR_UNSET_KEY is not set (export it before running, or name another variable)"
    ], out
    assert lines["models[0] keyless key"] == ("FAIL", "environment variable TRACR_DOCTOR_UNSET_KEY is not set")  # still preflighted
    assert lines["models[0] keyless endpoint"][0] == "FAIL"
