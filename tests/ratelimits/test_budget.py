"""Budget names and sizes: shared by key, never naming it, never over a sliding minute."""

from __future__ import annotations

import pytest

from tracr.ratelimits.budget import SLOTS_PER_REQUEST, WINDOW_S, RateBudget, budget_base_name, estimate_request_tokens

KEY = "sk-live-0123456789abcdefSECRET"


def test_the_name_is_shared_by_key_and_never_holds_it():
    a = budget_base_name("openai", "https://api.openai.com/v1", KEY)
    b = budget_base_name("openai", "https://api.openai.com/v1/", KEY)
    assert a == b and a.startswith("tracr-rate-openai-key-")
    assert KEY not in a and "SECRET".lower() not in a and "0123456789" not in a
    assert budget_base_name("openai", "", "another-key") != a
    # a custom endpoint is named by its host; a given name replaces the digest
    assert budget_base_name("custom", "http://127.0.0.1:8000/v1", KEY).startswith("tracr-rate-127-0-0-1-key-")
    assert budget_base_name("openai", "", KEY, "Team A") == "tracr-rate-openai-team-a"


@pytest.mark.parametrize("rpm", [1, 7, 60, 120, 600, 10_000])
def test_no_sliding_minute_can_hold_more_than_the_budget(rpm):
    size = RateBudget("x", requests_per_minute=rpm).requests_limit()
    assert size is not None and size.name == "x-requests"
    # the most a sliding minute (plus the margin) can take: a full bucket, then the decay
    # (whole requests: one needs all its slots free)
    most = (size.limit + size.slot_decay_per_second * WINDOW_S) // SLOTS_PER_REQUEST
    assert most <= rpm and size.slot_decay_per_second > 0
    if rpm >= 60:  # and the steady rate keeps within 5 % of it
        assert size.slot_decay_per_second * 60 / SLOTS_PER_REQUEST >= 0.97 * rpm


def test_token_limits_and_estimates():
    size = RateBudget("x", tokens_per_minute=100_000).tokens_limit()
    assert size is not None and size.limit == 10_000 and size.limit + size.slot_decay_per_second * WINDOW_S <= 100_000
    assert RateBudget("x").requests_limit() is None and RateBudget("x").tokens_limit() is None
    # 1288x1000 is 3x2 tiles: 85 + 170*6; 40 chars of prompt are 10 tokens
    assert estimate_request_tokens(40, [(1288, 1000)], 512) == 10 + 85 + 1020 + 512
