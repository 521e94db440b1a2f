"""The GCP program: one placement is ``num_nodes`` Compute Engine instances and one firewall.

Resources (labelled skyplan-cluster / skyplan-stack):
  <stack>-fw        ingress tcp 22 + the task's ports, on the default network, for the
                    instances' network tag
  <stack>-<rank>    the instances, in the placement's zone: Ubuntu 22.04 (a Deep
                    Learning VM image when the task asks for GPUs), an ephemeral
                    external IP, pd-balanced boot disk of the task's size, SPOT
                    scheduling for spot placements, the cluster's SSH public key in
                    the ``ssh-keys`` metadata, boot script from
                    :func:`skyplan.clouds.vm.startup_input` (root work at boot only;
                    the task is started over SSH after ``up``)

Buckets (the task's ``{name, mode: MOUNT}`` file mounts, ``skyplan.clouds.buckets``):
  bucket-<name>     the Cloud Storage bucket (uniform access, in the placement's region),
                    created when it does not exist (labelled ``skyplan-owner``: the managed
                    job it belongs to) and kept when the stack is destroyed
                    (``retain_on_delete``: a relaunch mounts it again); an existing one is
                    attached
  <stack>-sa        a service account the instances run as (scope devstorage.read_write),
  <stack>-<name>-rw granted roles/storage.objectAdmin on those buckets only
  The boot script installs gcsfuse and mounts each bucket at its path, owned by the
  login user.

Login: ``ubuntu``, the user named in ``ssh-keys`` (the guest agent creates it, with
passwordless sudo, if the image lacks it). OS Login would ignore metadata keys, so
the instance turns it off for itself (``enable-oslogin: FALSE``); an organisation
policy that enforces OS Login makes the node unreachable (the launch says so).

GPUs: N1 machine types take GPUs as ``guest_accelerators``; the A2, A3 and G2
families come with theirs, so nothing is attached. Any GPU instance must stop
on host maintenance (``TERMINATE``). The project is the provider's (``gcp:project``
or GOOGLE_PROJECT / GOOGLE_CLOUD_PROJECT / gcloud's default).

Exports: cloud, region, zone, instance_type, instance_names, instance_ids, public_ips, private_ips
(per rank), ssh_user, ssh_port, cluster, stack, and ``buckets`` ([{name, dst, store, created}]) when
the task has any.
"""

from __future__ import annotations

import hashlib
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

#: skyplan accelerator name -> GCP accelerator type.
ACCELERATOR_TYPES = {
    "K80": "nvidia-tesla-k80",
    "P4": "nvidia-tesla-p4",
    "P100": "nvidia-tesla-p100",
    "T4": "nvidia-tesla-t4",
    "V100": "nvidia-tesla-v100",
    "A100": "nvidia-tesla-a100",
    "A100-80GB": "nvidia-a100-80gb",
    "L4": "nvidia-l4",
    "H100": "nvidia-h100-80gb",
}

IMAGE_CPU = "projects/ubuntu-os-cloud/global/images/family/ubuntu-2204-lts"
IMAGE_CPU_ARM = "projects/ubuntu-os-cloud/global/images/family/ubuntu-2204-lts-arm64"
IMAGE_GPU = "projects/deeplearning-platform-release/global/images/family/common-cu124-ubuntu-2204-py310"

#: The login user, named in the ``ssh-keys`` metadata (Ubuntu's usual one).
SSH_USER = "ubuntu"

#: Families that attach GPUs as guest accelerators; the others bundle theirs.
ATTACHING_FAMILIES = ("n1-",)
ARM_FAMILIES = ("t2a-", "c4a-")


def accelerator_type(name: str) -> str:
    """The GCP accelerator type for a skyplan GPU name (``V100`` -> ``nvidia-tesla-v100``)."""
    return ACCELERATOR_TYPES.get(name) or ACCELERATOR_TYPES.get(name.upper()) or "nvidia-" + name.lower()


def guest_accelerators(request: ProvisionRequest) -> list[dict[str, Any]]:
    """The accelerators to attach: only on N1 hosts, which take GPUs separately."""
    if not request.instance_type.startswith(ATTACHING_FAMILIES):
        return []
    return [{"type": accelerator_type(n), "count": int(c)} for n, c in request.accelerators.items() if c]


def image(request: ProvisionRequest) -> str:
    if request.accelerators:
        return IMAGE_GPU
    return IMAGE_CPU_ARM if request.instance_type.startswith(ARM_FAMILIES) else IMAGE_CPU


def gcp_label(value: str) -> str:
    """A label key or value GCP accepts: lowercase letters, digits, - and _, at most 63."""
    return re.sub(r"[^a-z0-9_-]", "-", value.lower())[:63]


def labels(request: ProvisionRequest) -> dict[str, str]:
    out = {}
    for k, v in skyplan_labels(request).items():
        key = gcp_label(k)
        if not key or not key[0].isalpha():
            key = ("l-" + key)[:63]
        out[key] = gcp_label(v)
    return out


def network_tag(request: ProvisionRequest) -> str:
    tag = node_name(request, 0)[: -len("-0")]
    if not tag[:1].isalpha():
        tag = "s-" + tag
    return tag[:63].rstrip("-")


def instance_name(request: ProvisionRequest, rank: int) -> str:
    """An RFC 1035 name (letter first, at most 63) for node ``rank``."""
    name = node_name(request, rank)
    if not name[:1].isalpha():
        name = "s-" + name
    suffix = f"-{rank}"
    return name if len(name) <= 63 else name[: 63 - len(suffix)].rstrip("-") + suffix


def scheduling(request: ProvisionRequest) -> dict[str, Any]:
    """Spot: SPOT model, preemptible, deleted when preempted. GPUs: stop on host maintenance."""
    if request.use_spot:
        return {
            "provisioning_model": "SPOT",
            "preemptible": True,
            "automatic_restart": False,
            "on_host_maintenance": "TERMINATE",
            "instance_termination_action": "DELETE",
        }
    return {
        "provisioning_model": "STANDARD",
        "preemptible": False,
        "automatic_restart": True,
        "on_host_maintenance": "TERMINATE" if request.accelerators else "MIGRATE",
    }


def metadata(request: ProvisionRequest) -> dict[str, str]:
    """Instance metadata: the cluster's key for the login user, OS Login off (it
    would ignore metadata keys), and for GPUs the Deep Learning image's own driver
    install at first boot (without it the image only offers to install it at the
    first interactive login)."""
    meta = {"ssh-keys": f"{SSH_USER}:{authorized_key(request)}", "enable-oslogin": "FALSE"}
    if request.accelerators:
        meta["install-nvidia-driver"] = "True"
    return meta


#: The scope of the instances' service account when the task has buckets (IAM narrows it).
STORAGE_SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"
#: What the service account may do in each bucket: its objects, read and write.
BUCKET_ROLE = "roles/storage.objectAdmin"
#: gcsfuse's apt repository (signed by Google's Cloud packages key).
GCSFUSE_INSTALL = [
    "command -v gcsfuse >/dev/null || { apt-get update -y && apt-get install -y curl lsb-release && "
    "curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg -o /usr/share/keyrings/cloud.google.asc && "
    'echo "deb [signed-by=/usr/share/keyrings/cloud.google.asc] https://packages.cloud.google.com/apt '
    'gcsfuse-$(lsb_release -c -s) main" > /etc/apt/sources.list.d/gcsfuse.list && '
    "apt-get update -y && apt-get install -y gcsfuse; }",
]


def service_account_id(request: ProvisionRequest) -> str:
    """The instances' service account id: 6-30 characters, unique per stack."""
    return "skyplan-" + hashlib.sha256(request.stack.encode()).hexdigest()[:20]


def mount_script(request: ProvisionRequest) -> list[str]:
    """The boot script's lines that install gcsfuse and mount each bucket."""
    def mount(b: dict, uid: str, gid: str) -> str:
        return (f"gcsfuse --implicit-dirs -o allow_other --uid {uid} --gid {gid} --file-mode 664 --dir-mode 775 "
                f"{shlex.quote(b['name'])} {shlex.quote(b['dst'])}")

    return bucket_lines(request, SSH_USER, list(GCSFUSE_INSTALL), mount)


def bucket_exists(name: str) -> bool:
    """Whether Cloud Storage has bucket ``name`` (one the project can see)."""
    import pulumi_gcp as gcp

    try:
        gcp.storage.get_bucket(name=name)
    except Exception:  # noqa: BLE001 - not found (or not visible): the program creates it
        return False
    return True


def declare_buckets(request: ProvisionRequest) -> Any:
    """The buckets (created or attached), and the service account that reaches them
    (None when the task has no bucket)."""
    import pulumi
    import pulumi_gcp as gcp

    if not request.buckets:
        return None
    names = list(dict.fromkeys(str(b["name"]) for b in request.buckets))
    owners = bucket_owners(request)
    account = gcp.serviceaccount.Account(f"{request.stack}-sa", account_id=service_account_id(request),
                                         display_name=f"skyplan {request.stack}"[:100])
    made = []
    for name in names:
        bucket: Any = name
        if not bucket_exists(name):
            owned = {**labels(request), OWNER_TAG: gcp_label(owners[name]), "skyplan-bucket": name}
            made_bucket = gcp.storage.Bucket(
                f"bucket-{name}", name=name, location=request.region.upper(), force_destroy=True,
                uniform_bucket_level_access=True, labels=owned, opts=pulumi.ResourceOptions(retain_on_delete=True))
            if owners[name]:  # made for a managed job: its end deletes it (skyplan.clouds.buckets)
                made_bucket.id.apply(lambda _id, name=name, owned=owned: record_cloud_bucket(
                    "gcs", name, owners[name], location=request.region.upper(), labels=owned))
            bucket = made_bucket.name
            made.append(name)
        gcp.storage.BucketIAMMember(f"{request.stack}-{name}-rw", bucket=bucket, role=BUCKET_ROLE,
                                    member=account.email.apply(lambda e: f"serviceAccount:{e}"))
    pulumi.export("buckets", [{**dict(b), "store": "gcs", "created": b["name"] in made} for b in request.buckets])
    return account


def adopt_bucket(record: dict[str, Any], *, adopt: bool) -> None:
    """The program of a bucket's release (``skyplan.clouds.buckets.release_cloud_buckets``):
    the bucket a job's run created, imported as it was made (``adopt``), then with
    ``force_destroy`` in the state, so that destroying the stack deletes it, objects and all."""
    import pulumi
    import pulumi_gcp as gcp

    name = str(record["name"])
    gcp.storage.Bucket(f"bucket-{name}", name=name, location=record["location"], force_destroy=True,
                       uniform_bucket_level_access=True, labels=dict(record.get("labels") or {}),
                       opts=pulumi.ResourceOptions(import_=name if adopt else None,
                                                   ignore_changes=["forceDestroy"] if adopt else None))


def build(request: ProvisionRequest) -> None:
    """Declare the placement's resources in the current Pulumi program."""
    import pulumi
    import pulumi_gcp as gcp

    if not request.zone:
        raise ValueError(f"a GCP placement needs a zone (got region {request.region} only)")
    tag = network_tag(request)

    gcp.compute.Firewall(
        f"{request.stack}-fw",
        network="default",
        direction="INGRESS",
        allows=[gcp.compute.FirewallAllowArgs(protocol="tcp", ports=[str(p) for p in all_ports(request)])],
        source_ranges=["0.0.0.0/0"],
        target_tags=[tag],
    )

    accelerators = [gcp.compute.InstanceGuestAcceleratorArgs(**a) for a in guest_accelerators(request)]
    account = declare_buckets(request)
    mounts = mount_script(request)
    instances = []
    for rank in range(max(1, int(request.num_nodes))):
        instances.append(
            gcp.compute.Instance(
                node_name(request, rank),
                name=instance_name(request, rank),
                machine_type=request.instance_type,
                zone=request.zone,
                boot_disk=gcp.compute.InstanceBootDiskArgs(
                    auto_delete=True,
                    initialize_params=gcp.compute.InstanceBootDiskInitializeParamsArgs(
                        image=image(request), size=request.disk_size or DEFAULT_DISK_GB, type="pd-balanced"
                    ),
                ),
                network_interfaces=[
                    gcp.compute.InstanceNetworkInterfaceArgs(
                        network="default", access_configs=[gcp.compute.InstanceNetworkInterfaceAccessConfigArgs()]
                    )
                ],
                scheduling=gcp.compute.InstanceSchedulingArgs(**scheduling(request)),
                guest_accelerators=accelerators or None,
                metadata=metadata(request),
                # The boot marker waits for that driver: the task starts once its GPUs work.
                metadata_startup_script=startup_input(request, rank, SSH_USER, gpu_driver_wait=True,
                                                      buckets=mounts),
                service_account=gcp.compute.InstanceServiceAccountArgs(email=account.email, scopes=[STORAGE_SCOPE])
                if account is not None else None,
                labels={**labels(request), "skyplan-node-rank": str(rank)},
                tags=[tag],
                allow_stopping_for_update=True,
            )
        )

    pulumi.export("cloud", "gcp")
    pulumi.export("region", request.region)
    pulumi.export("zone", request.zone)
    pulumi.export("instance_type", request.instance_type)
    pulumi.export("instance_names", [i.name for i in instances])
    pulumi.export("instance_ids", [i.instance_id for i in instances])
    pulumi.export(
        "public_ips",
        [i.network_interfaces.apply(lambda nics: nics[0].access_configs[0].nat_ip
                                    if nics and nics[0].access_configs else None) for i in instances],
    )
    pulumi.export("private_ips", [i.network_interfaces.apply(lambda nics: nics[0].network_ip if nics else None)
                                  for i in instances])
    # How the node runtime reaches each node (skyplan.clouds.vmnodes).
    pulumi.export("ssh_user", SSH_USER)
    pulumi.export("ssh_port", SSH_PORT)
    pulumi.export("cluster", request.cluster)
    pulumi.export("stack", request.stack)
