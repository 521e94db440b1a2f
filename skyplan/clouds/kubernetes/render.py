"""The pure renderer: one placement on a cluster -> plain Kubernetes manifests.

``Workload`` holds everything a workload needs (built from a ``ProvisionRequest``
by ``workload_for``); ``render`` returns the manifests to apply, in order: the
task's Secret (when it has secrets), the PersistentVolumes and claims of
bucket mounts that need them, a headless Service (a multi-node batch Job), and
the workload itself, one of
  * a JobSet (``jobset.x-k8s.io/v1alpha2``), ``num_nodes`` replicas of a one-pod Job;
  * a KubeRay RayJob (``ray.io/v1``) when the operator is ``kuberay``: a head and
    ``num_nodes - 1`` workers;
  * a ``batch/v1`` Job (the ``generic`` flavor's default): an Indexed Job of
    ``num_nodes`` pods.

Every object and pod carries ``skyplan.dev/cluster: <cluster>`` and
``skyplan.dev/stack: <stack>``. Spot or on-demand, GPUs and bucket mounts come
from the flavor (``flavors.py``, seed 004). The restart budgets keep the
meanings they have in managed jobs:
  * ``backoff_limit`` (seed 004): every failure, evictions included, spends it:
    the Job's ``backoffLimit``, the JobSet's ``failurePolicy.maxRestarts``, the
    RayJob's ``backoffLimit``;
  * ``max_restarts_on_errors``: the user's failures only. A Job ignores pods that
    failed with the ``DisruptionTarget`` condition (evicted, preempted, their node
    gone: ``podFailurePolicy`` action ``Ignore``) and its ``backoffLimit`` counts the
    rest; a JobSet's child Job fails at once on a disruption (``FailJob``), and the
    JobSet restarts it without counting (``RestartJobSetAndIgnoreMaxRestarts`` on the
    ``PodFailurePolicy`` reason) while other failures spend ``maxRestarts``. RayJob
    cannot tell them apart: its ``backoffLimit`` counts both.
  When both are given the stricter, ``backoff_limit``, decides; with neither,
  evictions restart for free and the first error of the task ends it (managed
  jobs' default of 0 restarts on errors).
No Kubernetes client here: manifests are plain dicts, so the program, the
mocks and the tests all see the same thing.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from skyplan.clouds.kubernetes.flavors import GPU_RESOURCE, INSTANCE_TYPE_LABEL, Flavor, flavor
from skyplan.errors import InputError

CLUSTER_LABEL = "skyplan.dev/cluster"
STACK_LABEL = "skyplan.dev/stack"
#: The config file's name of the Kubernetes cluster (the placement's region).
REGION_LABEL = "skyplan.dev/region"
MANAGED_BY = ("app.kubernetes.io/managed-by", "skyplan")
#: Set by the Job controller and JobSet on each pod: the pod's rank.
JOB_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
JOBSET_INDEX_ANNOTATION = "jobset.sigs.k8s.io/job-index"
JOBSET_API = "jobset.x-k8s.io/v1alpha2"
RAYJOB_API = "ray.io/v1"
#: The JobSet's one replicated job.
REPLICATED_JOB = "node"
#: A bucket claim's nominal size (CSI bucket drivers ignore it; the API wants one).
BUCKET_CLAIM_SIZE = "1200Gi"


class RenderError(InputError):
    """The task asks for something the cluster's flavor cannot express (exit 2)."""


@dataclass(frozen=True)
class Bucket:
    """A bucket mounted at ``dst`` (``mode: MOUNT``): ``store`` is s3, gcs or azure."""

    dst: str
    store: str
    bucket: str
    path: str = ""


@dataclass(frozen=True)
class Workload:
    name: str  # the workload's object name (DNS-1123, short enough for its pods' names)
    namespace: str
    cluster: str  # skyplan's cluster name (``skyplan.dev/cluster``)
    stack: str
    task_id: str
    flavor: str
    operator: str
    image: str
    num_nodes: int = 1
    use_spot: bool = False
    #: The cloud's instance type to select (a node label value), or None for any node.
    instance_type: str | None = None
    accelerator: tuple[str, int] | None = None
    cpus: float | None = None
    memory_gib: float | None = None
    envs: dict[str, str] = field(default_factory=dict)
    setup: str | None = None
    run: str | None = None
    #: The Secret holding the task's secrets (their names only: values never come here).
    secret_name: str | None = None
    secret_names: tuple[str, ...] = ()
    backoff_limit: int | None = None
    max_restarts_on_errors: int | None = None
    buckets: tuple[Bucket, ...] = ()
    #: The Kubernetes cluster's name in the config file (``skyplan.dev/region``).
    region: str = ""


def object_name(stack: str, limit: int = 40) -> str:
    """A DNS-1123 name for a stack's objects: short enough that JobSet's pod names
    (``<name>-node-<i>-<j>-<suffix>``) stay within 63 characters."""
    name = re.sub(r"[^a-z0-9-]+", "-", stack.lower()).strip("-")[:limit].strip("-")
    return name or "skyplan"


def label_value(text: str) -> str:
    """``text`` as a label value (63 characters of [A-Za-z0-9_.-], alphanumeric at both ends)."""
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:63].strip("-_.")
    return value


def labels(w: Workload) -> dict[str, str]:
    out = {CLUSTER_LABEL: label_value(w.cluster), STACK_LABEL: label_value(w.stack), MANAGED_BY[0]: MANAGED_BY[1]}
    if w.region:
        out[REGION_LABEL] = label_value(w.region)
    return out


def render(w: Workload, *, with_secret: bool = True) -> list[dict[str, Any]]:
    """The manifests of ``w``, in the order they are applied. The Secret (when the
    task has secrets) carries their names with empty values: its data is filled in
    by the caller (``secret_manifest``), never by the renderer."""
    fl = flavor(w.flavor)
    out: list[dict[str, Any]] = []
    if with_secret and w.secret_name:
        out.append(secret_manifest(w, {n: "" for n in w.secret_names}))
    volumes, mounts, annotations, extra = _buckets(w, fl)
    out.extend(extra)
    if w.operator == "batch" and w.num_nodes > 1:
        out.append(_service(w))
    pod = _pod(w, fl, volumes, mounts, annotations)
    if w.operator == "jobset":
        out.append(_jobset(w, pod))
    elif w.operator == "kuberay":
        out.append(_rayjob(w, fl, volumes, mounts, annotations))
    else:
        out.append(_job(w, pod))
    return out


def secret_manifest(w: Workload, values: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": w.secret_name, "namespace": w.namespace, "labels": labels(w)},
            "stringData": dict(values)}


# --- the pod --------------------------------------------------------------------------------------


def script(w: Workload) -> str:
    """The container's bash script: setup (stopping at its first error), then run."""
    parts = []
    if w.setup:
        parts += ["set -e", w.setup, "set +e"]
    parts.append(w.run or "true")
    return "\n".join(parts)


def node_hosts(w: Workload) -> list[str]:
    """The pods' DNS names by rank (what ``SKYPLAN_NODE_IPS`` lists), from the
    headless Service JobSet makes, or the batch Job's own."""
    if w.operator == "jobset":
        return [f"{w.name}-{REPLICATED_JOB}-{i}-0.{w.name}" for i in range(w.num_nodes)]
    if w.operator == "batch":
        return [f"{w.name}-{i}.{w.name}" for i in range(w.num_nodes)] if w.num_nodes > 1 else []
    return []


def _env(w: Workload) -> list[dict[str, Any]]:
    env = [{"name": k, "value": str(v)} for k, v in sorted(w.envs.items()) if k != "SKYPLAN_TASK_ID"]
    env += [
        # A managed job's task keeps its id across recoveries: it comes in as an env (as on every cloud).
        {"name": "SKYPLAN_TASK_ID", "value": str(w.envs.get("SKYPLAN_TASK_ID") or w.task_id)},
        {"name": "SKYPLAN_CLUSTER", "value": w.cluster},
        {"name": "SKYPLAN_NUM_NODES", "value": str(w.num_nodes)},
    ]
    index = {"jobset": JOBSET_INDEX_ANNOTATION, "batch": JOB_INDEX_ANNOTATION}.get(w.operator)
    if index:
        env.append({"name": "SKYPLAN_NODE_RANK",
                    "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{index}']"}}})
    else:
        env.append({"name": "SKYPLAN_NODE_RANK", "value": "0"})
    hosts = node_hosts(w)
    if hosts:
        env.append({"name": "SKYPLAN_NODE_IPS", "value": "\n".join(hosts)})
    return env


def _selectors(w: Workload, fl: Flavor) -> tuple[dict[str, str], list[dict[str, str]]]:
    if w.use_spot and not fl.offers_spot:
        raise RenderError(f"KubeSpotUnsupported: the {fl.name} flavor of cluster '{w.cluster}' has no spot "
                          "capacity to ask for", hint="drop use_spot for this cluster, or give it a flavor with spot")
    selector = dict(fl.spot_selector if w.use_spot else fl.on_demand_selector)
    tolerations = [dict(t) for t in fl.spot_tolerations] if w.use_spot else []
    if w.instance_type:
        selector[INSTANCE_TYPE_LABEL] = w.instance_type
    if w.accelerator and fl.accelerator_label:
        value = fl.gpu_label_value(w.accelerator[0])
        if value:
            selector[fl.accelerator_label] = value
    return selector, tolerations


def _resources(w: Workload) -> dict[str, Any]:
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if w.cpus:
        requests["cpu"] = _num(w.cpus)
    if w.memory_gib:
        requests["memory"] = f"{_num(w.memory_gib)}Gi"
    if w.accelerator:
        # Extended resources are asked for as limits (requests default to them).
        limits[GPU_RESOURCE] = str(int(w.accelerator[1]))
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def _container(w: Workload, mounts: list[dict[str, Any]], name: str = "task",
               command: bool = True) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "image": w.image, "env": _env(w)}
    if command:
        c["command"] = ["bash", "-c", script(w)]
    if w.secret_name:
        c["envFrom"] = [{"secretRef": {"name": w.secret_name}}]
    res = _resources(w)
    if res:
        c["resources"] = res
    if mounts:
        c["volumeMounts"] = mounts
    return c


def _pod(w: Workload, fl: Flavor, volumes: list[dict[str, Any]], mounts: list[dict[str, Any]],
         annotations: dict[str, str], *, container: str = "task", command: bool = True,
         restart: str = "Never") -> dict[str, Any]:
    selector, tolerations = _selectors(w, fl)
    spec: dict[str, Any] = {"restartPolicy": restart, "containers": [_container(w, mounts, container, command)]}
    if selector:
        spec["nodeSelector"] = selector
    if tolerations:
        spec["tolerations"] = tolerations
    if volumes:
        spec["volumes"] = volumes
    if w.operator == "batch" and w.num_nodes > 1:
        spec["subdomain"] = w.name
    meta: dict[str, Any] = {"labels": labels(w)}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"metadata": meta, "spec": spec}


def _buckets(w: Workload, fl: Flavor) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, str],
                                                 list[dict[str, Any]]]:
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    annotations: dict[str, str] = {}
    extra: list[dict[str, Any]] = []
    for i, b in enumerate(w.buckets):
        csi = fl.csi.get(b.store)
        if csi is None:
            have = ", ".join(sorted(fl.csi)) or "none"
            raise RenderError(f"KubeMountUnsupported: cluster '{w.cluster}' ({fl.name}) has no CSI driver for "
                              f"{b.store} buckets (it mounts: {have}); cannot mount {b.bucket} at {b.dst}",
                              hint="use mode: COPY, or a cluster whose flavor mounts this store")
        vol = f"bucket-{i}"
        attrs = {csi.bucket_attribute: b.bucket, **dict(csi.extra_attributes)}
        if csi.inline:
            volumes.append({"name": vol, "csi": {"driver": csi.driver, "volumeAttributes": attrs}})
        else:
            pv = f"{w.name}-{vol}"
            extra.append({
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": pv, "labels": labels(w)},
                "spec": {"capacity": {"storage": BUCKET_CLAIM_SIZE}, "accessModes": ["ReadWriteMany"],
                         "storageClassName": "", "persistentVolumeReclaimPolicy": "Retain",
                         "claimRef": {"namespace": w.namespace, "name": pv},
                         "mountOptions": ["allow-delete", "allow-overwrite"],
                         "csi": {"driver": csi.driver, "volumeHandle": pv, "volumeAttributes": attrs}},
            })
            extra.append({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": pv, "namespace": w.namespace, "labels": labels(w)},
                "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "", "volumeName": pv,
                         "resources": {"requests": {"storage": BUCKET_CLAIM_SIZE}}},
            })
            volumes.append({"name": vol, "persistentVolumeClaim": {"claimName": pv}})
        mount: dict[str, Any] = {"name": vol, "mountPath": b.dst}
        if b.path:
            mount["subPath"] = b.path.strip("/")
        mounts.append(mount)
        annotations.update(dict(csi.pod_annotations))
    return volumes, mounts, annotations, extra


# --- the workloads ---------------------------------------------------------------------------------


def budgets(w: Workload) -> tuple[int, bool]:
    """(the budget, whether evictions are free of it): see the module docstring."""
    if w.backoff_limit is not None:
        return int(w.backoff_limit), False
    return int(w.max_restarts_on_errors or 0), True


def _meta(w: Workload) -> dict[str, Any]:
    return {"name": w.name, "namespace": w.namespace, "labels": labels(w)}


def _job(w: Workload, pod: dict[str, Any]) -> dict[str, Any]:
    limit, evictions_free = budgets(w)
    spec: dict[str, Any] = {
        "completionMode": "Indexed",
        "completions": w.num_nodes,
        "parallelism": w.num_nodes,
        "backoffLimit": limit,
        "template": pod,
    }
    if evictions_free:
        spec["podFailurePolicy"] = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": _meta(w), "spec": spec}


def _service(w: Workload) -> dict[str, Any]:
    """The headless Service that gives a multi-node Job's pods their DNS names."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(w),
            "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                     "selector": {STACK_LABEL: label_value(w.stack)}}}


def _jobset(w: Workload, pod: dict[str, Any]) -> dict[str, Any]:
    limit, evictions_free = budgets(w)
    job_spec: dict[str, Any] = {"parallelism": 1, "completions": 1, "backoffLimit": 0, "template": pod}
    failure: dict[str, Any] = {"maxRestarts": limit}
    if evictions_free:
        # A disrupted pod fails its Job at once with reason PodFailurePolicy; the JobSet
        # restarts on that reason without spending maxRestarts.
        job_spec["podFailurePolicy"] = {"rules": [{"action": "FailJob",
                                                   "onPodConditions": [{"type": "DisruptionTarget"}]}]}
        failure["rules"] = [{"name": "evictions-are-free", "action": "RestartJobSetAndIgnoreMaxRestarts",
                             "onJobFailureReasons": ["PodFailurePolicy"]}]
    return {"apiVersion": JOBSET_API, "kind": "JobSet", "metadata": _meta(w),
            "spec": {"failurePolicy": failure,
                     "network": {"enableDNSHostnames": True},
                     "replicatedJobs": [{"name": REPLICATED_JOB, "replicas": w.num_nodes,
                                         "template": {"metadata": {"labels": labels(w)}, "spec": job_spec}}]}}


def _rayjob(w: Workload, fl: Flavor, volumes: list[dict[str, Any]], mounts: list[dict[str, Any]],
            annotations: dict[str, str]) -> dict[str, Any]:
    limit, _ = budgets(w)
    # KubeRay starts Ray in the pods itself; the task's script is the job's entrypoint.
    head = _pod(w, fl, volumes, mounts, annotations, container="ray-head", command=False, restart="Always")
    cluster: dict[str, Any] = {"headGroupSpec": {"rayStartParams": {}, "template": head}}
    workers = w.num_nodes - 1
    if workers > 0:
        worker = _pod(w, fl, volumes, mounts, annotations, container="ray-worker", command=False, restart="Always")
        cluster["workerGroupSpecs"] = [{"groupName": "workers", "replicas": workers, "minReplicas": workers,
                                        "maxReplicas": workers, "rayStartParams": {}, "template": worker}]
    return {"apiVersion": RAYJOB_API, "kind": "RayJob", "metadata": _meta(w),
            "spec": {"entrypoint": "bash -c " + shlex.quote(script(w)), "backoffLimit": limit,
                     "shutdownAfterJobFinishes": True, "submissionMode": "K8sJobMode",
                     "rayClusterSpec": cluster}}


def pod_template(manifest: dict[str, Any]) -> dict[str, Any]:
    """The pod template of a workload manifest (a RayJob's: its head's)."""
    kind = manifest["kind"]
    if kind == "JobSet":
        return manifest["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]
    if kind == "RayJob":
        return manifest["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]
    return manifest["spec"]["template"]


def workload_kind(operator: str) -> tuple[str, str]:
    """(apiVersion, kind) of the workload an operator runs."""
    return {"jobset": (JOBSET_API, "JobSet"), "kuberay": (RAYJOB_API, "RayJob")}.get(operator, ("batch/v1", "Job"))


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"
