"""The outputs root as a shared POSIX filesystem: the marker id and the probes (tracr/outputs/storage.py)."""

from __future__ import annotations

import os
import threading

import pytest

from tracr.doctor import Level, check_storage
from tracr.outputs.storage import probe_storage, root_id


def test_root_id_is_written_once_and_read_by_everyone(tmp_path):
    ids: list[tuple[str, bool]] = []
    threads = [threading.Thread(target=lambda: ids.append(root_id(tmp_path))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({i for i, _ in ids}) == 1 and [c for _, c in ids].count(True) == 1
    assert (tmp_path / ".tracr" / "root-id").read_text().strip() == ids[0][0]
    assert sorted(os.listdir(tmp_path / ".tracr")) == ["root-id"]  # no temporary files left


def test_a_local_filesystem_passes_every_probe_and_leaves_nothing(tmp_path):
    probe = probe_storage(tmp_path)
    assert probe.ok, probe.failures
    assert probe.checked == ["append", "replace", "mkdir", "flock", "hard link"]
    assert sorted(os.listdir(tmp_path / ".tracr")) == ["root-id"]
    again = probe_storage(tmp_path)
    assert again.root_id == probe.root_id and not again.created_id
    assert check_storage(probe, probe.root_id).level == Level.OK


def test_another_filesystem_under_the_same_path_fails(tmp_path):
    probe = probe_storage(tmp_path)
    check = check_storage(probe, "0" * 32)
    assert check.level == Level.FAIL and "not the same filesystem" in check.detail


def test_a_misbehaving_operation_is_named(tmp_path, monkeypatch):
    import tracr.outputs.storage as storage

    def no_links(src, dst):
        if "probe-" in str(src):
            raise OSError(1, "Operation not permitted")
        return real_link(src, dst)

    real_link = os.link
    monkeypatch.setattr(storage.os, "link", no_links)
    probe = probe_storage(tmp_path)
    assert set(probe.failures) == {"hard link"} and "not permitted" in probe.failures["hard link"]
    assert check_storage(probe, None).level == Level.FAIL


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_root_is_not_writable(tmp_path):
    tmp_path.chmod(0o555)
    try:
        assert "writable" in probe_storage(tmp_path).failures
    finally:
        tmp_path.chmod(0o755)
