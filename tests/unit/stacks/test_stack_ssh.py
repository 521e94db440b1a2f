"""The VM programs under Pulumi mocks give skyplan SSH access to every node: the
cluster's public key authorised for the image's login user, port 22 open, a
public address per node, and the exports the node runtime reads
(``skyplan.clouds.vmnodes``): public_ips, ssh_user, ssh_port, cluster, stack."""

from __future__ import annotations

import base64

import pytest
from stackmocks import PUBLIC_KEY, make_request, plain, run_program

from skyplan.clouds import programs

CLOUDS = ["aws", "gcp", "azure"]


def build(cloud: str):  # noqa: ANN201
    return programs.load(cloud).build


@pytest.mark.parametrize("cloud", CLOUDS)
def test_exports_say_how_to_reach_each_node(cloud: str) -> None:
    m = run_program(build(cloud), make_request(cloud, num_nodes=2))
    out = m.exports
    assert out["ssh_user"] == "ubuntu"
    assert out["ssh_port"] == 22
    assert out["cluster"] == "demo" and out["stack"] == "demo-a1b2"
    ips = out["public_ips"]
    assert len(ips) == 2 and all(ips) and ips[0] != ips[1]  # one public address per rank


def test_aws_authorises_the_key_through_a_key_pair() -> None:
    m = run_program(build("aws"), make_request("aws", num_nodes=2))
    pair = m.one("aws:ec2/keyPair:KeyPair")
    assert pair.inputs["publicKey"] == PUBLIC_KEY
    assert pair.inputs["keyName"] == "skyplan-demo-a1b2"
    for inst in m.of_type("aws:ec2/instance:Instance"):
        assert inst.inputs["keyName"] == "skyplan-demo-a1b2"
        assert inst.inputs["associatePublicIpAddress"] is True
    ingress = m.one("aws:ec2/securityGroup:SecurityGroup").inputs["ingress"]
    assert {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]} in ingress


def test_gcp_authorises_the_key_in_metadata_for_the_login_user() -> None:
    m = run_program(build("gcp"), make_request("gcp", num_nodes=2, ports=(8080,)))
    for inst in m.of_type("gcp:compute/instance:Instance"):
        meta = inst.inputs["metadata"]
        assert meta["ssh-keys"] == f"ubuntu:{PUBLIC_KEY}"  # the exported ssh_user, then the key
        assert meta["enable-oslogin"] == "FALSE"  # OS Login would ignore metadata keys
        assert inst.inputs["networkInterfaces"][0]["accessConfigs"] == [{}]  # an external IP
    assert m.one("gcp:compute/firewall:Firewall").inputs["allows"] == [{"protocol": "tcp", "ports": ["22", "8080"]}]


def test_azure_authorises_the_key_for_the_admin_user() -> None:
    m = run_program(build("azure"), make_request("azure", num_nodes=2))
    for vm in m.of_type("azure-native:compute:VirtualMachine"):
        profile = plain(vm.inputs)["osProfile"]
        assert profile["adminUsername"] == "ubuntu"
        keys = profile["linuxConfiguration"]["ssh"]["publicKeys"]
        assert keys == [{"keyData": PUBLIC_KEY, "path": "/home/ubuntu/.ssh/authorized_keys"}]
    for nic in m.of_type("azure-native:network:NetworkInterface"):  # each NIC carries its node's public IP
        ip_id = plain(nic.inputs)["ipConfigurations"][0]["publicIPAddress"]["id"]
        assert ip_id == nic.name.replace("-nic", "-ip") + "-id"
    rules = m.one("azure-native:network:NetworkSecurityGroup").inputs["securityRules"]
    assert any(r["destinationPortRange"] == "22" and r["access"] == "Allow" for r in rules)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_a_request_without_a_key_is_a_program_error(cloud: str) -> None:
    # A VM no key reaches is useless: the task is started over SSH.
    with pytest.raises(Exception, match="no SSH public key"):
        run_program(build(cloud), make_request(cloud, ssh_public_key=None))


@pytest.mark.parametrize("cloud", CLOUDS)
def test_only_the_public_key_is_in_any_input(cloud: str) -> None:
    # The key's base64 body appears only where it is authorised; nothing private-looking anywhere.
    m = run_program(build(cloud), make_request(cloud))
    text = str([plain(r.inputs) for r in m.resources])
    decoded = " ".join(base64.b64decode(v).decode(errors="replace") for r in m.resources
                       for v in _strings(plain(r.inputs)) if _is_b64(v))
    assert "PRIVATE KEY" not in text and "PRIVATE KEY" not in decoded
    assert PUBLIC_KEY.split()[1] in text


def _strings(value):  # noqa: ANN001, ANN202
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def _is_b64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except ValueError:
        return False
    return len(text) > 16


def test_gcp_gpu_images_install_their_driver_and_the_marker_waits_for_it() -> None:
    m = run_program(build("gcp"), make_request("gcp", instance_type="n1-standard-8", accelerators={"V100": 1.0}))
    inst = m.one("gcp:compute/instance:Instance").inputs
    assert inst["metadata"]["install-nvidia-driver"] == "True"
    script = inst["metadataStartupScript"]
    assert script.index("nvidia-smi") < script.index("touch /var/lib/skyplan/boot-done")
    cpu = run_program(build("gcp"), make_request("gcp")).one("gcp:compute/instance:Instance").inputs
    assert "install-nvidia-driver" not in cpu["metadata"] and "nvidia-smi" not in cpu["metadataStartupScript"]
    # AWS's GPU image comes with its driver: nothing to wait for.
    aws = run_program(build("aws"), make_request("aws", instance_type="p3.2xlarge", accelerators={"V100": 1.0}))
    assert "nvidia-smi" not in aws.one("aws:ec2/instance:Instance").inputs["userData"]
