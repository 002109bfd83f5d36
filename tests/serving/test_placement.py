"""Placement from the published GPU inventory (tracr/serving/placement.py): a pure choice, no Prefect."""

from __future__ import annotations

import pytest

from tracr.serving.placement import NoHostFits, choose_host, hosts_from_limits

LIMITS = [
    ("tracr-gpu-node-a-0", 0),
    ("tracr-gpu-node-a-1", 1),
    ("tracr-gpu-node-b-0", 0),
    ("tracr-gpu-gpu-box-12-3", 0),
    ("other-limit", 1),
]


def test_limits_become_hosts_with_counts_busy_and_queued():
    hosts = hosts_from_limits(LIMITS, {"node-a": 2})
    assert {h: (v.count, v.busy, v.queued) for h, v in hosts.items()} == {"gpu-box-12": (1, 0, 0), "node-a": (2, 1, 2), "node-b": (1, 0, 0)}
    assert hosts["node-a"].free == 1


def test_a_job_goes_to_a_host_big_enough_and_least_loaded():
    hosts = hosts_from_limits(LIMITS[:3], {"node-a": 1})
    assert choose_host(2, hosts) == "node-a"  # the only one with 2 GPUs, however loaded
    assert choose_host(1, hosts) == "node-a"  # (1+1)/2 == (0+1)/1: the larger host
    hosts = hosts_from_limits(LIMITS[:3], {"node-a": 2})
    assert choose_host(1, hosts) == "node-b"  # (2+1)/2 > (0+1)/1
    # a burst: each submission counts the ones before it
    queued: dict[str, int] = {}
    picks = []
    for _ in range(6):
        pick = choose_host(1, hosts_from_limits(LIMITS[:3], queued))
        queued[pick] = queued.get(pick, 0) + 1
        picks.append(pick)
    assert picks.count("node-a") == 4 and picks.count("node-b") == 2


def test_no_host_big_enough_is_refused_before_submitting():
    with pytest.raises(NoHostFits, match=r"needs 4 GPU\(s\) on one host; hosts: node-a \(2\), node-b \(1\)"):
        choose_host(4, hosts_from_limits(LIMITS[:3]))
    with pytest.raises(NoHostFits, match="none published"):
        choose_host(1, {})
