"""stacks/azure/program.py under Pulumi mocks: what it declares for each kind of placement."""

from __future__ import annotations

import base64

import pytest
from stackmocks import PUBLIC_KEY, is_secret, make_request, plain, run_program

from skyplan.clouds import programs
from skyplan.clouds.vm import BOOT_MARKER

_program = programs.load("azure")
IMAGE_SKU = _program.IMAGE_SKU
IMAGE_SKU_ARM = _program.IMAGE_SKU_ARM
build = _program.build
image_sku = _program.image_sku
zone_number = _program.zone_number

VM = "azure-native:compute:VirtualMachine"
NSG = "azure-native:network:NetworkSecurityGroup"
PIP = "azure-native:network:PublicIPAddress"
NIC = "azure-native:network:NetworkInterface"
RG = "azure-native:resources:ResourceGroup"
SUBNET = "azure-native:network:Subnet"
VNET = "azure-native:network:VirtualNetwork"


def vm_inputs(m) -> dict:
    return plain(m.one(VM).inputs)


def test_on_demand_vm_with_zone_none_is_regional() -> None:
    m = run_program(build, make_request("azure"))
    vm = vm_inputs(m)
    assert vm["priority"] == "Regular"
    assert "evictionPolicy" not in vm and "billingProfile" not in vm
    assert "zones" not in vm and "zones" not in m.one(PIP).inputs
    assert vm["location"] == "eastus"
    assert vm["hardwareProfile"] == {"vmSize": "Standard_D2s_v5"}
    image = vm["storageProfile"]["imageReference"]
    assert (image["publisher"], image["offer"], image["sku"]) == ("Canonical", "0001-com-ubuntu-server-jammy", IMAGE_SKU)
    assert vm["storageProfile"]["osDisk"]["diskSizeGB"] == 100
    assert vm["storageProfile"]["osDisk"]["deleteOption"] == "Delete"
    assert vm["tags"]["skyplan-cluster"] == "demo" and vm["tags"]["skyplan-stack"] == "demo-a1b2"
    # everything lives in one resource group, named after the stack
    assert m.one(RG).inputs["resourceGroupName"] == "skyplan-demo-a1b2"
    assert {r.inputs["resourceGroupName"] for r in m.resources if r.typ != RG} == {"skyplan-demo-a1b2"}


def test_spot_priority_deletes_on_eviction_and_never_evicts_for_price() -> None:
    m = run_program(build, make_request("azure", use_spot=True))
    vm = vm_inputs(m)
    assert vm["priority"] == "Spot"
    assert vm["evictionPolicy"] == "Delete"
    assert vm["billingProfile"] == {"maxPrice": -1}


def test_a_zone_pins_the_vm_and_its_ip() -> None:
    m = run_program(build, make_request("azure", zone="eastus-2"))
    assert vm_inputs(m)["zones"] == ["2"]
    assert m.one(PIP).inputs["zones"] == ["2"]


def test_ports_become_inbound_nsg_rules_on_the_subnet() -> None:
    m = run_program(build, make_request("azure", ports=(8080,)))
    rules = m.one(NSG).inputs["securityRules"]
    assert sorted(r["destinationPortRange"] for r in rules) == ["22", "8080"]
    assert all(r["direction"] == "Inbound" and r["access"] == "Allow" and r["protocol"] == "Tcp" for r in rules)
    assert len({r["priority"] for r in rules}) == len(rules)
    assert m.one(SUBNET).inputs["networkSecurityGroup"]["id"] == f"{m.one(NSG).name}-id"


def test_disk_size_sets_the_os_disk() -> None:
    m = run_program(build, make_request("azure", disk_size=256))
    assert vm_inputs(m)["storageProfile"]["osDisk"]["diskSizeGB"] == 256


def test_custom_data_is_the_base64_boot_script_of_root_work_only() -> None:
    m = run_program(build, make_request("azure"))
    script = base64.b64decode(vm_inputs(m)["osProfile"]["customData"]).decode()
    assert script.startswith("#!/bin/bash") and BOOT_MARKER in script
    assert "echo setting up" not in script and "echo running" not in script  # started over SSH after up


def test_the_cluster_key_is_the_only_login() -> None:
    m = run_program(build, make_request("azure"))
    raw = m.one(VM).inputs["osProfile"]
    assert not is_secret(raw)  # nothing secret in it: no password, a public key
    profile = plain(raw)
    assert profile["adminUsername"] == "ubuntu"
    assert "adminPassword" not in profile
    linux = profile["linuxConfiguration"]
    assert linux["disablePasswordAuthentication"] is True
    assert linux["ssh"]["publicKeys"] == [{"keyData": PUBLIC_KEY, "path": "/home/ubuntu/.ssh/authorized_keys"}]


def test_a_users_own_key_is_not_read(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "id_ed25519.pub").write_text("ssh-ed25519 AAAAC3Nzaother me@laptop\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SKYPLAN_SSH_PUBLIC_KEY", "ssh-ed25519 AAAAC3Nzaenv me@laptop")
    m = run_program(build, make_request("azure"))
    assert "me@laptop" not in str(plain(m.one(VM).inputs))


def test_multi_node_declares_a_vm_nic_and_ip_per_rank() -> None:
    m = run_program(build, make_request("azure", num_nodes=2))
    assert [v.name for v in m.of_type(VM)] == ["demo-a1b2-0", "demo-a1b2-1"]
    assert len(m.of_type(NIC)) == 2 and len(m.of_type(PIP)) == 2
    assert len(m.of_type(RG)) == 1 and len(m.of_type(VNET)) == 1 and len(m.of_type(NSG)) == 1
    for vm in m.of_type(VM):
        assert plain(vm.inputs)["networkProfile"]["networkInterfaces"][0]["id"] == f"{vm.name}-nic-id"
    second = base64.b64decode(plain(m.of_type(VM)[1].inputs)["osProfile"]["customData"]).decode()
    assert "stack demo-a1b2, node 1:" in second
    assert m.exports["public_ips"] == ["198.51.100.7", "198.51.100.8"]  # by rank
    assert m.exports["private_ips"] == ["10.0.0.4", "10.0.0.5"]


def test_gpu_size_keeps_its_gpus_and_the_gen2_image() -> None:
    m = run_program(build, make_request("azure", instance_type="Standard_NC6s_v3", accelerators={"V100": 1.0}))
    vm = vm_inputs(m)
    assert vm["hardwareProfile"]["vmSize"] == "Standard_NC6s_v3"
    assert vm["storageProfile"]["imageReference"]["sku"] == IMAGE_SKU


@pytest.mark.parametrize(("size", "sku"), [("Standard_D2ps_v5", IMAGE_SKU_ARM), ("Standard_E4pds_v5", IMAGE_SKU_ARM),
                                           ("Standard_D2s_v5", IMAGE_SKU), ("Standard_NC24ads_A100_v4", IMAGE_SKU)])
def test_image_sku_follows_the_architecture(size: str, sku: str) -> None:
    assert image_sku(size) == sku


@pytest.mark.parametrize(("zone", "number"), [(None, None), ("2", "2"), ("eastus-3", "3"), ("eastus", None)])
def test_zone_number(zone, number) -> None:
    assert zone_number(zone) == number
