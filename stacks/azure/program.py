"""The Azure program: one placement is a resource group holding ``num_nodes`` VMs and their network.

Resources (tagged skyplan-cluster / skyplan-stack), all in the placement's region:
  skyplan-<stack>     resource group (removing the stack removes everything in it)
  <stack>-nsg         inbound Tcp 22 + the task's ports
  <stack>-vnet        10.0.0.0/16, with subnet ``default`` (10.0.0.0/24) behind the NSG
  <node>-ip / -nic    a Standard static public IP and a NIC per node
  <node>              the VMs: Canonical Ubuntu 22.04, StandardSSD OS disk of the
                      task's size, Spot priority (evicted = deleted, max price -1 =
                      never evicted for price) for spot placements, boot script as
                      base64 custom data (root work at boot only; the task is started
                      over SSH after ``up``)

Buckets (the task's ``{name, mode: MOUNT}`` file mounts, ``skyplan.clouds.buckets``): a
bucket ``B`` is the Blob container ``B`` of storage account ``account_name(B)`` in resource
group ``skyplan-bucket-B``, outside the cluster's group so that it outlives the cluster:
  bucket-<B>-rg / -account / bucket-<B>
                      created when the container does not exist (tagged ``skyplan-owner``:
                      the managed job it belongs to) and kept when the stack is destroyed
                      (``retain_on_delete``: a relaunch mounts it again); an existing one is
                      attached
  <node>-<B>-blob     the VM's system-assigned identity gets Storage Blob Data Contributor
                      on that account only
  The boot script installs blobfuse2 and mounts each container at its path with the VM's
  managed identity (``mode: msi``).

Zones: our catalog gives Azure no zones, so ``zone`` is normally None and the VM is
regional. A zone ("2" or "eastus-2") pins the VM and its public IP to that zone.

Login: the VM's admin user ``ubuntu`` (the Ubuntu images have none of their own:
Azure creates the one named here) accepts the cluster's SSH public key
(``request.ssh_public_key``) and no password.

Exports: cloud, region, zone, instance_type, resource_group, vm_ids, public_ips,
private_ips (per rank), ssh_user, ssh_port, cluster, stack, and ``buckets`` ([{name, dst,
store, created}]) when the task has any.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shlex
import uuid
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

#: The admin (login) user Azure creates on the VM.
ADMIN_USER = SSH_USER = "ubuntu"
IMAGE_PUBLISHER = "Canonical"
IMAGE_OFFER = "0001-com-ubuntu-server-jammy"
IMAGE_SKU = "22_04-lts-gen2"
IMAGE_SKU_ARM = "22_04-lts-arm64"

# Arm sizes carry a "p" among the letters after the core count: D2ps_v5, E4pds_v5, B2pts_v2.
_ARM_SIZE = re.compile(r"Standard_[A-Z]+\d+[a-z]*p[a-z]*_v\d+")


def image_sku(vm_size: str) -> str:
    return IMAGE_SKU_ARM if _ARM_SIZE.fullmatch(vm_size) else IMAGE_SKU


def zone_number(zone: str | None) -> str | None:
    """``"2"`` for zone "2" or "eastus-2"; None when the placement is regional."""
    if not zone:
        return None
    m = re.search(r"(\d+)$", zone)
    return m.group(1) if m else None


def custom_data(request: ProvisionRequest, rank: int) -> Any:
    """The boot script, base64 as Azure wants it."""
    return startup_input(request, rank, ADMIN_USER, lambda script: base64.b64encode(script.encode()).decode(),
                         buckets=mount_script(request))


#: Storage Blob Data Contributor (a built-in role: the same id in every subscription).
BLOB_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
BLOBFUSE_INSTALL = [
    "command -v blobfuse2 >/dev/null || { apt-get update -y && apt-get install -y wget lsb-release && "
    "wget -q -O /tmp/packages-microsoft-prod.deb "
    "https://packages.microsoft.com/config/ubuntu/$(lsb_release -rs)/packages-microsoft-prod.deb && "
    "dpkg -i /tmp/packages-microsoft-prod.deb && apt-get update -y && apt-get install -y blobfuse2 fuse3; }",
]


def account_name(bucket: str) -> str:
    """The storage account holding bucket ``bucket``: 24 lowercase letters and digits,
    the same for the same name (storage account names are global)."""
    return "skyb" + hashlib.sha256(bucket.encode()).hexdigest()[:20]


def bucket_group(bucket: str) -> str:
    return f"skyplan-bucket-{bucket}"


def blobfuse_config(bucket: str) -> str:
    """blobfuse2's configuration for ``bucket``: the VM's managed identity, a local file cache."""
    acct = account_name(bucket)
    return "\n".join([
        "allow-other: true",
        "components: [libfuse, file_cache, attr_cache, azstorage]",
        "libfuse: {default-permission: 0777, attribute-expiration-sec: 120}",
        f"file_cache: {{path: /mnt/blobfuse2-cache/{bucket}, timeout-sec: 120}}",
        "attr_cache: {timeout-sec: 7200}",
        f"azstorage: {{type: block, account-name: {acct}, container: {bucket}, mode: msi, "
        f"endpoint: 'https://{acct}.blob.core.windows.net'}}",
    ]) + "\n"


def mount_script(request: ProvisionRequest) -> list[str]:
    """The boot script's lines that install blobfuse2 and mount each container."""
    install = list(BLOBFUSE_INSTALL) + ["install -d -m 0700 /etc/skyplan"]
    for name in dict.fromkeys(str(b["name"]) for b in request.buckets):
        conf = f"/etc/skyplan/blobfuse2-{name}.yaml"
        install += [f"printf '%s' {shlex.quote(blobfuse_config(name))} > {conf}",
                    f"install -d -m 0700 /mnt/blobfuse2-cache/{name}"]

    def mount(b: dict, uid: str, gid: str) -> str:
        # The files are the login user's through default-permission: blobfuse2 has no uid option.
        return f"blobfuse2 mount {shlex.quote(b['dst'])} --config-file=/etc/skyplan/blobfuse2-{b['name']}.yaml"

    return bucket_lines(request, ADMIN_USER, install, mount)


def bucket_exists(name: str) -> bool:
    """Whether bucket ``name``'s container exists (in its account and group)."""
    from pulumi_azure_native import storage

    try:
        storage.get_blob_container(account_name=account_name(name), container_name=name,
                                   resource_group_name=bucket_group(name))
    except Exception:  # noqa: BLE001 - not found (or not visible): the program creates it
        return False
    return True


def declare_buckets(request: ProvisionRequest, tags: dict[str, str]) -> list[tuple[str, Any]]:
    """The buckets (created or attached): (name, its storage account's id) each."""
    import pulumi
    from pulumi_azure_native import authorization, resources, storage

    if not request.buckets:
        return []
    sub = authorization.get_client_config_output().subscription_id
    out: list[tuple[str, Any]] = []
    made = []
    owners = bucket_owners(request)
    for name in dict.fromkeys(str(b["name"]) for b in request.buckets):
        acct, group = account_name(name), bucket_group(name)
        scope: Any = sub.apply(lambda s, g=group, a=acct: f"/subscriptions/{s}/resourceGroups/{g}/providers/"
                                                          f"Microsoft.Storage/storageAccounts/{a}")
        if not bucket_exists(name):
            keep = pulumi.ResourceOptions(retain_on_delete=True)
            owned = {**tags, OWNER_TAG: owners[name], "skyplan-bucket": name}
            rg = resources.ResourceGroup(f"bucket-{name}-rg", resource_group_name=group, location=request.region,
                                         tags=owned, opts=keep)
            if owners[name]:  # made for a managed job: its end deletes its group (skyplan.clouds.buckets)
                rg.id.apply(lambda rg_id, name=name, owned=owned: record_cloud_bucket(
                    "azure", name, owners[name], id=rg_id, group=bucket_group(name), location=request.region,
                    tags=owned))
            account = storage.StorageAccount(
                f"bucket-{name}-account", account_name=acct, resource_group_name=rg.name, location=request.region,
                kind="StorageV2", sku=storage.SkuArgs(name="Standard_LRS"), allow_blob_public_access=False,
                minimum_tls_version="TLS1_2", tags=owned, opts=keep)
            storage.BlobContainer(f"bucket-{name}", container_name=name, account_name=account.name,
                                  resource_group_name=rg.name, public_access="None", opts=keep)
            scope = account.id
            made.append(name)
        out.append((name, scope))
    pulumi.export("buckets", [{**dict(b), "store": "azure", "created": b["name"] in made} for b in request.buckets])
    return out


def grant_buckets(request: ProvisionRequest, vm: Any, name: str, buckets: list[tuple[str, Any]]) -> None:
    """Storage Blob Data Contributor for the VM's identity on each bucket's account."""
    from pulumi_azure_native import authorization

    if not buckets:
        return
    sub = authorization.get_client_config_output().subscription_id
    for bucket, scope in buckets:
        authorization.RoleAssignment(
            f"{name}-{bucket}-blob",
            # A GUID, the same for the same stack, node and bucket (an update keeps it).
            role_assignment_name=str(uuid.uuid5(uuid.NAMESPACE_URL, f"skyplan:{request.stack}:{name}:{bucket}")),
            principal_id=vm.identity.apply(lambda i: i.principal_id if i else None),
            principal_type="ServicePrincipal",
            role_definition_id=sub.apply(lambda s: f"/subscriptions/{s}/providers/Microsoft.Authorization/"
                                                   f"roleDefinitions/{BLOB_CONTRIBUTOR}"),
            scope=scope,
        )


def spot_settings(request: ProvisionRequest) -> dict[str, Any]:
    """Priority, eviction policy and billing: Spot VMs are deleted on eviction, never evicted for price."""
    if not request.use_spot:
        return {"priority": "Regular"}
    return {"priority": "Spot", "eviction_policy": "Delete", "billing_profile": {"max_price": -1}}


def adopt_bucket(record: dict[str, Any], *, adopt: bool) -> None:
    """The program of a bucket's release (``skyplan.clouds.buckets.release_cloud_buckets``):
    the resource group a job's run created for the bucket, imported as it was made
    (``adopt``); destroying the stack deletes the group, its account and container."""
    import pulumi
    from pulumi_azure_native import resources

    name = str(record["name"])
    resources.ResourceGroup(f"bucket-{name}-rg", resource_group_name=record["group"], location=record["location"],
                            tags=dict(record.get("tags") or {}),
                            opts=pulumi.ResourceOptions(import_=record["id"] if adopt else None))


def build(request: ProvisionRequest) -> None:
    """Declare the placement's resources in the current Pulumi program."""
    import pulumi
    from pulumi_azure_native import compute, network, resources

    loc = request.region
    tags = skyplan_labels(request)
    zone = zone_number(request.zone)
    zones = [zone] if zone else None
    stack = node_name(request, 0)[: -len("-0")]

    group = resources.ResourceGroup(f"{stack}-rg", resource_group_name=f"skyplan-{stack}", location=loc, tags=tags)
    nsg = network.NetworkSecurityGroup(
        f"{stack}-nsg",
        network_security_group_name=f"{stack}-nsg",
        resource_group_name=group.name,
        location=loc,
        security_rules=[
            network.SecurityRuleArgs(
                name=f"skyplan-tcp-{port}",
                priority=1000 + i,
                direction="Inbound",
                access="Allow",
                protocol="Tcp",
                source_address_prefix="*",
                source_port_range="*",
                destination_address_prefix="*",
                destination_port_range=str(port),
            )
            for i, port in enumerate(all_ports(request))
        ],
        tags=tags,
    )
    vnet = network.VirtualNetwork(
        f"{stack}-vnet",
        virtual_network_name=f"{stack}-vnet",
        resource_group_name=group.name,
        location=loc,
        address_space=network.AddressSpaceArgs(address_prefixes=["10.0.0.0/16"]),
        tags=tags,
    )
    subnet = network.Subnet(
        f"{stack}-subnet",
        subnet_name="default",
        resource_group_name=group.name,
        virtual_network_name=vnet.name,
        address_prefix="10.0.0.0/24",
        network_security_group=network.NetworkSecurityGroupArgs(id=nsg.id),
    )

    login = compute.LinuxConfigurationArgs(
        disable_password_authentication=True,
        ssh=compute.SshConfigurationArgs(
            public_keys=[compute.SshPublicKeyArgs(key_data=authorized_key(request),
                                                  path=f"/home/{ADMIN_USER}/.ssh/authorized_keys")]
        ),
    )

    buckets = declare_buckets(request, tags)
    vms = []
    ips = []
    nics = []
    for rank in range(max(1, int(request.num_nodes))):
        name = node_name(request, rank)
        ip = network.PublicIPAddress(
            f"{name}-ip",
            public_ip_address_name=f"{name}-ip",
            resource_group_name=group.name,
            location=loc,
            sku=network.PublicIPAddressSkuArgs(name="Standard"),
            public_ip_allocation_method="Static",
            zones=zones,
            tags=tags,
        )
        nic = network.NetworkInterface(
            f"{name}-nic",
            network_interface_name=f"{name}-nic",
            resource_group_name=group.name,
            location=loc,
            ip_configurations=[
                network.NetworkInterfaceIPConfigurationArgs(
                    name="ipconfig1",
                    subnet=network.SubnetArgs(id=subnet.id),
                    public_ip_address=network.PublicIPAddressArgs(id=ip.id),
                    private_ip_allocation_method="Dynamic",
                )
            ],
            tags=tags,
        )
        spot = spot_settings(request)
        if "billing_profile" in spot:
            spot["billing_profile"] = compute.BillingProfileArgs(**spot["billing_profile"])
        vms.append(
            compute.VirtualMachine(
                name,
                vm_name=name[:64],
                resource_group_name=group.name,
                location=loc,
                zones=zones,
                hardware_profile=compute.HardwareProfileArgs(vm_size=request.instance_type),
                storage_profile=compute.StorageProfileArgs(
                    image_reference=compute.ImageReferenceArgs(
                        publisher=IMAGE_PUBLISHER, offer=IMAGE_OFFER, sku=image_sku(request.instance_type),
                        version="latest",
                    ),
                    os_disk=compute.OSDiskArgs(
                        create_option="FromImage",
                        delete_option="Delete",
                        disk_size_gb=request.disk_size or DEFAULT_DISK_GB,
                        managed_disk=compute.ManagedDiskParametersArgs(storage_account_type="StandardSSD_LRS"),
                    ),
                ),
                os_profile=compute.OSProfileArgs(
                    computer_name=name[:64], admin_username=ADMIN_USER, custom_data=custom_data(request, rank),
                    linux_configuration=login,
                ),
                network_profile=compute.NetworkProfileArgs(
                    network_interfaces=[compute.NetworkInterfaceReferenceArgs(id=nic.id, primary=True, delete_option="Delete")]
                ),
                tags={**tags, "skyplan-node-rank": str(rank)},
                # Its own identity reaches the task's buckets (grant_buckets), and nothing else.
                identity=compute.VirtualMachineIdentityArgs(type="SystemAssigned") if buckets else None,
                **spot,
            )
        )
        grant_buckets(request, vms[-1], name, buckets)
        ips.append(ip)
        nics.append(nic)

    pulumi.export("cloud", "azure")
    pulumi.export("region", request.region)
    pulumi.export("zone", request.zone)
    pulumi.export("instance_type", request.instance_type)
    pulumi.export("resource_group", group.name)
    pulumi.export("vm_ids", [v.id for v in vms])
    pulumi.export("public_ips", [ip.ip_address for ip in ips])
    pulumi.export("private_ips", [nic.ip_configurations.apply(lambda c: c[0].private_ip_address if c else None)
                                  for nic in nics])
    # How the node runtime reaches each node (skyplan.clouds.vmnodes).
    pulumi.export("ssh_user", SSH_USER)
    pulumi.export("ssh_port", SSH_PORT)
    pulumi.export("cluster", request.cluster)
    pulumi.export("stack", request.stack)
