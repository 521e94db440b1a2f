"""stacks/aws/program.py under Pulumi mocks: what it declares for each kind of placement."""

from __future__ import annotations

import pytest
from stackmocks import make_request, run_program

from skyplan.clouds import programs
from skyplan.clouds.vm import BOOT_MARKER

_program = programs.load("aws")
architecture = _program.architecture
build = _program.build
is_zone_id = _program.is_zone_id

INSTANCE = "aws:ec2/instance:Instance"
GROUP = "aws:ec2/securityGroup:SecurityGroup"
GET_SUBNET = "aws:ec2/getSubnet:getSubnet"
GET_AMI = "aws:ec2/getAmi:getAmi"


def filters(call_args: dict) -> dict[str, list[str]]:
    return {f["name"]: f["values"] for f in call_args["filters"]}


def test_on_demand_instance_in_a_zone_id() -> None:
    m = run_program(build, make_request("aws"))
    inst = m.one(INSTANCE).inputs
    assert inst["instanceType"] == "m6i.large"
    assert "instanceMarketOptions" not in inst
    assert inst["ami"] == "ami-0123456789abcdef0"  # the AMI lookup's result
    assert inst["subnetId"] == "subnet-0feed"  # the default subnet of the AZ id
    assert "availabilityZone" not in inst
    assert inst["rootBlockDevice"]["volumeSize"] == 100
    assert inst["tags"]["skyplan-cluster"] == "demo" and inst["tags"]["skyplan-stack"] == "demo-a1b2"
    assert inst["tags"]["team"] == "ml"
    provider = m.one("pulumi:providers:aws")
    assert provider.inputs["region"] == "us-east-1"
    assert m.one(INSTANCE).provider and provider.name in m.one(INSTANCE).provider


def test_zone_id_selects_the_default_subnet_of_that_az() -> None:
    m = run_program(build, make_request("aws", zone="use1-az4"))
    (call,) = m.calls_to(GET_SUBNET)
    assert filters(call) == {"availability-zone-id": ["use1-az4"], "default-for-az": ["true"]}
    assert m.one(GROUP).inputs["vpcId"] == "vpc-0cafe"  # the group lives in the subnet's VPC


def test_zone_name_is_passed_as_availability_zone() -> None:
    m = run_program(build, make_request("aws", zone="us-east-1a"))
    inst = m.one(INSTANCE).inputs
    assert inst["availabilityZone"] == "us-east-1a"
    assert "subnetId" not in inst
    assert m.calls_to(GET_SUBNET) == []


def test_region_only_placement_pins_no_zone() -> None:
    m = run_program(build, make_request("aws", zone=None))
    inst = m.one(INSTANCE).inputs
    assert "availabilityZone" not in inst and "subnetId" not in inst


def test_spot_is_one_time_and_terminates() -> None:
    m = run_program(build, make_request("aws", use_spot=True))
    market = m.one(INSTANCE).inputs["instanceMarketOptions"]
    assert market["marketType"] == "spot"
    assert market["spotOptions"] == {"spotInstanceType": "one-time", "instanceInterruptionBehavior": "terminate"}


def test_gpu_placement_uses_the_deep_learning_ami() -> None:
    m = run_program(build, make_request("aws", instance_type="p3.2xlarge", accelerators={"V100": 1.0}))
    (call,) = m.calls_to(GET_AMI)
    assert call["owners"] == ["amazon"]
    assert "Deep Learning" in filters(call)["name"][0]
    assert "guestAccelerators" not in m.one(INSTANCE).inputs  # EC2 GPUs come with the type


def test_cpu_placement_uses_ubuntu_2204_for_the_right_architecture() -> None:
    m = run_program(build, make_request("aws", instance_type="m7g.large"))
    (call,) = m.calls_to(GET_AMI)
    assert call["owners"] == ["099720109477"]
    assert filters(call)["architecture"] == ["arm64"]
    assert "jammy-22.04-arm64" in filters(call)["name"][0]


def test_ports_open_ssh_and_the_task_ports() -> None:
    m = run_program(build, make_request("aws", ports=(8080, 6006)))
    group = m.one(GROUP).inputs
    opened = sorted((r["protocol"], r["fromPort"], r["toPort"]) for r in group["ingress"])
    assert opened == [("tcp", 22, 22), ("tcp", 6006, 6006), ("tcp", 8080, 8080)]
    assert all(r["cidrBlocks"] == ["0.0.0.0/0"] for r in group["ingress"])
    assert m.one(INSTANCE).inputs["vpcSecurityGroupIds"] == [f"{m.one(GROUP).name}-id"]


def test_disk_size_sets_the_root_volume() -> None:
    m = run_program(build, make_request("aws", disk_size=512))
    assert m.one(INSTANCE).inputs["rootBlockDevice"] == {"volumeSize": 512, "volumeType": "gp3",
                                                         "deleteOnTermination": True}


def test_multi_node_declares_one_instance_per_rank() -> None:
    m = run_program(build, make_request("aws", num_nodes=3))
    instances = m.of_type(INSTANCE)
    assert [i.name for i in instances] == ["demo-a1b2-0", "demo-a1b2-1", "demo-a1b2-2"]
    for rank, inst in enumerate(instances):
        assert f"stack demo-a1b2, node {rank}:" in inst.inputs["userData"]
    assert len(m.of_type(GROUP)) == 1
    assert m.exports["public_ips"] == ["203.0.113.10", "203.0.113.11", "203.0.113.12"]  # by rank
    assert m.exports["private_ips"] == ["10.0.0.10", "10.0.0.11", "10.0.0.12"]


def test_user_data_is_root_work_at_boot_only() -> None:
    m = run_program(build, make_request("aws"))
    script = m.one(INSTANCE).inputs["userData"]
    assert script.startswith("#!/bin/bash") and BOOT_MARKER in script
    assert "echo setting up" not in script and "echo running" not in script  # started over SSH after up
    assert "GREETING" not in script


@pytest.mark.parametrize(("zone", "expected"), [("use1-az1", True), ("usw2-lax1-az1", True), ("us-east-1a", False)])
def test_zone_id_detection(zone: str, expected: bool) -> None:
    assert is_zone_id(zone) is expected


@pytest.mark.parametrize(
    ("itype", "arch"),
    [("m7g.large", "arm64"), ("c6gn.xlarge", "arm64"), ("g5g.2xlarge", "arm64"), ("a1.large", "arm64"),
     ("g4dn.xlarge", "x86_64"), ("p4d.24xlarge", "x86_64"), ("m7i-flex.large", "x86_64"), ("inf2.xlarge", "x86_64")],
)
def test_architecture(itype: str, arch: str) -> None:
    assert architecture(itype) == arch
