"""Server failures are classified from real-looking vLLM / CUDA log lines."""

from __future__ import annotations

import pytest

from tracr.errors import HINTS, ErrorClass
from tracr.serving.server_errors import classify_server_log

C = ErrorClass

LOGS = {
    C.OUT_OF_GPU_MEMORY: [
        "ERROR 11-24 10:01:09 [core.py:708] torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.55 GiB of which 1.12 GiB is free.",
        "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine.",
        "ValueError: The model's max seq len (32768) is larger than the maximum number of tokens that can be stored in KV cache (20464). Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.",
        "ValueError: Free memory on device (21.3/23.5 GiB) on startup is less than desired GPU memory utilization (0.95, 22.3 GiB).",
    ],
    C.UNSUPPORTED_CUDA_ARCH: [
        "RuntimeError: CUDA error: no kernel image is available for execution on the device",
        "UserWarning: NVIDIA GeForce RTX 5090 with CUDA capability sm_120 is not compatible with the current PyTorch installation.",
        "ValueError: Bfloat16 is only supported on GPUs with compute capability of at least 8.0. Your Tesla T4 GPU has compute capability 7.5.",
    ],
    C.MODEL_NOT_FOUND: [
        "huggingface_hub.errors.RepositoryNotFoundError: 401 Client Error. (Request ID: Root=1-67)",
        "OSError: org/no-such-model is not a local folder and is not a valid model identifier listed on 'https://huggingface.co/models'",
        "huggingface_hub.errors.GatedRepoError: 403 Client Error. Cannot access gated repo for url https://huggingface.co/meta-llama/x/resolve/main/config.json.",
        "huggingface_hub.errors.LocalEntryNotFoundError: Cannot find the requested files in the disk cache and outgoing traffic has been disabled.",
    ],
    C.PORT_IN_USE: [
        "OSError: [Errno 98] error while attempting to bind on address ('127.0.0.1', 8000): address already in use",
        "ERROR:    [Errno 98] Address already in use",
    ],
    C.VLLM_NOT_INSTALLED: [
        "cannot start local server: 'vllm' is not installed or not on PATH",
        "/usr/bin/python3: No module named vllm",
        "sh: 1: vllm: not found",
    ],
    C.NO_GPU: [
        "RuntimeError: No CUDA GPUs are available",
        "RuntimeError: Failed to infer device type",
        "RuntimeError: Found no NVIDIA driver on your system. Please check that you have an NVIDIA GPU and installed a driver",
    ],
    C.TIMEOUT: ["local server for org/m not healthy after 600s; last log lines (/out/run-1/server.log):"],
    C.DOCKER_UNAVAILABLE: [
        "DockerException: Error while fetching server API version: ('Connection aborted.', FileNotFoundError(2, 'No such file or directory'))"
    ],
}


@pytest.mark.parametrize(("expected", "line"), [(cls, line) for cls, lines in LOGS.items() for line in lines])
def test_each_error_class_is_recognised_in_a_log(expected, line):
    log = "INFO 11-24 10:00:01 [api_server.py:1885] vLLM API server version 0.11.0\nINFO loading weights\n" + line + "\nINFO shutting down"
    diagnosis = classify_server_log(log)
    assert diagnosis.error_class == expected
    assert diagnosis.evidence == line.strip()
    assert diagnosis.hint == HINTS[expected] and diagnosis.hint


def test_oom_wins_over_the_generic_engine_failure_after_it():
    log = (
        "ERROR [core.py:708] torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.00 GiB\n"
        "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}\n"
        "local server for m exited with code 1 before becoming healthy"
    )
    assert classify_server_log(log).error_class == C.OUT_OF_GPU_MEMORY


def test_a_timeout_whose_log_shows_the_cause_reports_the_cause():
    log = "RuntimeError: CUDA error: no kernel image is available for execution on the device\nlocal server for m not healthy after 30s"
    assert classify_server_log(log).error_class == C.UNSUPPORTED_CUDA_ARCH


def test_unrecognised_failures_are_unknown_without_evidence():
    diagnosis = classify_server_log("Traceback (most recent call last):\nKeyError: 'rope_scaling'")
    assert diagnosis.error_class == C.UNKNOWN and diagnosis.evidence is None
    assert diagnosis.to_dict()["error_class"] == "unknown"
