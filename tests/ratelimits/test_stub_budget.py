"""The stub provider's own budget and storm: what the end-to-end tests measure tracr against."""

from __future__ import annotations

import time

import httpx

from tests.conftest import TEST_API_KEY

HEADERS = {"Authorization": f"Bearer {TEST_API_KEY}"}


def _ask(port: int, text: str) -> httpx.Response:
    body = {"model": "stub-ocr", "messages": [{"role": "user", "content": text}], "max_tokens": 8}
    return httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body, headers=HEADERS, timeout=10)


def test_requests_beyond_the_budget_get_429_with_retry_after(stub_server):
    stub = stub_server(requests_per_minute=3)
    codes = [_ask(stub.port, f"page {i}") for i in range(5)]
    assert [r.status_code for r in codes] == [200, 200, 200, 429, 429]
    assert 0 < int(codes[3].headers["retry-after"]) <= 60
    arrivals = httpx.get(f"http://127.0.0.1:{stub.port}/_arrivals", timeout=10).json()["arrivals"]
    assert [a[2] for a in arrivals] == ["ok", "ok", "ok", "budget", "budget"]
    assert all(a[1] > 0 for a in arrivals) and arrivals[0][0] == 0
    usage = stub.stats()["usage"]
    # only answered requests are billed
    assert usage["prompt_tokens"] > 0 and usage["prompt_tokens"] + usage["completion_tokens"] == sum(a[1] for a in arrivals[:3])


def test_a_token_budget_refuses_the_request_that_would_pass_it(stub_server):
    stub = stub_server(tokens_per_minute=40, output_tokens=8)  # each request here costs 17 tokens
    assert [_ask(stub.port, f"page {i}").status_code for i in range(3)] == [200, 200, 429]


def test_a_storm_refuses_beyond_its_capacity_then_ends(stub_server):
    stub = stub_server(storm={"after_requests": 2, "seconds": 1.0, "retry_after_s": 2, "capacity": 0})
    first, second = _ask(stub.port, "a"), _ask(stub.port, "b")
    assert first.status_code == 200 and second.status_code == 429 and second.headers["retry-after"] == "2"
    time.sleep(1.1)
    assert _ask(stub.port, "c").status_code == 200
    assert stub.stats()["outcomes"]["429_storm"] == 1
