"""Where a service replica answers: SKYPLAN_PORT on every cloud, and each cloud's
``endpoint(outputs, port)`` (the node's own loopback port on clouds whose nodes run
here; the head node's address and the declared port on VMs and ssh)."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyplan.clouds import registry
from skyplan.spec import load_text

VM_OUTPUTS = {"cluster": "serve-svc-1", "stack": "serve-svc-1.a001", "ssh_user": "skyplan", "ssh_port": 22,
              "public_ips": ["34.23.22.160"], "private_ips": ["10.0.0.2"]}


@pytest.mark.parametrize("name", registry.with_capability(loopback_ports=True))
def test_clouds_whose_nodes_run_here_give_the_nodes_own_port(name):
    cloud = registry.get(name)
    outputs = {"nodes": [{"rank": 1, "port": 40002}, {"rank": 0, "port": 40001}]}
    assert cloud.endpoint(outputs, 8081) == "http://127.0.0.1:40001"
    assert cloud.endpoint({"nodes": [{"rank": 0, "port": None}]}, 8081) is None  # a task without ports
    assert cloud.endpoint({}, 8081) is None


def test_which_clouds_run_nodes_here():
    assert set(registry.with_capability(loopback_ports=True)) == set(registry.with_capability(runs_here=True))


@pytest.mark.parametrize("name", registry.with_capability(nodes_over_ssh=True))
def test_vm_clouds_give_the_head_nodes_public_address_and_the_declared_port(name):
    cloud = registry.get(name)
    assert cloud.endpoint(VM_OUTPUTS, 8081) == "http://34.23.22.160:8081"
    assert cloud.endpoint({**VM_OUTPUTS, "public_ips": [None]}, 8081) is None  # no public address (yet)
    assert cloud.endpoint({**VM_OUTPUTS, "public_ips": ["2001:db8::1"]}, 80) == "http://[2001:db8::1]:80"
    assert cloud.endpoint({}, 8081) is None  # a stack from before: unknown


def test_ssh_pools_give_the_head_hosts_address():
    cloud = registry.get("ssh")
    node = {"pool": "lab", "zone": "lab-1", "key": "k", "host": "10.1.2.3", "port": 2222, "user": "me",
            "identity_file": None, "known_hosts": None, "sandbox": "~/.skyplan/sandboxes/s/node-0"}
    assert cloud.endpoint({"nodes": [{**node, "rank": 0}]}, 8081) == "http://10.1.2.3:8081"
    assert cloud.endpoint({"nodes": []}, 8081) is None


def test_a_cloud_that_cannot_tell_says_none():
    assert registry.get("kubernetes").endpoint({"namespace": "x"}, 8081) is None


# --- SKYPLAN_PORT ------------------------------------------------------------------------


def _request(text: str):
    from skyplan.catalog import load_catalog
    from skyplan.planner import make_plan
    from skyplan.provision.apply import request_for

    plan = make_plan(load_text(text, "t.yaml"), load_catalog(None))
    return request_for(plan, plan.candidates[0], "c", "c-stk", None)


def test_a_task_with_ports_gets_its_first_port_as_skyplan_port_on_every_cloud():
    req = _request("resources: {cloud: aws, cpus: 2, ports: [8081, 9000]}\nenvs: {A: b}\n")
    assert req.envs == {"A": "b", "SKYPLAN_PORT": "8081"}
    assert "SKYPLAN_PORT" not in _request("resources: {cloud: aws, cpus: 2}\n").envs


def test_nodes_here_ask_for_a_free_loopback_port_only_for_a_task_with_ports(tmp_path: Path):
    from skyplan.clouds.local.provider import node_props

    props = node_props(_request("resources: {cloud: local, ports: 8081}\n"), 0, tmp_path / "node-0")
    assert props["loopback_port"] is True and props["envs"]["SKYPLAN_PORT"] == "8081"
    # A node made before ports became $SKYPLAN_PORT sees no new input.
    assert "loopback_port" not in node_props(_request("resources: {cloud: local}\n"), 0, tmp_path / "node-0")


def test_ssh_nodes_keep_the_declared_port(tmp_path: Path):
    from skyplan.clouds.local.provider import task_props

    assert "loopback_port" not in task_props(_request("resources: {cloud: aws, cpus: 2, ports: 8081}\n"))
