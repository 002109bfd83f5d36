"""The collector is off while the flows are imported, back on after, and what the import built is frozen."""

from __future__ import annotations

import gc

from cli.gc_tuning import collector_paused


def test_the_collector_is_paused_for_the_block_and_its_objects_frozen() -> None:
    assert gc.isenabled()
    frozen_before = gc.get_freeze_count()
    try:
        with collector_paused():
            assert not gc.isenabled()
            built = [[i] for i in range(1000)]  # stands in for the modules an import builds
        assert gc.isenabled()
        assert gc.get_freeze_count() >= frozen_before + len(built)
    finally:
        gc.unfreeze()


def test_the_collector_comes_back_when_the_block_fails() -> None:
    try:
        try:
            with collector_paused():
                raise ImportError("a flow that cannot be imported")
        except ImportError:
            pass
        assert gc.isenabled()
    finally:
        gc.unfreeze()
