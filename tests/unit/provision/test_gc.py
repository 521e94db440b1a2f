"""gc: which stacks no cluster is using, and collecting them cluster by cluster under locks."""

from __future__ import annotations

import pytest

from skyplan.clouds.sim import ledger
from skyplan.provision import gc
from skyplan.provision.names import cluster_stack_prefix
from skyplan.state import StateDB, cluster_lock
from skyplan.testing.fakes import FakeDriver, FakeUp

TAIL = "gcp.us-central1-a.n1-standard-8.od"


def st(cluster: str, n: int) -> str:
    return f"{cluster_stack_prefix(cluster)}a{n:03d}.{TAIL}"


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path))
    db = StateDB()
    db.upsert_cluster("up1", status="UP", stack=st("up1", 2))
    db.upsert_cluster("f1", status="FAILED")
    db.upsert_cluster("d1", status="DOWN")  # a down that did not finish, nothing left of it
    db.upsert_cluster("p1", status="PROVISIONING")
    drv = FakeDriver(lambda s: FakeUp(True))
    drv.live |= {st("up1", 1), st("up1", 2), st("f1", 1), st("ghost", 3), st("p1", 1), "skyplan-capacity-memory"}
    return drv, db


def test_find_lists_every_stack_no_cluster_is_using(world):
    drv, db = world
    found = {g.stack: g.reason for g in gc.find(drv, db)}
    assert found == {
        st("up1", 1): "cluster 'up1' is up on another stack",
        st("f1", 1): "cluster 'f1' failed",
        st("ghost", 3): "no known cluster",
        st("p1", 1): "cluster 'p1' is not up (its launch was stopped)",
    }


def test_collect_destroys_them_forgets_clusters_left_down_and_keeps_the_rest(world):
    drv, db = world
    done = gc.collect(drv, db, gc.find(drv, db))
    assert sorted(done.destroyed) == sorted([st("up1", 1), st("f1", 1), st("ghost", 3), st("p1", 1)])
    assert drv.live == {st("up1", 2), "skyplan-capacity-memory"}
    assert done.forgotten == ["d1"] and db.get_cluster("d1") is None
    assert db.get_cluster("f1").status == "FAILED"  # its row stays: `status` still tells what happened


def test_a_cluster_another_process_holds_is_skipped(world):
    drv, db = world
    with cluster_lock("p1"):  # a launch in flight
        done = gc.collect(drv, db, gc.find(drv, db))
    assert st("p1", 1) in drv.live
    assert done.skipped == [{"stack": st("p1", 1), "reason": "cluster 'p1' is locked by another skyplan process"}]


def test_what_a_cloud_that_can_prove_it_holds_without_a_stack_is_garbage_too(world):
    drv, db = world
    orphan = st("gone", 1)
    ledger.record_create(cluster="gone", stack=orphan, cloud="gcp", region="us-central1", zone="us-central1-a",
                         instance_type="n1-standard-8", key=f"{orphan}/node-0")
    (g,) = [g for g in gc.find(drv, db) if g.stack == orphan]
    assert not g.on_backend and g.reason == "no known cluster; no stack on the backend" and g.resources
    gc.collect(drv, db, [g])
    assert ledger.live_resources() == []


def test_lock_files_of_unknown_clusters_are_removed(world):
    from pathlib import Path

    from skyplan.state.lock import lock_path

    drv, db = world
    for name in ("ghost", "f1"):
        with cluster_lock(name):
            pass
    gc.collect(drv, db, [])
    assert not Path(lock_path("ghost")).exists() and Path(lock_path("f1")).exists()
