"""The AWS program: one placement is ``num_nodes`` EC2 instances and one security group.

Resources (all tagged skyplan-cluster / skyplan-stack):
  aws Provider        pinned to the placement's region
  <stack>-key         an EC2 key pair holding the cluster's SSH public key
                      (``request.ssh_public_key``; the private key never leaves skyplan's home)
  <stack>-sg          ingress tcp 22 + the task's ports from anywhere; all egress
  <stack>-<rank>      the instances: Ubuntu 22.04 (or the Deep Learning Base GPU AMI
                      when the task asks for GPUs), a public IP, the key pair, gp3 root
                      volume of the task's size, spot one-time/terminate when the
                      placement is spot, boot script from :func:`skyplan.clouds.vm.startup_input`
                      (root work at boot only; the task is started over SSH after ``up``)

Buckets (the task's ``{name, mode: MOUNT}`` file mounts, ``skyplan.clouds.buckets``):
  bucket-<name>       the S3 bucket, created when it does not exist (tagged
                      ``skyplan-owner``: the managed job it belongs to) and kept when
                      the stack is destroyed (``retain_on_delete``: a relaunch after a
                      preemption mounts it again); an existing one is attached
  <stack>-role / -buckets / -profile
                      an IAM role the instances assume (instance profile) whose inline
                      policy reaches those buckets only (list, get, put, delete)
  The boot script installs Mountpoint for S3 and mounts each bucket at its path
  (``mount-s3 --allow-delete --allow-overwrite``), owned by the login user.

Login: both AMI families log in as ``ubuntu`` (Canonical's Ubuntu images and the
Ubuntu-based Deep Learning AMIs), which cloud-init gives the key pair's key.

Zones: plans name AWS zones by AZ id (``use1-az1``), which is the same physical
zone in every account. An AZ id selects the default subnet of that AZ
(``availability-zone-id`` + ``default-for-az`` filters); a zone name
(``us-east-1a``) is passed as ``availability_zone``.

Exports: cloud, region, zone, zone_name (node 0's AZ name in this account),
instance_type, instance_ids, public_ips, private_ips (per rank), ssh_user, ssh_port,
cluster, stack, and ``buckets`` ([{name, dst, store, created}]) when the task has any.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from skyplan.clouds.base import ProvisionRequest
from skyplan.clouds.buckets import record_cloud_bucket
from skyplan.clouds.vm import (
    DEFAULT_DISK_GB,
    OWNER_TAG,
    SSH_PORT,
    all_ports,
    authorized_key,
    bucket_lines,
    bucket_owners,
    node_name,
    skyplan_labels,
    startup_input,
)

UBUNTU_OWNER = "099720109477"  # Canonical
DLAMI_OWNER = "amazon"
#: The login user of every AMI below (Ubuntu's default cloud-init user).
SSH_USER = "ubuntu"
AMI_NAMES = {
    ("cpu", "x86_64"): "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*",
    ("cpu", "arm64"): "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-arm64-server-*",
    ("gpu", "x86_64"): "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *",
    ("gpu", "arm64"): "Deep Learning ARM64 Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *",
}

_ZONE_ID = re.compile(r"[a-z]+\d+(?:-[a-z]+\d+)?-az\d+")
# Graviton families carry a "g" right after the generation digit: m6g, c7gn, t4g, im4gn, x2gd.
_GRAVITON = re.compile(r"[a-z]+\d+g[a-z]*(?:-[a-z]+)?\.")


def is_zone_id(zone: str) -> bool:
    """``use1-az1`` (an AZ id), as opposed to ``us-east-1a`` (an AZ name)."""
    return bool(_ZONE_ID.fullmatch(zone))


def architecture(instance_type: str) -> str:
    """The CPU architecture of an EC2 instance type: ``arm64`` for Graviton, else ``x86_64``."""
    if instance_type.startswith("a1.") or _GRAVITON.match(instance_type):
        return "arm64"
    return "x86_64"


def ami_query(request: ProvisionRequest) -> dict[str, Any]:
    """Arguments of the AMI lookup for this placement."""
    kind = "gpu" if request.accelerators else "cpu"
    arch = architecture(request.instance_type)
    return {
        "most_recent": True,
        "owners": [DLAMI_OWNER if kind == "gpu" else UBUNTU_OWNER],
        "filters": [
            {"name": "name", "values": [AMI_NAMES[(kind, arch)]]},
            {"name": "architecture", "values": [arch]},
            {"name": "virtualization-type", "values": ["hvm"]},
        ],
    }


#: Mountpoint for S3's package, per ``dpkg --print-architecture`` (amd64 is its x86_64).
MOUNTPOINT_DEB = "https://s3.amazonaws.com/mountpoint-s3-release/latest/{arch}/mount-s3.deb"


def bucket_policy(names: list[str]) -> str:
    """The instances' inline IAM policy: those buckets and their objects, nothing else."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [f"arn:aws:s3:::{n}" for n in names]},
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                                           "s3:AbortMultipartUpload"],
             "Resource": [f"arn:aws:s3:::{n}/*" for n in names]},
        ],
    }, sort_keys=True)


ASSUME_EC2 = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def mount_script(request: ProvisionRequest) -> list[str]:
    """The boot script's lines that install Mountpoint for S3 and mount each bucket."""
    arch = "$(dpkg --print-architecture | sed s/amd64/x86_64/)"
    install = [f"command -v mount-s3 >/dev/null || {{ apt-get update -y && apt-get install -y wget && "
               f"wget -q -O /tmp/mount-s3.deb {MOUNTPOINT_DEB.format(arch=arch)} && "
               "apt-get install -y /tmp/mount-s3.deb; }"]

    def mount(b: dict, uid: str, gid: str) -> str:
        return (f"mount-s3 --allow-other --allow-delete --allow-overwrite --uid {uid} --gid {gid} "
                f"--region {shlex.quote(request.region)} {shlex.quote(b['name'])} {shlex.quote(b['dst'])}")

    return bucket_lines(request, SSH_USER, install, mount)


def bucket_exists(name: str, invoke: Any) -> bool:
    """Whether S3 has bucket ``name`` (one this account can see): looked up while the
    program runs, so a relaunch attaches the bucket its first run created."""
    import pulumi_aws as aws

    try:
        aws.s3.get_bucket(bucket=name, opts=invoke)
    except Exception:  # noqa: BLE001 - not found (or not visible): the program creates it
        return False
    return True


def declare_buckets(request: ProvisionRequest, provider: Any, invoke: Any, tags: dict[str, str]) -> Any:
    """The buckets (created or attached) and the instance profile that reaches them;
    None when the task has no bucket."""
    import pulumi
    import pulumi_aws as aws

    if not request.buckets:
        return None
    names = list(dict.fromkeys(str(b["name"]) for b in request.buckets))
    owners = bucket_owners(request)
    made = []
    for name in names:
        if bucket_exists(name, invoke):
            continue
        owned = {**tags, OWNER_TAG: owners[name], "skyplan-bucket": name}
        bucket = aws.s3.Bucket(f"bucket-{name}", bucket=name, force_destroy=True, tags=owned,
                               opts=pulumi.ResourceOptions(provider=provider, retain_on_delete=True))
        if owners[name]:  # made for a managed job: its end deletes it (skyplan.clouds.buckets)
            bucket.id.apply(lambda _id, name=name, owned=owned: record_cloud_bucket(
                "s3", name, owners[name], region=request.region, tags=owned))
        made.append(name)
    pulumi.export("buckets", [{**dict(b), "store": "s3", "created": b["name"] in made} for b in request.buckets])
    opts = pulumi.ResourceOptions(provider=provider)
    role = aws.iam.Role(f"{request.stack}-role", assume_role_policy=ASSUME_EC2, tags=tags, opts=opts)
    aws.iam.RolePolicy(f"{request.stack}-buckets", role=role.id, policy=bucket_policy(names), opts=opts)
    return aws.iam.InstanceProfile(f"{request.stack}-profile", role=role.name, tags=tags, opts=opts)


def adopt_bucket(record: dict[str, Any], *, adopt: bool) -> None:
    """The program of a bucket's release (``skyplan.clouds.buckets.release_cloud_buckets``):
    the bucket a job's run created, imported as it was made (``adopt``), then with
    ``force_destroy`` in the state, so that destroying the stack deletes it, objects and all."""
    import pulumi
    import pulumi_aws as aws

    name = str(record["name"])
    provider = aws.Provider(f"bucket-{name}-aws", region=record["region"])
    aws.s3.Bucket(f"bucket-{name}", bucket=name, force_destroy=True, tags=dict(record.get("tags") or {}),
                  opts=pulumi.ResourceOptions(provider=provider, import_=name if adopt else None,
                                              ignore_changes=["forceDestroy"] if adopt else None))


def build(request: ProvisionRequest) -> None:
    """Declare the placement's resources in the current Pulumi program."""
    import pulumi
    import pulumi_aws as aws

    provider = aws.Provider(f"{request.stack}-aws", region=request.region)
    opts = pulumi.ResourceOptions(provider=provider)
    invoke = pulumi.InvokeOptions(provider=provider)
    tags = skyplan_labels(request)

    subnet_id: Any = None
    vpc_id: Any = None
    availability_zone: str | None = None
    if request.zone and is_zone_id(request.zone):
        subnet = aws.ec2.get_subnet_output(
            filters=[
                {"name": "availability-zone-id", "values": [request.zone]},
                {"name": "default-for-az", "values": ["true"]},
            ],
            opts=invoke,
        )
        subnet_id, vpc_id = subnet.id, subnet.vpc_id
    elif request.zone:
        availability_zone = request.zone

    ami = aws.ec2.get_ami_output(**ami_query(request), opts=invoke)

    # Key pair names are per region and account; the stack's name is unique.
    key = aws.ec2.KeyPair(f"{request.stack}-key", key_name=f"skyplan-{request.stack}"[:255],
                          public_key=authorized_key(request), tags=tags, opts=opts)

    group = aws.ec2.SecurityGroup(
        f"{request.stack}-sg",
        description=f"skyplan {request.stack}",
        vpc_id=vpc_id,
        ingress=[
            aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=p, to_port=p, cidr_blocks=["0.0.0.0/0"])
            for p in all_ports(request)
        ],
        egress=[aws.ec2.SecurityGroupEgressArgs(protocol="-1", from_port=0, to_port=0, cidr_blocks=["0.0.0.0/0"])],
        tags=tags,
        opts=opts,
    )

    profile = declare_buckets(request, provider, invoke, tags)
    mounts = mount_script(request)

    market = None
    if request.use_spot:
        market = aws.ec2.InstanceInstanceMarketOptionsArgs(
            market_type="spot",
            spot_options=aws.ec2.InstanceInstanceMarketOptionsSpotOptionsArgs(
                spot_instance_type="one-time", instance_interruption_behavior="terminate"
            ),
        )

    instances = []
    for rank in range(max(1, int(request.num_nodes))):
        name = node_name(request, rank)
        instances.append(
            aws.ec2.Instance(
                name,
                ami=ami.id,
                instance_type=request.instance_type,
                availability_zone=availability_zone,
                subnet_id=subnet_id,
                vpc_security_group_ids=[group.id],
                associate_public_ip_address=True,
                key_name=key.key_name,
                instance_market_options=market,
                root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                    volume_size=request.disk_size or DEFAULT_DISK_GB, volume_type="gp3", delete_on_termination=True
                ),
                user_data=startup_input(request, rank, SSH_USER, buckets=mounts),
                user_data_replace_on_change=True,
                iam_instance_profile=profile.name if profile is not None else None,
                tags={**tags, "Name": name, "skyplan-node-rank": str(rank)},
                volume_tags=tags,
                opts=opts,
            )
        )

    pulumi.export("cloud", "aws")
    pulumi.export("region", request.region)
    pulumi.export("zone", request.zone)
    # The account's AZ name of the zone (us-east-1a): plans name zones by AZ ID, people by name.
    pulumi.export("zone_name", instances[0].availability_zone)
    pulumi.export("instance_type", request.instance_type)
    pulumi.export("instance_ids", [i.id for i in instances])
    pulumi.export("public_ips", [i.public_ip for i in instances])
    pulumi.export("private_ips", [i.private_ip for i in instances])
    # How the node runtime reaches each node (skyplan.clouds.vmnodes).
    pulumi.export("ssh_user", SSH_USER)
    pulumi.export("ssh_port", SSH_PORT)
    pulumi.export("cluster", request.cluster)
    pulumi.export("stack", request.stack)
