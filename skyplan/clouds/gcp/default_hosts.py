"""The smallest N1 host a GPU is attached to when the task does not size the host.

N1 takes a T4, V100, P100 or P4 on any host up to a maximum (``hosts.N1_LIMITS``),
down to ``n1-standard-1``. One T4 on 1 vCPU and 3.75 GB is cheaper than every
other cloud's T4 only because it is a different machine, one nobody would run a
GPU job on. So when a task gives neither ``cpus`` nor ``memory`` (nor an
``instance_type``), an N1 host must offer at least the vCPUs that the other
clouds pair with that GPU and count, and at least ``MIN_GIB_PER_VCPU`` GiB of
memory for each of those vCPUs: T4:1 needs 4 vCPUs and 16 GiB, V100:1 needs 8
vCPUs and 32 GiB.

The catalog build applies the rule (``catalog.py`` marks the smaller pairs
``Offer.undersized``); the planner drops marked offers unless the task sizes the
host itself. An explicit ``cpus``, ``memory`` or ``instance_type`` still allows a
smaller host.
"""

from __future__ import annotations

#: Memory a default host offers per required vCPU (AWS g4dn and Azure NCas_T4_v3
#: hosts offer 4 and 7 GiB per vCPU; GCP's n1-standard offers 3.75).
MIN_GIB_PER_VCPU = 4.0

# (accelerator, count) -> vCPUs a default N1 host must have. For each pair: the
# larger of the smallest hosts AWS and Azure pair with that GPU and count in the
# embedded catalog (skyplan/catalog/seed/aws_vms.csv and azure_vms.csv), so that
# no other cloud's smallest host is bigger. Only the counts N1 attaches
# (hosts.N1_LIMITS) are listed: N1 takes no T4, P100 or P4 in eights.
N1_DEFAULT_MIN_VCPUS: dict[tuple[str, int], int] = {
    # AWS g4dn.xlarge: 4 vCPUs, 16 GiB. Azure Standard_NC4as_T4_v3: 4 vCPUs, 28 GiB.
    ("T4", 1): 4,
    # Neither AWS nor Azure sells 2 x T4 (AWS g4dn jumps from 1 to 4 GPUs, Azure
    # NCas_T4_v3 too): twice the one-GPU host.
    ("T4", 2): 8,
    # AWS g4dn.12xlarge: 48 vCPUs. Azure Standard_NC64as_T4_v3: 64 vCPUs.
    ("T4", 4): 64,
    # AWS p3.2xlarge: 8 vCPUs. Azure Standard_NC6s_v3: 6 vCPUs.
    ("V100", 1): 8,
    # Azure Standard_NC12s_v3: 12 vCPUs. AWS has no 2 x V100 type (p3 has 1, 4, 8).
    ("V100", 2): 12,
    # AWS p3.8xlarge: 32 vCPUs. Azure Standard_NC24s_v3 and NC24rs_v3: 24 vCPUs.
    ("V100", 4): 32,
    # AWS p3.16xlarge: 64 vCPUs. (Azure's 8-GPU V100 host, Standard_ND40rs_v2,
    # carries V100-32GB, another accelerator.)
    ("V100", 8): 64,
    # P100: AWS never sold it and the catalog has no Azure row for it. Azure's
    # NCv2 series (retired in 2023) paired it as Standard_NC6s_v2, NC12s_v2 and
    # NC24s_v2: 6, 12 and 24 vCPUs for 1, 2 and 4 GPUs (Azure docs, "NCv2-series").
    ("P100", 1): 6,
    ("P100", 2): 12,
    ("P100", 4): 24,
    # P4: no other cloud sells it. It is the T4's predecessor in the same 75 W
    # inference slot, so the T4 figures apply.
    ("P4", 1): 4,
    ("P4", 2): 8,
    ("P4", 4): 64,
}


def min_host(accelerator: str, count: float) -> tuple[int, float] | None:
    """(vCPUs, memory GiB) a default host needs for ``count`` x ``accelerator``,
    or None when no minimum applies."""
    need = N1_DEFAULT_MIN_VCPUS.get((accelerator, int(count)))
    if need is None or float(count) != int(count):
        return None
    return need, need * MIN_GIB_PER_VCPU


def default_host_ok(accelerator: str, count: float, vcpus: float, memory_gib: float) -> bool:
    """True when a host of this size may carry the GPUs for a task that does not size its host."""
    need = min_host(accelerator, count)
    if need is None:
        return True
    min_vcpus, min_mem = need
    return vcpus >= min_vcpus and memory_gib >= min_mem
