"""What a cluster offers: its live nodes, and the Karpenter NodePools that can grow.

A node is an offer when a workload of its flavor can ask for it (``flavors.py``):
a spot node matches the flavor's spot selectors and its taints are tolerated by
the spot tolerations; an on-demand node matches the on-demand selectors and has
no taint a task's pod would not tolerate; nodes that are cordoned or not Ready
are left out. Nodes of one shape (instance type, or cpus/memory/GPUs when the
node has no instance-type label) make one offer, with a spot price when some
are spot and an on-demand price when some are on-demand. A node with N GPUs
offers 1, 2, 4, ... N of them (a pod asks for some of a node's GPUs).

Prices: the VM catalog's price of the node's ``node.kubernetes.io/instance-type``
(in the node's ``topology.kubernetes.io/region`` when the catalog has it there,
else the lowest), else the cluster's ``price``/``spot_price`` from the config
file, else 0.

Karpenter NodePools (``karpenter.sh/v1``: EKS Karpenter, AKS node
auto-provisioning) whose requirements list instance types give one offer per
instance type, shaped and priced by the catalog; a placement there waits for a
node to be provisioned (``pool_types``).

Results are cached per cluster for ``SKYPLAN_K8S_OFFERS_TTL`` seconds (default
60) under ``<home>/cache/kubernetes/``: a plan does not reach every cluster
again. A cluster that cannot be read gives no offers; ``problems()`` says why.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Iterable

from skyplan.clouds.kubernetes.flavors import (
    GPU_RESOURCE, INSTANCE_TYPE_LABEL, KARPENTER_CAPACITY, Flavor, flavor,
)

if TYPE_CHECKING:
    from skyplan.catalog.model import Offer
    from skyplan.clouds.kubernetes.config import Cluster

CLOUD = "kubernetes"
REGION_LABEL = "topology.kubernetes.io/region"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
#: The accelerator name of a node whose GPU model no label tells.
UNKNOWN_GPU = "GPU"
DEFAULT_TTL = 60.0
#: The VM catalog cloud whose instance types a flavor's NodePools name.
CATALOG_CLOUD = {"eks": "aws", "aks": "azure", "gke": "gcp"}

_problems: dict[str, str] = {}


def problems() -> dict[str, str]:
    """Cluster name -> why it gave no offers, for clusters read in this process."""
    return dict(_problems)


# --- reading a cluster -------------------------------------------------------------------------------


def cluster_offers(cluster: Cluster, *, use_cache: bool = True) -> tuple[Offer, ...]:
    """The offers of one cluster (cached); () when it cannot be read (see ``problems``)."""
    from skyplan.catalog.model import Offer

    data = _cached(cluster) if use_cache else None
    if data is None:
        try:
            data = read_cluster(cluster)
        except Exception as exc:  # an unreachable cluster must not stop a plan that has others
            from skyplan.clouds.kubernetes.client import describe

            _problems[cluster.name] = describe(exc)
            return ()
        _store(cluster, data)
    _problems.pop(cluster.name, None)
    return tuple(Offer(**o) for o in data["offers"])


def pool_types(cluster: Cluster) -> frozenset[str]:
    """Instance types that only a NodePool offers (no live node has them yet)."""
    data = _cached(cluster)
    if data is None:
        cluster_offers(cluster)
        data = _cached(cluster) or {"pool_types": []}
    return frozenset(data.get("pool_types") or ())


def read_cluster(cluster: Cluster) -> dict[str, Any]:
    """Read nodes and NodePools through the API; JSON-able ``{"offers", "pool_types"}``."""
    from skyplan.clouds.kubernetes import client

    api = client.api_client(cluster.kubeconfig, cluster.context)
    try:
        nodes = [_node_dict(n) for n in client.list_nodes(api)]
        pools = client.list_nodepools(api)
    finally:
        api.close()
    return offers_from(cluster, nodes, pools)


def _node_dict(node: dict[str, Any]) -> dict[str, Any]:
    """The fields discovery reads of a Node (the API's JSON)."""
    meta, spec, st = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    return {
        "name": meta.get("name"),
        "labels": dict(meta.get("labels") or {}),
        "taints": [{"key": t.get("key"), "value": t.get("value"), "effect": t.get("effect")}
                   for t in (spec.get("taints") or [])],
        "unschedulable": bool(spec.get("unschedulable")),
        "ready": any(c.get("type") == "Ready" and c.get("status") == "True" for c in (st.get("conditions") or [])),
        "allocatable": dict(st.get("allocatable") or {}),
    }


# --- pure: nodes and pools -> offers ---------------------------------------------------------------


def offers_from(cluster: Cluster, nodes: Iterable[dict[str, Any]], pools: Iterable[dict[str, Any]] = (),
                catalog: Any = None) -> dict[str, Any]:
    """Offers (as dicts of ``Offer`` fields) from node and NodePool dicts."""
    fl = flavor(cluster.flavor)
    shapes: dict[tuple, dict[str, Any]] = {}
    for n in nodes:
        market = node_market(fl, n)
        if market is None:
            continue
        labels = n.get("labels") or {}
        alloc = n.get("allocatable") or {}
        cpus = cpu_cores(alloc.get("cpu", "0"))
        mem = memory_gib(alloc.get("memory", "0"))
        gpus = int(cpu_cores(alloc.get(GPU_RESOURCE, "0")))
        accel = gpu_name(fl, labels) if gpus else None
        itype = labels.get(INSTANCE_TYPE_LABEL)
        name = itype or synthetic_type(cpus, mem, gpus)
        key = (name, cpus, mem, accel, gpus)
        shape = shapes.setdefault(key, {"instance_type": name, "known_type": bool(itype), "vcpus": cpus,
                                        "memory_gib": mem, "accelerator": accel, "gpus": gpus,
                                        "markets": set(), "region": labels.get(REGION_LABEL)})
        shape["markets"].add(market)
    offers: list[dict[str, Any]] = []
    for shape in shapes.values():
        on_demand, spot = _prices(cluster, shape["instance_type"] if shape["known_type"] else None,
                                  shape["region"], catalog)
        for count in gpu_counts(shape["gpus"]):
            offers.append(_offer(cluster, shape, count,
                                 on_demand if "on-demand" in shape["markets"] else None,
                                 spot if "spot" in shape["markets"] else None))
    live = {o["instance_type"] for o in offers}
    pool_only: set[str] = set()
    for pool in pools:
        for o in pool_offers(cluster, fl, pool, catalog):
            if o["instance_type"] in live:
                continue
            pool_only.add(o["instance_type"])
            offers.append(o)
    offers.sort(key=lambda o: (o["instance_type"], o["accelerator_count"]))
    return {"offers": offers, "pool_types": sorted(pool_only)}


def node_market(fl: Flavor, node: dict[str, Any]) -> str | None:
    """"spot", "on-demand", or None when no workload of this flavor can ask for the node."""
    if not node.get("ready", False) or node.get("unschedulable"):
        return None
    labels = node.get("labels") or {}
    taints = [t for t in (node.get("taints") or []) if t.get("effect") in ("NoSchedule", "NoExecute")]
    if fl.offers_spot and all(str(labels.get(k)) == v for k, v in fl.spot_selector.items()):
        if all(_tolerated(t, fl.spot_tolerations) for t in taints):
            return "spot"
        return None
    if fl.node_is_spot(labels):
        return None  # spot, but not as this flavor's selectors ask for it
    if all(str(labels.get(k)) == v for k, v in fl.on_demand_selector.items()) and not taints:
        return "on-demand"
    return None


def _tolerated(taint: dict[str, Any], tolerations: Iterable[dict[str, str]]) -> bool:
    for t in tolerations:
        if t.get("key") != taint.get("key"):
            continue
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        if t.get("operator", "Equal") == "Exists" or t.get("value") == (taint.get("value") or ""):
            return True
    return False


def gpu_name(fl: Flavor, labels: dict[str, str]) -> str:
    """A node's GPU model by its catalog name: the flavor's accelerator label, else
    ``nvidia.com/gpu.product`` (GPU feature discovery), else ``GPU``."""
    if fl.accelerator_label and labels.get(fl.accelerator_label):
        return fl.gpu_from_label(labels[fl.accelerator_label])
    product = labels.get(GPU_PRODUCT_LABEL)
    if product:
        # NVIDIA-A100-SXM4-80GB -> A100-80GB; Tesla-T4 -> T4; NVIDIA-L4 -> L4
        text = product.upper().replace("TESLA-", "").replace("NVIDIA-", "")
        model = text.split("-")[0]
        return f"{model}-80GB" if model in ("A100",) and "80GB" in text else model
    return UNKNOWN_GPU


def gpu_counts(gpus: int) -> list[int]:
    """The GPU counts a node with ``gpus`` offers: powers of two up to it, and itself."""
    if gpus <= 0:
        return [0]
    out, k = [], 1
    while k < gpus:
        out.append(k)
        k *= 2
    out.append(gpus)
    return out


def synthetic_type(cpus: float, mem: float, gpus: int) -> str:
    """A name for a node shape that has no instance-type label."""
    name = f"k8s-{_num(cpus)}cpu-{_num(mem)}gb"
    return f"{name}-{gpus}gpu" if gpus else name


def pool_offers(cluster: Cluster, fl: Flavor, pool: dict[str, Any], catalog: Any = None) -> list[dict[str, Any]]:
    """A NodePool's offers: one per instance type its requirements list, as the catalog knows it."""
    reqs = ((pool.get("spec") or {}).get("template") or {}).get("spec", {}).get("requirements") or []
    wanted: dict[str, list[str]] = {}
    for r in reqs:
        if r.get("operator") == "In" and r.get("key"):
            wanted[r["key"]] = [str(v) for v in (r.get("values") or [])]
    types = wanted.get(INSTANCE_TYPE_LABEL) or []
    markets = set(wanted.get(KARPENTER_CAPACITY) or ["on-demand"])
    regions = wanted.get(REGION_LABEL) or []
    cloud = CATALOG_CLOUD.get(fl.name)
    if not types or cloud is None:
        return []
    cat = catalog if catalog is not None else _catalog()
    out: list[dict[str, Any]] = []
    for itype in types:
        rows = cat.offers(clouds=[cloud], instance_type=itype)
        if regions:
            rows = [o for o in rows if o.region in regions] or rows
        if not rows:
            continue
        row = rows[0]
        on_demand = _lowest(o.price for o in rows)
        spot = _lowest(o.spot_price for o in rows)
        shape = {"instance_type": itype, "vcpus": row.vcpus, "memory_gib": row.memory_gib,
                 "accelerator": row.accelerator, "gpus": int(row.accelerator_count or 0)}
        out.append(_offer(cluster, shape, shape["gpus"],
                          (on_demand if on_demand is not None else 0.0) if "on-demand" in markets else None,
                          (spot if spot is not None else 0.0) if "spot" in markets and fl.offers_spot else None))
    return out


def _offer(cluster: Cluster, shape: dict[str, Any], count: int, price: float | None,
           spot: float | None) -> dict[str, Any]:
    share = (count / shape["gpus"]) if shape["gpus"] else 1.0
    return {
        "cloud": CLOUD,
        "instance_type": shape["instance_type"],
        "region": cluster.name,
        "zone": None,
        "vcpus": float(shape["vcpus"]),
        "memory_gib": float(shape["memory_gib"]),
        "accelerator": shape["accelerator"] if count else None,
        "accelerator_count": float(count),
        # Part of a GPU node costs its part of the node.
        "price": None if price is None else round(price * share, 6),
        "spot_price": None if spot is None else round(spot * share, 6),
    }


def _prices(cluster: Cluster, itype: str | None, region: str | None, catalog: Any) -> tuple[float, float]:
    """(on-demand, spot) $/hr of one node."""
    if itype:
        cat = catalog if catalog is not None else _catalog()
        cloud = CATALOG_CLOUD.get(cluster.flavor)
        rows = cat.offers(clouds=[cloud] if cloud else None, instance_type=itype)
        if region:
            rows = [o for o in rows if o.region == region] or rows
        on_demand = _lowest(o.price for o in rows)
        spot = _lowest(o.spot_price for o in rows)
        if on_demand is not None or spot is not None:
            od = on_demand if on_demand is not None else (spot or 0.0)
            return od, spot if spot is not None else od
    od = cluster.price if cluster.price is not None else 0.0
    return od, cluster.spot_price if cluster.spot_price is not None else od


def _lowest(values: Iterable[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return min(got) if got else None


def _catalog() -> Any:
    from skyplan.catalog import load_catalog

    return load_catalog()


# --- quantities ---------------------------------------------------------------------------------------

_SUFFIX = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60,
           "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
           "P": 1e15, "E": 1e18}


def quantity(text: Any) -> float:
    """A Kubernetes quantity (``7910m``, ``32Gi``, ``1k``, ``1e3``) as a number."""
    m = re.fullmatch(r"\s*([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([A-Za-z]*)\s*", str(text))
    if not m or m.group(2) not in _SUFFIX:
        return 0.0
    return float(m.group(1)) * _SUFFIX[m.group(2)]


def cpu_cores(text: Any) -> float:
    return round(quantity(text), 3)


def memory_gib(text: Any) -> float:
    return round(quantity(text) / 2 ** 30, 2)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


# --- the cache -------------------------------------------------------------------------------------------


def _ttl() -> float:
    try:
        return float(os.environ.get("SKYPLAN_K8S_OFFERS_TTL", DEFAULT_TTL))
    except ValueError:
        return DEFAULT_TTL


def _cache_file(cluster: Cluster):
    from skyplan import home

    key = hashlib.sha256(json.dumps(asdict(cluster), sort_keys=True).encode()).hexdigest()[:16]
    return home.home_path() / "cache" / "kubernetes" / f"{cluster.name}-{key}.json"


def _cached(cluster: Cluster) -> dict[str, Any] | None:
    ttl = _ttl()
    if ttl <= 0:
        return None
    try:
        data = json.loads(_cache_file(cluster).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or time.time() - float(data.get("at", 0)) > ttl:
        return None
    return data


def _store(cluster: Cluster, data: dict[str, Any]) -> None:
    from skyplan import home

    if _ttl() <= 0:
        return
    try:
        path = _cache_file(cluster)
        home.sub("cache", "kubernetes")
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({**data, "at": time.time()}))
        os.replace(tmp, path)
    except OSError:
        pass  # a cache that cannot be written only costs a re-read
