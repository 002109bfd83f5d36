"""What the family tests share: a one-model job against the stub, its run, and the requests the stub kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

KEY_ENV = "TRACR_TEST_STUB_KEY"


def job_config(job_id: str, inputs: str, base_url: str, model: str, **extra: Any) -> dict[str, Any]:
    """One API model on the stub, with quick retries (``extra`` adds or replaces model keys)."""
    spec = {
        "model": model,
        "mode": "api",
        "provider": "custom",
        "base_url": base_url,
        "api_key_env": KEY_ENV,
        "timeout_s": 20,
        "retries": 1,
        "retry_backoff_s": 0.01,
        "retry_backoff_max_s": 0.05,
        **extra,
    }
    return {"job_id": job_id, "input_path": inputs, "models": [spec]}


async def run_job(config: Path, outputs: Path) -> Any:
    from flows.ocr_job import ocr_job_flow
    from tracr.config.job_request import JobRequest

    return await ocr_job_flow(JobRequest(config_path=str(config), outputs=str(outputs)), return_state=True)


def stub_requests(base_url: str) -> list[dict[str, Any]]:
    """Every request the stub kept (``capture``), as it arrived."""
    return list(httpx.get(base_url.removesuffix("/v1") + "/_requests").json()["requests"])
