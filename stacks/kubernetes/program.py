"""The kubernetes cloud's program: one workload on a cluster of the config file.

``request.region`` is the cluster (``kubernetes.contexts.<NAME>``),
``request.instance_type`` the offer's node type (a node label value, or a
``k8s-<cpus>cpu-<mem>gb`` shape of nodes without one). The manifests come from
the pure renderer (``skyplan/clouds/kubernetes/render.py``) and are applied
  * by pulumi-kubernetes where its resource plugin is installed: a provider for
    the cluster's kubeconfig and context, a ``kubernetes:yaml/v2:ConfigGroup`` of
    the manifests (the Secret's values as a Pulumi secret), then a
    ``KubeScheduled`` dynamic resource that waits for the pods to be placed;
  * else by a ``KubeWorkload`` dynamic resource, which applies them with the
    Kubernetes Python client and waits the same way
(``skyplan/clouds/kubernetes/applypath.py``).

Exports (the stack's outputs):
  cloud, region, zone, instance_type  the placement (zone: None)
  kubeconfig, context, namespace     where the workload is
  kind, name                         the workload object (JobSet, RayJob or Job)
  selector                           the label selector of its pods
  pods                               [{pod, node}] when they were placed
  apply_path                         "pulumi-kubernetes" or "client"
"""

from __future__ import annotations

import os

from skyplan.clouds.base import ProvisionRequest

#: Seconds a pod may stay unschedulable before the placement fails as capacity, on
#: nodes that exist; a NodePool's placement waits for a node instead (``SCHEDULE_TIMEOUT``).
UNSCHEDULABLE_GRACE = 15.0
SCHEDULE_TIMEOUT = 600.0


def workload(request: ProvisionRequest):
    """The renderer's input for ``request`` (pure apart from reading the config file)."""
    from skyplan.clouds.kubernetes.config import clusters
    from skyplan.clouds.kubernetes.render import Bucket, RenderError, Workload, object_name
    from skyplan.clouds.kubernetes.discovery import UNKNOWN_GPU
    from skyplan.clouds.kubernetes.flavors import OPERATORS, flavor

    cluster = clusters().get(request.region)
    if cluster is None:
        raise RenderError(f"KubeClusterUnknown: no cluster '{request.region}' in the config file any more",
                          hint="re-plan the task")
    if request.workdir or request.file_mounts:
        raise RenderError("KubeWorkdirUnsupported: a Kubernetes workload runs in its image: a local workdir or "
                          "file mount cannot reach it", hint="put the code in the image, or mount a bucket")
    fl = flavor(cluster.flavor)
    operator = request.labels.get("skyplan.dev/operator") or cluster.operator
    if operator not in OPERATORS:
        raise RenderError(f"KubeOperatorUnknown: label skyplan.dev/operator is '{operator}' "
                          f"(one of {', '.join(OPERATORS)})", hint="fix the task's labels")
    accel = None
    if request.accelerators:
        name, count = next(iter(request.accelerators.items()))
        accel = (name if name != UNKNOWN_GPU else "", int(count))
    buckets = []
    default_store = next(iter(fl.csi), "")
    for b in getattr(request, "buckets", ()) or ():
        buckets.append(Bucket(dst=b["dst"], store=b.get("store") or default_store or "none", bucket=b["name"]))
    instance_type = request.instance_type if not request.instance_type.startswith("k8s-") else None
    name = object_name(request.stack)
    return cluster, Workload(
        name=name, namespace=cluster.namespace, cluster=request.cluster, stack=request.stack,
        task_id=request.stack, flavor=cluster.flavor, operator=operator,
        image=request.labels.get("skyplan.dev/image") or cluster.image,
        num_nodes=max(1, int(request.num_nodes)), use_spot=request.use_spot, instance_type=instance_type,
        accelerator=accel, cpus=request.cpus, memory_gib=request.memory_gib, envs=dict(request.envs),
        setup=request.setup, run=request.run,
        secret_name=f"{name}-secrets" if request.secrets else None, secret_names=tuple(sorted(request.secrets)),
        backoff_limit=request.backoff_limit, max_restarts_on_errors=request.max_restarts_on_errors,
        buckets=tuple(buckets), region=cluster.name,
    )


def _grace() -> float:
    try:
        return float(os.environ.get("SKYPLAN_K8S_UNSCHEDULABLE_GRACE", UNSCHEDULABLE_GRACE))
    except ValueError:
        return UNSCHEDULABLE_GRACE


def build(request: ProvisionRequest, *, plugin: bool | None = None) -> None:
    """The inline program body: call inside a Pulumi program context. ``plugin``
    forces the apply path (default: ``applypath.use_plugin()``)."""
    import pulumi

    from skyplan.clouds.kubernetes import applypath, discovery, render
    from skyplan.clouds.kubernetes.provider import KubeScheduled, KubeWorkload

    cluster, w = workload(request)
    manifests = render.render(w)
    # The kind's pods: a RayJob's head and workers; a Job's or JobSet's num_nodes pods.
    selector = f"{render.STACK_LABEL}={render.label_value(w.stack)}"
    from_pool = request.instance_type in discovery.pool_types(cluster) if w.instance_type else False
    grace = SCHEDULE_TIMEOUT if from_pool else _grace()
    secrets = pulumi.Output.secret(dict(request.secrets)) if request.secrets else {}
    props = {
        "kubeconfig": cluster.kubeconfig, "context": cluster.context, "cluster": request.cluster,
        "namespace": w.namespace, "stack": request.stack, "selector": selector, "expected_pods": w.num_nodes,
        "schedule_timeout": SCHEDULE_TIMEOUT, "unschedulable_grace": grace, "manifests": manifests,
        "secret_values": secrets,
    }
    use_plugin = applypath.use_plugin() if plugin is None else plugin
    if use_plugin:
        import pulumi_kubernetes as k8s

        provider = k8s.Provider("cluster", kubeconfig=cluster.kubeconfig, context=cluster.context,
                                namespace=w.namespace)
        objs = [m for m in manifests if m["kind"] != "Secret"]
        deps = []
        if w.secret_name:
            deps.append(k8s.core.v1.Secret(
                "secrets", metadata={"name": w.secret_name, "namespace": w.namespace, "labels": render.labels(w)},
                string_data=secrets, opts=pulumi.ResourceOptions(provider=provider)))
        group = k8s.yaml.v2.ConfigGroup("workload", objs=objs,
                                        opts=pulumi.ResourceOptions(provider=provider, depends_on=deps))
        placed = KubeScheduled("scheduled", {**props, "manifests": objs, "secret_values": {}},
                               pulumi.ResourceOptions(depends_on=[group, *deps]))
    else:
        placed = KubeWorkload("workload", props)
    api_version, kind = render.workload_kind(w.operator)
    pulumi.export("cloud", request.cloud)
    pulumi.export("region", request.region)
    pulumi.export("zone", request.zone)
    pulumi.export("instance_type", request.instance_type)
    pulumi.export("kubeconfig", cluster.kubeconfig)
    pulumi.export("context", cluster.context)
    pulumi.export("namespace", w.namespace)
    pulumi.export("kind", kind)
    pulumi.export("api_version", api_version)
    pulumi.export("name", w.name)
    pulumi.export("selector", selector)
    pulumi.export("apply_path", applypath.PLUGIN if use_plugin else applypath.CLIENT)
    pulumi.export("pods", placed.pods)
