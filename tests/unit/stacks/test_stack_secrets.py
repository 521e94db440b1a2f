"""Every program passes the task's secrets to Pulumi only as secrets (the local
and sim nodes' inputs), or not at all (the VM programs: their tasks are started
over SSH). Under mocks, a secret input arrives wrapped in Pulumi's secret marker;
the value must appear inside such a wrapper and nowhere else."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import pulumi
from stackmocks import _SECRET_SIG, RecordingMocks, make_request, plain, run_program

from skyplan.clouds import programs
from skyplan.clouds.base import ProvisionRequest, SecretValues

VALUE = "s3cret-canary-value"


def outside_secrets(value: Any, needle: str) -> list[str]:
    """Plain-text places (outside a secret wrapper) that hold ``needle``, base64 or not."""
    encoded = base64.b64encode(needle.encode()).decode()[:12]
    if isinstance(value, dict):
        if _SECRET_SIG in value:
            return []
        return [hit for v in value.values() for hit in outside_secrets(v, needle)]
    if isinstance(value, list):
        return [hit for v in value for hit in outside_secrets(v, needle)]
    if isinstance(value, str) and (needle in value or encoded in value or needle in _b64(value)):
        return [value[:60]]
    return []


def _b64(text: str) -> str:
    try:
        return base64.b64decode(text, validate=True).decode(errors="replace")
    except ValueError:
        return ""


def _declared(cloud: str, request: ProvisionRequest) -> list[dict[str, Any]]:
    return [r.inputs for r in run_program(programs.load(cloud).build, request).resources]


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_vm_programs_hold_no_secret_value_at_all(cloud: str) -> None:
    """The VM programs no longer start the task (the node runtime does, over SSH,
    with envs and secrets on its stdin): no value reaches any input, secret or not,
    so none is in the instance's metadata either."""
    request = make_request(cloud, num_nodes=2, secrets=SecretValues({"TOKEN": VALUE}))
    declared = _declared(cloud, request)
    assert declared
    for inputs in declared:
        assert VALUE not in str(plain(inputs)) and VALUE not in _b64_all(plain(inputs))


def _b64_all(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(_b64_all(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(_b64_all(v) for v in value)
    return _b64(value) if isinstance(value, str) else ""


class NodeMocks(RecordingMocks):
    """What a created node outputs, which the programs export (the dynamic
    provider itself does not run under mocks)."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        id_, outputs = super().new_resource(args)
        return id_, {**outputs, "logs": {"combined": "/x/combined.log"}}


@pytest.mark.parametrize("cloud", ["local", "sim"])
def test_local_and_sim_nodes_take_secrets_as_secret_inputs(cloud: str, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path))
    scenario = tmp_path / "s.yaml"
    scenario.write_text("default: ok\n")
    request = make_request("aws", secrets=SecretValues({"TOKEN": VALUE}), scenario=str(scenario))
    mocks = NodeMocks()
    pulumi.runtime.set_mocks(mocks, project="skyplan-test", stack=request.stack, preview=False)
    pulumi.runtime.test(lambda: programs.load(cloud).build(request))()
    nodes = [r.inputs for r in mocks.resources if "secrets" in r.inputs]
    assert nodes, "the program declares its nodes with a secrets input"
    for inputs in nodes:
        assert outside_secrets(inputs, VALUE) == []
        assert plain(inputs["secrets"]) == {"TOKEN": VALUE}
