"""Which GCP host machine types carry which GPUs: the rules, as data.

GCP bills a GPU on top of the VM it is attached to, so an accelerator offer is
a (host VM, GPU) pair in one zone. Source for every row below: Compute Engine
"GPU machine types", https://cloud.google.com/compute/docs/gpus (the
accelerator-optimized A2/A3/A4/G2 tables, and the N1 tables giving the maximum
vCPUs and memory per GPU model and count). The N1 limits agree with the table
SkyPilot keeps for the same page.
"""

from __future__ import annotations

# (accelerator, count) -> host machine types that come with exactly that GPU
# set attached. Only pairs whose host *and* GPU rows exist in the same zone of
# the catalog become offers; the catalog decides which of these exist.
ACCELERATOR_OPTIMIZED: dict[tuple[str, int], tuple[str, ...]] = {
    # A2 Standard (A100 40GB)
    ("A100", 1): ("a2-highgpu-1g",),
    ("A100", 2): ("a2-highgpu-2g",),
    ("A100", 4): ("a2-highgpu-4g",),
    ("A100", 8): ("a2-highgpu-8g",),
    ("A100", 16): ("a2-megagpu-16g",),
    # A2 Ultra (A100 80GB)
    ("A100-80GB", 1): ("a2-ultragpu-1g",),
    ("A100-80GB", 2): ("a2-ultragpu-2g",),
    ("A100-80GB", 4): ("a2-ultragpu-4g",),
    ("A100-80GB", 8): ("a2-ultragpu-8g",),
    # A3 High / A3 Edge (H100 80GB). The -nolssd variant is the same machine
    # without bundled Local SSD; the catalog lists it with its own price.
    ("H100", 1): ("a3-highgpu-1g",),
    ("H100", 2): ("a3-highgpu-2g",),
    ("H100", 4): ("a3-highgpu-4g",),
    ("H100", 8): ("a3-highgpu-8g", "a3-edgegpu-8g", "a3-edgegpu-8g-nolssd"),
    # A3 Mega (H100 80GB Mega)
    ("H100-MEGA", 8): ("a3-megagpu-8g",),
    # A3 Ultra (H200)
    ("H200", 8): ("a3-ultragpu-8g", "a3-ultragpu-8g-nolssd"),
    # A4 (B200)
    ("B200", 8): ("a4-highgpu-8g",),
    # G2 (L4): 1 GPU comes with 4, 8, 12, 16 or 32 vCPUs.
    ("L4", 1): ("g2-standard-4", "g2-standard-8", "g2-standard-12", "g2-standard-16", "g2-standard-32"),
    ("L4", 2): ("g2-standard-24",),
    ("L4", 4): ("g2-standard-48",),
    ("L4", 8): ("g2-standard-96",),
}

# Machine-type prefixes of the accelerator-optimized families: their VMs cannot
# run without their GPUs, so they are never offered as CPU-only machines.
GPU_ONLY_FAMILIES: tuple[str, ...] = ("a2-", "a3-", "a4-", "g2-")

# N1 machine types a GPU can be attached to (shared-core f1/g1 excluded).
N1_HOST_PREFIXES: tuple[str, ...] = ("n1-standard-", "n1-highmem-", "n1-highcpu-")

# (accelerator, count) -> (max vCPUs, max memory GB) of an N1 host.
# P100 x4 is documented as 96 vCPUs except in us-east1-c, europe-west1-b and
# europe-west1-d (64); we use 64 everywhere so no zone is over-promised.
N1_LIMITS: dict[tuple[str, int], tuple[int, float]] = {
    ("T4", 1): (48, 312),
    ("T4", 2): (48, 312),
    ("T4", 4): (96, 624),
    ("V100", 1): (12, 78),
    ("V100", 2): (24, 156),
    ("V100", 4): (48, 312),
    ("V100", 8): (96, 624),
    ("P100", 1): (16, 104),
    ("P100", 2): (32, 208),
    ("P100", 4): (64, 624),
    ("P4", 1): (24, 156),
    ("P4", 2): (48, 312),
    ("P4", 4): (96, 624),
}


def is_gpu_only_host(machine_type: str) -> bool:
    return machine_type.startswith(GPU_ONLY_FAMILIES)


def n1_host_fits(machine_type: str, vcpus: float, memory_gib: float, accelerator: str, count: int) -> bool:
    """True when an N1 host of this size may carry ``count`` x ``accelerator``."""
    if not machine_type.startswith(N1_HOST_PREFIXES):
        return False
    limit = N1_LIMITS.get((accelerator, count))
    if limit is None:
        return False
    max_vcpus, max_mem = limit
    return vcpus <= max_vcpus and memory_gib <= max_mem
