"""stacks/gcp/program.py under Pulumi mocks: what it declares for each kind of placement."""

from __future__ import annotations

import pytest
from stackmocks import make_request, run_program

from skyplan.clouds import programs

_program = programs.load("gcp")
IMAGE_CPU = _program.IMAGE_CPU
IMAGE_CPU_ARM = _program.IMAGE_CPU_ARM
IMAGE_GPU = _program.IMAGE_GPU
accelerator_type = _program.accelerator_type
build = _program.build

INSTANCE = "gcp:compute/instance:Instance"
FIREWALL = "gcp:compute/firewall:Firewall"


def test_on_demand_instance() -> None:
    m = run_program(build, make_request("gcp"))
    inst = m.one(INSTANCE).inputs
    assert inst["machineType"] == "n2-standard-4"
    assert inst["zone"] == "us-central1-a"
    assert inst["scheduling"]["provisioningModel"] == "STANDARD"
    assert inst["scheduling"]["preemptible"] is False
    assert inst["scheduling"]["onHostMaintenance"] == "MIGRATE"
    assert "instanceTerminationAction" not in inst["scheduling"]
    assert "guestAccelerators" not in inst
    assert inst["bootDisk"]["initializeParams"]["image"] == IMAGE_CPU
    assert inst["bootDisk"]["initializeParams"]["size"] == 100
    assert inst["networkInterfaces"] == [{"network": "default", "accessConfigs": [{}]}]  # an external IP
    assert inst["labels"]["skyplan-cluster"] == "demo" and inst["labels"]["skyplan-stack"] == "demo-a1b2"


def test_spot_uses_the_spot_provisioning_model() -> None:
    m = run_program(build, make_request("gcp", use_spot=True))
    sched = m.one(INSTANCE).inputs["scheduling"]
    assert sched == {"provisioningModel": "SPOT", "preemptible": True, "automaticRestart": False,
                     "onHostMaintenance": "TERMINATE", "instanceTerminationAction": "DELETE"}


def test_n1_with_v100_attaches_the_gpu_and_terminates_on_maintenance() -> None:
    m = run_program(build, make_request("gcp", instance_type="n1-highmem-8", accelerators={"V100": 1.0}))
    inst = m.one(INSTANCE).inputs
    assert inst["guestAccelerators"] == [{"type": "nvidia-tesla-v100", "count": 1}]
    assert inst["scheduling"]["onHostMaintenance"] == "TERMINATE"
    assert inst["bootDisk"]["initializeParams"]["image"] == IMAGE_GPU


def test_n1_with_four_t4_attaches_four() -> None:
    m = run_program(build, make_request("gcp", instance_type="n1-standard-16", accelerators={"T4": 4.0}))
    assert m.one(INSTANCE).inputs["guestAccelerators"] == [{"type": "nvidia-tesla-t4", "count": 4}]


@pytest.mark.parametrize(("itype", "gpu"), [("g2-standard-8", "L4"), ("a2-highgpu-1g", "A100")])
def test_bundled_gpu_families_attach_nothing(itype: str, gpu: str) -> None:
    m = run_program(build, make_request("gcp", instance_type=itype, accelerators={gpu: 1.0}))
    inst = m.one(INSTANCE).inputs
    assert "guestAccelerators" not in inst
    assert inst["scheduling"]["onHostMaintenance"] == "TERMINATE"  # GPU VMs cannot live-migrate
    assert inst["bootDisk"]["initializeParams"]["image"] == IMAGE_GPU


def test_arm_machine_uses_the_arm_image() -> None:
    m = run_program(build, make_request("gcp", instance_type="t2a-standard-4"))
    assert m.one(INSTANCE).inputs["bootDisk"]["initializeParams"]["image"] == IMAGE_CPU_ARM


def test_ports_open_a_firewall_for_the_instances_tag() -> None:
    m = run_program(build, make_request("gcp", ports=(8080, 6006)))
    fw = m.one(FIREWALL).inputs
    assert fw["allows"] == [{"protocol": "tcp", "ports": ["22", "6006", "8080"]}]
    assert fw["sourceRanges"] == ["0.0.0.0/0"] and fw["direction"] == "INGRESS"
    assert fw["targetTags"] == m.one(INSTANCE).inputs["tags"]


def test_disk_size_sets_the_boot_disk() -> None:
    m = run_program(build, make_request("gcp", disk_size=300))
    assert m.one(INSTANCE).inputs["bootDisk"]["initializeParams"]["size"] == 300


def test_labels_are_made_acceptable_to_gcp() -> None:
    m = run_program(build, make_request("gcp", cluster="My.Cluster", labels={"Owner": "Jane Doe"}))
    labels = m.one(INSTANCE).inputs["labels"]
    assert labels["skyplan-cluster"] == "my-cluster"
    assert labels["owner"] == "jane-doe"


def test_multi_node_declares_one_instance_per_rank() -> None:
    m = run_program(build, make_request("gcp", num_nodes=2))
    instances = m.of_type(INSTANCE)
    assert [i.inputs["name"] for i in instances] == ["demo-a1b2-0", "demo-a1b2-1"]
    assert [i.inputs["labels"]["skyplan-node-rank"] for i in instances] == ["0", "1"]
    assert "stack demo-a1b2, node 1:" in instances[1].inputs["metadataStartupScript"]
    assert "echo running" not in instances[1].inputs["metadataStartupScript"]  # started over SSH after up
    assert len(m.of_type(FIREWALL)) == 1
    assert m.exports["public_ips"] == ["34.1.2.10", "34.1.2.11"]  # by rank
    assert m.exports["private_ips"] == ["10.128.0.10", "10.128.0.11"]


def test_instance_names_start_with_a_letter() -> None:
    m = run_program(build, make_request("gcp", stack="9lives-x"))
    assert m.one(INSTANCE).inputs["name"] == "s-9lives-x-0"


def test_a_placement_without_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a zone"):
        build(make_request("gcp", zone=None))


def test_accelerator_type_names() -> None:
    assert accelerator_type("A100-80GB") == "nvidia-a100-80gb"
    assert accelerator_type("L4") == "nvidia-l4"
