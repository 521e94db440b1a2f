from __future__ import annotations

from pathlib import Path

import pytest

from skyplan.clouds.base import Cloud, ProvisionRequest
from skyplan.clouds.local.cloud import Local
from skyplan.clouds.sim import ledger
from skyplan.clouds.sim.cloud import Sim
from skyplan.clouds.sim.preempt import preempt_due
from skyplan.errors import Classification, Kind, Scope
from skyplan.clouds.local import runner


def test_both_implement_the_cloud_protocol() -> None:
    assert isinstance(Local(), Cloud) and isinstance(Sim(), Cloud)
    assert (Local.name, Local.capabilities.has_zones, Sim.name) == ("local", False, "sim")
    assert Local().preflight().ok and Sim().preflight().ok


@pytest.mark.parametrize(
    "message, kind, scope, code",
    [
        ("LocalWorkdirMissing: workdir '/x' is not a directory", Kind.INVALID, Scope.ALL, "LocalWorkdirMissing"),
        ("LocalDiskFull: cannot create sandbox /s: [Errno 28] No space left on device", Kind.CAPACITY, Scope.ZONE, "LocalDiskFull"),
        ("[Errno 13] Permission denied: '/root/x'", Kind.AUTH, Scope.CLOUD, "LocalPermissionDenied"),
        ("something nobody planned for", Kind.UNKNOWN, Scope.ZONE, "unknown"),
    ],
)
def test_local_classify(message: str, kind: Kind, scope: Scope, code: str) -> None:
    c = Local().classify(message)
    assert (c.kind, c.scope, c.code, c.message) == (kind, scope, code, message)


def test_local_sample_errors_classify_as_their_outcome() -> None:
    req = ProvisionRequest("c", "s", "local", "local", None, "local", False, workdir="/nope")
    assert Local().classify(Local().sample_error("capacity", req)).kind == Kind.CAPACITY
    assert Local().classify(Local().sample_error("invalid", req)).kind == Kind.INVALID


def _fake(monkeypatch, cloud: str, cls_name: str, verdict) -> None:
    """Make the registry serve a cloud ``cloud`` whose classifier returns ``verdict(message)``."""
    from skyplan.clouds import registry
    from skyplan.clouds.base import Capabilities

    fake = type(cls_name, (), {"classify": lambda self, m: verdict(m), "name": cloud,
                               "capabilities": Capabilities(simulatable=True)})()
    real = registry.get
    fakes = dict(getattr(real, "fakes", {}), **{cloud: fake})

    def get(name: str):
        return fakes[name] if name in fakes else real(name)

    get.fakes = fakes  # type: ignore[attr-defined]
    monkeypatch.setattr(registry, "get", get)


def test_sim_classify_delegates(monkeypatch) -> None:
    unknown = lambda m: Classification(Kind.UNKNOWN, Scope.ZONE, "unknown", m)  # noqa: E731
    _fake(monkeypatch, "aws", "AWS", unknown)
    _fake(monkeypatch, "gcp", "GCP", lambda m: Classification(Kind.QUOTA, Scope.REGION, "QUOTA_EXCEEDED", m))
    _fake(monkeypatch, "azure", "Azure", unknown)
    c = Sim().classify("QUOTA_EXCEEDED: Quota 'CPUS' exceeded.")
    assert (c.kind, c.scope, c.code) == (Kind.QUOTA, Scope.REGION, "QUOTA_EXCEEDED")
    # with a target, only that cloud's classifier is asked
    assert Sim(target="aws").classify("QUOTA_EXCEEDED").kind == Kind.UNKNOWN
    _fake(monkeypatch, "gcp", "GCP", unknown)
    c = Sim().classify("gibberish")
    assert (c.kind, c.scope, c.message) == (Kind.UNKNOWN, Scope.ZONE, "gibberish")


def test_programs_are_callables_built_lazily() -> None:
    req = ProvisionRequest("c", "s", "gcp", "us-west1", "us-west1-a", "n1-standard-1", False, scenario="/x.yaml")
    assert callable(Local().program(req)) and callable(Sim().program(req))


def test_preempt_due_kills_and_marks(home: Path, tmp_path: Path, wait_for) -> None:
    root = home / "sandboxes" / "stk" / "node-0"
    info = runner.start({"stack": "stk", "run": "touch started; sleep 300"}, root)
    wait_for(lambda: (root / "workdir" / "started").exists(), "the run to start")
    due = ledger.record_create(
        None, cluster="c", stack="stk", cloud="gcp", region="r", zone="z", instance_type="t",
        use_spot=True, sandbox=str(root), preempt_after_s=5, now=100.0,
    )  # fmt: skip
    later = ledger.record_create(
        None, cluster="c", stack="stk2", cloud="gcp", region="r", zone="z", instance_type="t",
        preempt_after_s=500, now=100.0,
    )  # fmt: skip
    try:
        done = preempt_due(now=200.0)
        assert [r["id"] for r in done] == [due["id"]]
        assert ledger.get(None, due["id"])["state"] == "preempted"
        assert ledger.get(None, later["id"])["state"] == "live"
        assert not runner.group_alive(info["pgid"])
        assert runner.status(root)["phase"] == "stopped" and root.exists()  # logs stay until destroy
        assert preempt_due(now=200.0) == []
    finally:
        runner.remove(root)


class _Op:
    def __init__(self, type_: str, inputs: dict) -> None:
        self.type = type_
        self.inputs = inputs
        self.urn = f"urn:pulumi:s::skyplan::{type_}::node-0"
        self.op = "creating"


def test_sim_resolves_an_interrupted_create(home: Path, wait_for) -> None:
    # A create cut off after its ledger row and sandbox were made.
    root = home / "sandboxes" / "stk" / "node-0"
    db = ledger.default_path()
    info = runner.start({"stack": "stk", "run": "touch started; sleep 300"}, root)
    wait_for(lambda: (root / "workdir" / "started").exists(), "the run to start")
    row = ledger.record_create(
        db, key="stk/node-0", cluster="c", stack="stk", cloud="gcp", region="r", zone="z", instance_type="t"
    )
    other = ledger.record_create(
        db, key="stk2/node-0", cluster="c", stack="stk2", cloud="gcp", region="r", zone="z", instance_type="t"
    )
    inputs = {"root": str(root), "ledger": str(db), "stack": "stk", "node_rank": 0.0}
    assert Local().resolve_interrupted(_Op("pulumi-python:dynamic/skyplan:SimNode", inputs)) is False
    assert Sim().resolve_interrupted(_Op("pulumi-python:dynamic/skyplan:SimNode", inputs)) is True
    assert ledger.get(db, row["id"])["state"] == "deleted"
    assert ledger.get(db, other["id"])["state"] == "live"
    assert not root.exists() and not runner.group_alive(info["pgid"])
    # cut off before anything existed: still resolved, nothing to do
    assert Sim().resolve_interrupted(_Op("pulumi-python:dynamic/skyplan:SimNode", inputs)) is True
    assert Sim().resolve_interrupted(_Op("pulumi-python:dynamic/skyplan:SimNode", {"stack": "stk"})) is False


def test_local_resolves_an_interrupted_create(home: Path, wait_for) -> None:
    root = home / "sandboxes" / "stk" / "node-0"
    info = runner.start({"stack": "stk", "run": "touch started; sleep 300"}, root)
    wait_for(lambda: (root / "workdir" / "started").exists(), "the run to start")
    op = _Op("pulumi-python:dynamic/skyplan:LocalNode", {"root": str(root)})
    assert Sim().resolve_interrupted(op) is False
    assert Local().resolve_interrupted(op) is True
    assert not root.exists() and not runner.group_alive(info["pgid"])
