"""Provider clouds confirm a suspect node from their stack refreshed
(``CloudBase.instance_state``, ``skyplan.clouds.instancestate``), through the
executor's ``cloud_says``; a refresh that cannot run answers unknown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from skyplan.clouds import registry
from skyplan.clouds.instancestate import cluster_state
from skyplan.errors import EngineError
from skyplan.jobs.executor import CloudSays, ProvisionExecutor
from skyplan.state import StateDB


def _node(rtype: str, **outputs: Any) -> dict[str, Any]:
    return {"urn": f"urn:pulumi:s::p::{rtype}::n", "type": rtype, "outputs": outputs}


def _deployment(*resources: dict[str, Any]) -> dict[str, Any]:
    other = {"urn": "urn:pulumi:s::p::pulumi:pulumi:Stack::s", "type": "pulumi:pulumi:Stack", "outputs": {}}
    return {"manifest": {}, "resources": [other, *resources]}


AWS = "aws:ec2/instance:Instance"
GCP = "gcp:compute/instance:Instance"
AZ = "azure-native:compute:VirtualMachine"


def _az(power: str | None, provisioning: str = "Succeeded") -> dict[str, Any]:
    view = {"statuses": [{"code": "ProvisioningState/succeeded"}] + ([{"code": power}] if power else [])}
    return _node(AZ, provisioningState=provisioning, instanceView=view)


CASES = [
    ("aws", [_node(AWS, instanceState="running"), _node(AWS, instanceState="running")], "running"),
    ("aws", [_node(AWS, instanceState="running"), _node(AWS, instanceState="stopped")], "stopped"),
    ("aws", [_node(AWS, instanceState="terminated")], "gone"),
    ("aws", [_node(AWS, instanceState="shutting-down")], "gone"),
    ("aws", [_node(AWS, instanceState="pending")], "unknown"),
    ("aws", [], "gone"),  # the refresh dropped the instance: the cloud deleted it
    ("gcp", [_node(GCP, currentStatus="RUNNING")], "running"),
    ("gcp", [_node(GCP, currentStatus="TERMINATED")], "stopped"),  # a preempted Spot VM
    ("gcp", [_node(GCP, currentStatus="SUSPENDED")], "stopped"),
    ("gcp", [_node(GCP, currentStatus="STAGING")], "unknown"),
    ("gcp", [], "gone"),
    ("azure", [_az("PowerState/running")], "running"),
    ("azure", [_az("PowerState/deallocated")], "stopped"),
    ("azure", [_az(None)], "unknown"),  # no instanceView: Succeeded says nothing of power
    ("azure", [_az(None, provisioning="Deleting")], "gone"),
    ("azure", [], "gone"),  # an evicted Spot VM (evictionPolicy Delete)
]


@pytest.mark.parametrize(("cloud", "nodes", "expected"), CASES)
def test_each_clouds_mapping(cloud: str, nodes: list[dict[str, Any]], expected: str) -> None:
    spec = registry.get(cloud).instance_state
    assert spec is not None
    assert cluster_state(_deployment(*nodes), spec) == expected


def test_a_resource_being_deleted_is_not_a_node_and_no_state_tells_nothing() -> None:
    spec = registry.get("aws").instance_state
    doomed = {**_node(AWS, instanceState="running"), "delete": True}
    assert cluster_state(_deployment(doomed), spec) == "gone"
    assert cluster_state(None, spec) == "unknown"


class FakeDriver:
    """A StackDriver whose refresh returns a given deployment, or fails."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[tuple[str, float]] = []

    def refreshed_state(self, stack: str, *, timeout_s: float) -> Any:
        self.calls.append((stack, timeout_s))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def _executor(tmp_path: Path, cloud: str, answer: Any) -> tuple[ProvisionExecutor, list]:
    db = StateDB(tmp_path / "state.db")
    db.upsert_cluster("job-1-0", status="UP", cloud=cloud, stack="job-1-0.a001", backend="file:///b",
                      simulate=None, outputs={"public_ips": ["203.0.113.5"]})
    made: list[Any] = []

    def driver_for(backend: str | None) -> FakeDriver:
        d = FakeDriver(answer)
        made.append((backend, d))
        return d

    return ProvisionExecutor(db=db, driver_for=driver_for, refresh_timeout_s=7.0), made


@pytest.mark.parametrize(("cloud", "nodes", "says"), [
    ("aws", [_node(AWS, instanceState="running")], CloudSays.RUNNING),
    ("gcp", [_node(GCP, currentStatus="TERMINATED")], CloudSays.STOPPED),
    ("azure", [], CloudSays.GONE),
])
def test_cloud_says_refreshes_the_clusters_stack(tmp_path: Path, cloud: str, nodes: list, says: CloudSays) -> None:
    ex, made = _executor(tmp_path, cloud, _deployment(*nodes))
    assert ex.cloud_says("job-1-0") is says
    [(backend, driver)] = made
    assert backend == "file:///b" and driver.calls == [("job-1-0.a001", 7.0)]


@pytest.mark.parametrize("answer", [EngineError("could not refresh stack job-1-0.a001: no resource plugin"),
                                    EngineError("could not refresh stack job-1-0.a001: no answer within 7s"),
                                    None])  # None: the stack is not in the backend
def test_a_refresh_that_cannot_run_is_unknown(tmp_path: Path, answer: Any) -> None:
    ex, made = _executor(tmp_path, "gcp", answer)
    assert ex.cloud_says("job-1-0") is CloudSays.UNKNOWN
    assert len(made) == 1


def test_a_simulated_cluster_asks_the_simulator_not_a_refresh(tmp_path: Path) -> None:
    ex, made = _executor(tmp_path, "aws", _deployment())
    ex.db.upsert_cluster("job-1-0", simulate="scenario.yaml")  # the sim stood in for AWS
    assert ex.cloud_says("job-1-0") is CloudSays.UNKNOWN  # the sim's ledger has no such node
    assert made == []
