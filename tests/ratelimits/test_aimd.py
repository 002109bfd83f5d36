"""The AIMD controller and the gate it drives: pure, with a hand-moved clock."""

from __future__ import annotations

import asyncio

import pytest

from tracr.ratelimits.aimd import AimdController
from tracr.ratelimits.gate import MAX_PAUSE_S, AdaptiveGate


def test_a_burst_of_429s_halves_once_and_successes_climb_back_to_the_ceiling():
    aimd = AimdController(16)
    first = aimd.on_throttle(started_at=0.0, now=1.0, retry_after_s=2)
    assert first is not None and (first.old, first.new) == (16, 8) and "Retry-After 2" in first.reason
    # requests sent before that decrease are the same burst: no further halving
    assert aimd.on_throttle(started_at=0.5, now=1.1) is None and aimd.allowed == 8
    # a request sent after it halves again
    assert aimd.on_throttle(started_at=1.2, now=1.3).new == 4
    successes = 0
    while aimd.allowed < 16:
        aimd.on_success(started_at=2.0, latency_s=0.1, now=2.1)
        successes += 1
    # additive: one more per round of as many successes as allowed (4+5+...+15)
    assert successes == sum(range(4, 16))
    assert aimd.last_change.reason == "endpoint recovered" and aimd.last_change.new == 16
    aimd.on_success(started_at=3.0, latency_s=0.1, now=3.1)
    assert aimd.allowed == 16  # never above the ceiling


def test_it_never_goes_below_the_floor_and_slow_replies_count_as_pressure():
    aimd = AimdController(4, latency_limit_s=2.0)
    for i in range(10):
        aimd.on_throttle(started_at=float(i), now=float(i) + 0.5)
    assert aimd.allowed == 1
    slow = AimdController(8, latency_limit_s=2.0)
    change = slow.on_success(started_at=0.0, latency_s=3.0, now=3.0)
    assert change is not None and change.new == 4 and "latency 3.0 s" in change.reason


@pytest.mark.parametrize("bad", [dict(ceiling=0), dict(ceiling=4, floor=5), dict(ceiling=4, decrease=1.0)])
def test_nonsense_bounds_are_refused(bad):
    with pytest.raises(ValueError):
        AimdController(**bad)


async def test_the_gate_admits_up_to_allowed_and_pauses_for_retry_after_once_it_cannot_halve():
    now = [0.0]
    changes = []
    gate = AdaptiveGate(4, adaptive=True, on_change=changes.append, clock=lambda: now[0])
    started = [await gate.acquire() for _ in range(4)]
    fifth = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0.01)
    assert not fifth.done() and gate.in_flight == 4
    now[0] = 1.0
    gate.release(started[0], throttled=True, retry_after_s=0.05)
    assert gate.allowed == 2 and changes[-1].new == 2 and gate.paused_until == 0.0  # halving is enough: no pause
    now[0] = 1.5
    gate.release(started[1], throttled=True, retry_after_s=0.05)  # sent before the decrease: the same burst
    assert gate.allowed == 2
    gate.release(started[2], ok=True)
    late = await asyncio.wait_for(fifth, 1)  # one place under the 2 allowed: the fifth gets it
    now[0] = 2.0
    gate.release(late, throttled=True, retry_after_s=0.05)  # sent after it: halves to the floor and holds the run
    assert gate.allowed == 1 and gate.paused_until == pytest.approx(2.05)
    sixth = asyncio.create_task(gate.acquire())
    gate.release(started[3], ok=True)
    await asyncio.sleep(0.02)
    assert not sixth.done()  # paused (the clock stands still at 2.0)
    now[0] = 2.1
    await asyncio.wait_for(sixth, 1)
    snap = gate.snapshot()
    assert snap["in_flight"] == 1 and snap["throttled"] == 3 and snap["changes"] == len(changes) and snap["lowest"] == 1
    assert changes[0].reason.startswith("rate limited")


async def test_a_fixed_gate_never_moves_and_a_long_retry_after_is_capped():
    gate = AdaptiveGate(3)
    s = await gate.acquire()
    gate.release(s, throttled=True, retry_after_s=30)
    assert gate.allowed == 3 and gate.paused_until == 0.0 and gate.snapshot()["throttled"] == 1
    now = [0.0]
    adaptive = AdaptiveGate(1, adaptive=True, clock=lambda: now[0])
    s = await adaptive.acquire()
    adaptive.release(s, throttled=True, retry_after_s=10_000)
    assert adaptive.paused_until == MAX_PAUSE_S
