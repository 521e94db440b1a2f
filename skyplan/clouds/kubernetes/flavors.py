"""What each kind of cluster (``flavor``) asks of a workload, as data (seed 004).

A flavor says how a pod asks for spot or on-demand capacity (node selectors
and tolerations), how it asks for a GPU model (the accelerator label and the
label's spelling of each catalog GPU), which node label tells a node's
capacity type (discovery), which CSI driver mounts which bucket store, and
which workload kind it runs by default. Pure data; no Kubernetes client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Workload kinds (``operator``): the JobSet API, KubeRay's RayJob, a plain batch/v1 Job.
OPERATORS = ("jobset", "kuberay", "batch")
FLAVORS_ORDER = ("eks", "aks", "gke", "generic")

#: The node label cloud node pools and Karpenter set to the cloud's instance type.
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
KARPENTER_CAPACITY = "karpenter.sh/capacity-type"
GKE_SPOT = "cloud.google.com/gke-spot"
GKE_PROVISIONING = "cloud.google.com/gke-provisioning"
GKE_PREEMPTIBLE = "cloud.google.com/gke-preemptible"
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class Csi:
    """How a flavor mounts one bucket store: a CSI driver, inline in the pod or
    through a PersistentVolume (drivers without inline volumes, e.g. Mountpoint for S3)."""

    driver: str
    bucket_attribute: str  # the volume attribute that names the bucket
    inline: bool = True
    pod_annotations: tuple[tuple[str, str], ...] = ()
    extra_attributes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Flavor:
    name: str
    operator: str  # the default workload kind
    #: Node selectors of a spot pod, and of an on-demand pod.
    spot_selector: dict[str, str] = field(default_factory=dict)
    on_demand_selector: dict[str, str] = field(default_factory=dict)
    #: Tolerations a spot pod needs (GKE taints its spot nodes).
    spot_tolerations: tuple[dict[str, str], ...] = ()
    #: Node labels (key, value) that mark a node as spot, for discovery; any of them.
    spot_node_labels: tuple[tuple[str, str], ...] = ()
    #: The node label that names the GPU model, and the label's spelling of catalog GPU names.
    accelerator_label: str | None = None
    gpu_names: dict[str, str] = field(default_factory=dict)
    #: Bucket store ("s3", "gcs", "azure") -> its CSI driver.
    csi: dict[str, Csi] = field(default_factory=dict)

    @property
    def offers_spot(self) -> bool:
        return bool(self.spot_selector)

    def gpu_label_value(self, accelerator: str) -> str | None:
        """The accelerator label's value for a catalog GPU name, when this flavor knows it."""
        for name, value in self.gpu_names.items():
            if name.lower() == accelerator.lower():
                return value
        return None

    def gpu_from_label(self, value: str) -> str:
        """The catalog name for a node's accelerator label value (unknown: the value itself)."""
        for name, spelled in self.gpu_names.items():
            if spelled == value:
                return name
        return value

    def node_is_spot(self, labels: dict[str, Any]) -> bool:
        return any(str(labels.get(k)) == v for k, v in self.spot_node_labels)


_KARPENTER_SPOT = {KARPENTER_CAPACITY: "spot"}
_KARPENTER_ON_DEMAND = {KARPENTER_CAPACITY: "on-demand"}

# Karpenter on AWS: karpenter.k8s.aws/instance-gpu-name is the lower-case GPU name.
_AWS_GPUS = {"A10G": "a10g", "T4": "t4", "A100": "a100", "A100-80GB": "a100", "H100": "h100", "L4": "l4",
             "L40S": "l40s", "V100": "v100", "K80": "k80", "T4G": "t4g", "H200": "h200"}
# AKS node auto-provisioning (Karpenter for Azure): karpenter.azure.com/sku-gpu-name.
_AZURE_GPUS = {"A100": "A100", "A100-80GB": "A100", "V100": "V100", "T4": "T4", "H100": "H100", "A10": "A10"}
# GKE: cloud.google.com/gke-accelerator.
_GKE_GPUS = {"T4": "nvidia-tesla-t4", "V100": "nvidia-tesla-v100", "P100": "nvidia-tesla-p100",
             "P4": "nvidia-tesla-p4", "K80": "nvidia-tesla-k80", "A100": "nvidia-tesla-a100",
             "A100-80GB": "nvidia-a100-80gb", "L4": "nvidia-l4", "H100": "nvidia-h100-80gb",
             "H100-MEGA": "nvidia-h100-mega-80gb", "H200": "nvidia-h200-141gb"}

FLAVORS: dict[str, Flavor] = {
    # EKS with Karpenter (seed 004): on-demand is asked for explicitly.
    "eks": Flavor(
        "eks", "jobset", dict(_KARPENTER_SPOT), dict(_KARPENTER_ON_DEMAND),
        spot_node_labels=((KARPENTER_CAPACITY, "spot"), ("eks.amazonaws.com/capacityType", "SPOT")),
        accelerator_label="karpenter.k8s.aws/instance-gpu-name", gpu_names=_AWS_GPUS,
        csi={"s3": Csi("s3.csi.aws.com", "bucketName", inline=False)},
    ),
    # AKS with Karpenter (node auto-provisioning): the same selectors (seed 004); AKS spot
    # node pools taint their nodes, so a spot pod tolerates that taint too.
    "aks": Flavor(
        "aks", "jobset", dict(_KARPENTER_SPOT), dict(_KARPENTER_ON_DEMAND),
        spot_tolerations=({"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot",
                           "effect": "NoSchedule"},),
        spot_node_labels=((KARPENTER_CAPACITY, "spot"), ("kubernetes.azure.com/scalesetpriority", "spot")),
        accelerator_label="karpenter.azure.com/sku-gpu-name", gpu_names=_AZURE_GPUS,
        csi={"azure": Csi("blob.csi.azure.com", "containerName")},
    ),
    # GKE (seed 004): both spot selectors and a toleration for the spot taint. On-demand
    # pods need no selector: without the toleration they cannot land on a spot node.
    "gke": Flavor(
        "gke", "jobset", {GKE_SPOT: "true", GKE_PROVISIONING: "spot"}, {},
        spot_tolerations=({"key": GKE_SPOT, "operator": "Equal", "value": "true", "effect": "NoSchedule"},),
        spot_node_labels=((GKE_SPOT, "true"), (GKE_PROVISIONING, "spot"), (GKE_PREEMPTIBLE, "true")),
        accelerator_label="cloud.google.com/gke-accelerator", gpu_names=_GKE_GPUS,
        csi={"gcs": Csi("gcsfuse.csi.storage.gke.io", "bucketName",
                        pod_annotations=(("gke-gcsfuse/volumes", "true"),))},
    ),
    # Any other cluster: no spot market it can be asked for, no CSI driver assumed, a plain Job.
    "generic": Flavor("generic", "batch"),
}


def flavor(name: str) -> Flavor:
    return FLAVORS[name]
