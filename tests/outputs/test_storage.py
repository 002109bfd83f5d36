"""The outputs root as a shared POSIX filesystem: the marker id, the probes (tracr/outputs/storage.py), and the
judgement of a host's root id against the one published for its path (tracr/outputs/root_identity.py,
tasks/outputs/storage_check.py, on the session's real Prefect server)."""

from __future__ import annotations

import os
import shutil
import threading

import pytest

from tracr.doctor import Level, check_storage
from tracr.outputs.root_identity import PublishedRoot, RootVerdict, judge_root
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
    same = judge_root(tmp_path, "node-a", probe.root_id, PublishedRoot(probe.root_id, "node-a", "2025-01-01T00:00:00Z"), None)
    assert check_storage(probe, same).level == Level.OK


def test_another_filesystem_under_the_same_path_fails(tmp_path):
    probe = probe_storage(tmp_path)
    other = judge_root(tmp_path, "node-b", probe.root_id, PublishedRoot("0" * 32, "node-a", "2025-01-01T00:00:00Z"), None)
    check = check_storage(probe, other)
    assert check.level == Level.FAIL and "not the same filesystem" in check.detail
    assert "host node-a at 2025-01-01T00:00:00Z published id " + "0" * 32 in check.detail
    assert f"`tracr storage reset --outputs {tmp_path}`" in check.detail


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
    assert check_storage(probe, judge_root(tmp_path, "h", probe.root_id, None, None)).level == Level.FAIL


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_root_is_not_writable(tmp_path):
    tmp_path.chmod(0o555)
    try:
        assert "writable" in probe_storage(tmp_path).failures
    finally:
        tmp_path.chmod(0o755)


# ----------------------------------------------------------------------------- the published id, judged


def test_a_host_that_saw_the_published_id_takes_a_new_one_as_a_recreated_root():
    published = PublishedRoot("old", "node-a", "2025-01-01T00:00:00Z")
    assert judge_root("/o", "node-a", "old", published, "old").verdict is RootVerdict.SAME
    assert judge_root("/o", "node-c", "old", published, None).verdict is RootVerdict.SAME  # a new host on the shared root
    assert judge_root("/o", "node-a", "new", published, "old").verdict is RootVerdict.RECREATED
    assert judge_root("/o", "node-b", "new", published, "old").verdict is RootVerdict.RECREATED  # it saw the old one too
    assert judge_root("/o", "node-a", None, published, "old").verdict is RootVerdict.RECREATED  # doctor, before a job recreates it
    assert judge_root("/o", "node-a", "new", None, None).verdict is RootVerdict.FIRST
    refused = judge_root("/o", "node-b", "new", published, None)  # never saw the published id: another filesystem
    assert refused.verdict is RootVerdict.ELSEWHERE and not refused.ok
    assert (
        refused.describe()
        == refused.refusal()
        == (
            "outputs root /o has id new here (host node-b), but host node-a at 2025-01-01T00:00:00Z published id old for this "
            "path, and this host never saw that id: not the same filesystem. Mount the shared root here, or use another outputs "
            "path; if the root was moved or recreated on purpose, run `tracr storage reset --outputs /o` on a host that sees the right one"
        )
    )
    assert judge_root("/o", "node-b", "new", published, "older").verdict is RootVerdict.ELSEWHERE  # it saw another id


def test_published_records_read_back_including_an_earlier_tracrs_bare_id():
    record = PublishedRoot("abc", "node-a", "2025-01-01T00:00:00Z", replaces="old")
    assert PublishedRoot.from_value(record.to_value()) == record
    legacy = PublishedRoot.from_value("abc")
    assert legacy == PublishedRoot("abc") and "earlier version of tracr" in judge_root("/o", "h", "x", legacy, None).refusal()
    assert PublishedRoot.from_value(None) is None and PublishedRoot.from_value({"host": "x"}) is None


@pytest.mark.usefixtures("prefect_server")
async def test_deleting_the_outputs_root_just_works_on_one_host_and_on_several(tmp_path):
    from tasks.outputs.storage_check import read_judgement, settle_root

    root = tmp_path / "outputs"
    first = probe_storage(root).root_id
    assert (await settle_root(root, first, "node-a")).verdict is RootVerdict.FIRST
    assert (await settle_root(root, first, "node-b")).verdict is RootVerdict.SAME  # node-b mounts the same root

    shutil.rmtree(root)  # deleted on node-a: its next job publishes the new id, node-b then sees it
    second = probe_storage(root).root_id
    recreated = await settle_root(root, second, "node-a")
    assert recreated.verdict is RootVerdict.RECREATED and recreated.published and recreated.published.root_id == first
    assert (await settle_root(root, second, "node-b")).verdict is RootVerdict.SAME

    shutil.rmtree(root)  # deleted again; node-b runs first this time
    assert (await read_judgement(root, None, "node-b")).verdict is RootVerdict.RECREATED  # what doctor says before the job
    third = probe_storage(root).root_id
    assert (await settle_root(root, third, "node-b")).verdict is RootVerdict.RECREATED
    now = await read_judgement(root, third, "node-a")
    assert now.verdict is RootVerdict.SAME and now.published == PublishedRoot(third, "node-b", now.published.published_at, second)


@pytest.mark.usefixtures("prefect_server")
async def test_a_host_that_never_saw_the_published_id_is_refused_and_records_nothing(tmp_path):
    from tasks.outputs.storage_check import check_shared_storage, read_judgement, reset_root, settle_root
    from tracr.serving.host import HOST_ENV

    root = tmp_path / "outputs"
    shared = probe_storage(root).root_id
    assert (await settle_root(root, shared, "node-a")).verdict is RootVerdict.FIRST
    refused = await settle_root(root, "f" * 32, "node-d")  # node-d's own folder under the same path
    assert refused.verdict is RootVerdict.ELSEWHERE and "host node-a at " in refused.refusal()
    assert (await read_judgement(root, "f" * 32, "node-d")).seen is None  # its id was neither published nor noted
    assert (await read_judgement(root, shared, "node-a")).verdict is RootVerdict.SAME

    os.environ[HOST_ENV] = "node-d"  # the job's check, and the reset, on node-d (whose root here is the shared one after all)
    try:
        (root / ".tracr" / "root-id").write_text("e" * 32 + "\n")  # node-d's view: another filesystem's id
        with pytest.raises(Exception, match="not the same filesystem") as info:
            await check_shared_storage.fn(str(root))
        assert type(info.value).__name__ == "StorageNotShared"
        _, old, new = await reset_root(root)
        assert old is not None and old.root_id == shared and new == PublishedRoot("e" * 32, "node-d", new.published_at, shared)
        assert (await check_shared_storage.fn(str(root)))["verdict"] == "same"
    finally:
        os.environ.pop(HOST_ENV, None)
    assert (await read_judgement(root, shared, "node-a")).verdict is RootVerdict.ELSEWHERE  # node-a is refused in turn


@pytest.mark.usefixtures("prefect_server")
async def test_jobs_starting_together_on_one_host_all_pass_the_check(tmp_path):
    """Several jobs of one host settle a new root at once: Prefect's read-then-create must not fail one of them."""
    import asyncio

    from tasks.outputs.storage_check import read_judgement, settle_root

    root = tmp_path / "outputs"
    shared = probe_storage(root).root_id
    judgements = await asyncio.gather(*(settle_root(root, shared, "node-b") for _ in range(8)))  # a new root
    assert all(j.ok for j in judgements) and sum(j.verdict is RootVerdict.FIRST for j in judgements) >= 1
    judgements = await asyncio.gather(*(settle_root(root, shared, "node-a") for _ in range(8)))  # a host's first sighting
    assert all(j.verdict is RootVerdict.SAME for j in judgements)
    assert (await read_judgement(root, shared, "node-a")).seen == shared
