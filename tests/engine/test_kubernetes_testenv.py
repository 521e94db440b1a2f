"""The kubernetes cloud against a real API server and scheduler (``tools/k8s-testenv``:
etcd, kube-apiserver, kube-scheduler, the Job controller and kwok's fake nodes).

What seed 004 means must hold there: the rendered manifests pass server-side
validation; spot pods land on spot nodes only and on-demand pods on on-demand
nodes only; a GKE spot pod schedules with its toleration and not without it; a
pod no node can take stays Pending with ``FailedScheduling``, which the
classifier reads as capacity, and ``skyplan apply`` fails over to the next
cluster; an eviction (the node deleted) restarts the task within its budget,
with the same ``SKYPLAN_TASK_ID``.

Skipped unless the testenv runs or ``SKYPLAN_REQUIRE_K8S=1`` (CI), which
starts it (and builds it the first time) and fails rather than skips.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
TESTENV = REPO / "tools" / "k8s-testenv"
SKYPLAN = str(Path(sys.executable).with_name("skyplan"))
BOOTSTRAP = REPO / "tools" / "k8s-testenv.d"


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    required = os.environ.get("SKYPLAN_REQUIRE_K8S") == "1"
    status = subprocess.run([str(TESTENV), "status"], capture_output=True, text=True)
    if status.returncode != 0 and not required:
        pytest.skip("the Kubernetes testenv is not running (tools/k8s-testenv up; SKYPLAN_REQUIRE_K8S=1 starts it)")
    up = subprocess.run([str(TESTENV), "up"], capture_output=True, text=True, timeout=3600)
    if up.returncode != 0:
        pytest.fail(f"tools/k8s-testenv up failed ({up.returncode}):\n{up.stderr[-3000:]}")
    return up.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def api(kubeconfig: str) -> Any:
    from skyplan.clouds.kubernetes.client import api_client

    client = api_client(kubeconfig, "skyplan-testenv")
    yield client
    client.close()


@pytest.fixture
def core(api: Any) -> Any:
    from kubernetes import client

    return client.CoreV1Api(api)


@pytest.fixture
def namespace(core: Any) -> Iterator[str]:
    """A namespace of the test's own, removed with everything in it; its pods are
    deleted at once (kwok's pods need no grace) so the next test finds free GPUs."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    wait(lambda: _has_default_sa(core, name), "the namespace's default ServiceAccount")
    yield name
    _clear(core, name)


def _has_default_sa(core: Any, ns: str) -> bool:
    from kubernetes.client.rest import ApiException

    try:
        core.read_namespaced_service_account("default", ns)
        return True
    except ApiException:
        return False


def _clear(core: Any, ns: str) -> None:
    from kubernetes import client

    batch = client.BatchV1Api(core.api_client)
    for job in batch.list_namespaced_job(ns).items:
        batch.delete_namespaced_job(job.metadata.name, ns, propagation_policy="Background")
    core.delete_collection_namespaced_pod(ns, grace_period_seconds=0)
    wait(lambda: not core.list_namespaced_pod(ns).items, f"the pods of {ns} to go")
    core.delete_namespace(ns)


def wait(check: Callable[[], Any], what: str, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def workload(**kw: Any):
    from skyplan.clouds.kubernetes.render import Workload

    base = dict(name="w", namespace="default", cluster="demo", stack=f"demo-{uuid.uuid4().hex[:6]}",
                task_id="demo", flavor="eks", operator="batch", image="busybox", run="sleep 3600", region="testenv")
    base.update(kw)
    return Workload(**base)


def pod_from_template(w, manifest: dict, name: str) -> dict:  # noqa: ANN001
    """A pod made from a workload's pod template, as its controller would (there is no
    JobSet or KubeRay controller here: their templates are scheduled this way)."""
    from skyplan.clouds.kubernetes.render import pod_template

    tmpl = pod_template(manifest)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {**tmpl["metadata"], "name": name,
                                                            "namespace": w.namespace},
            "spec": tmpl["spec"]}


def placed(core: Any, ns: str, selector: str, n: int = 1, seconds: float = 30) -> list[Any]:
    def bound() -> list[Any]:
        pods = [p for p in core.list_namespaced_pod(ns, label_selector=selector).items
                if p.spec.node_name and p.metadata.deletion_timestamp is None]
        return pods if len(pods) >= n else []

    return wait(bound, f"{n} pod(s) of {selector} to be placed", seconds)


def blocker(core: Any, ns: str, node: str) -> None:
    """Take ``node``'s one GPU (a pod bound to it directly, as the scheduler would have)."""
    core.create_namespaced_pod(ns, {"metadata": {"name": f"blocker-{node}"}, "spec": {
        "nodeName": node, "tolerations": [{"operator": "Exists"}],
        "containers": [{"name": "c", "image": "busybox", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}})
    wait(lambda: core.read_namespaced_pod(f"blocker-{node}", ns).status.phase == "Running", "the blocker")


# --- server-side validation ----------------------------------------------------------------------


@pytest.mark.parametrize("flavor", ["eks", "aks", "gke", "generic"])
def test_the_rendered_manifests_pass_server_side_validation(api: Any, namespace: str, flavor: str):
    from skyplan.clouds.kubernetes import client
    from skyplan.clouds.kubernetes.render import render, secret_manifest

    spot = flavor != "generic"
    for operator in ("batch", "jobset"):  # RayJob: no KubeRay CRD here (README: Kubernetes)
        for kw in ({}, {"max_restarts_on_errors": 2}, {"backoff_limit": 5}):
            w = workload(namespace=namespace, flavor=flavor, operator=operator, use_spot=spot, num_nodes=2,
                         accelerator=("A100", 1), cpus=2, memory_gib=4, secret_name="w-secrets",
                         secret_names=("TOKEN",), **kw)
            manifests = [secret_manifest(w, {"TOKEN": "x"}), *render(w, with_secret=False)]
            applied = client.apply(api, manifests, dry_run=True)
            assert [a["kind"] for a in applied] == [m["kind"] for m in manifests]
    # And the API server does refuse what is wrong (Strict: an unknown field too).
    bad = render(workload(namespace=namespace))[-1]
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Never"
    with pytest.raises(Exception) as err:
        client.apply(api, [bad], dry_run=True)
    assert "imagePullPolicyy" in client.describe(err.value)


# --- where pods land ----------------------------------------------------------------------------------


@pytest.mark.parametrize("flavor, spot, node", [("eks", True, "karpenter-spot-0"), ("eks", False, "karpenter-od-0"),
                                                ("gke", True, "gke-spot-0")])
def test_a_jobs_pods_land_only_on_nodes_of_their_market(api: Any, core: Any, namespace: str, flavor: str,
                                                        spot: bool, node: str):
    from skyplan.clouds.kubernetes import client
    from skyplan.clouds.kubernetes.render import render

    # Two pods each asking a GPU: one fits on the node of its market, the other has
    # nowhere to go (the other nodes are of the wrong market) and stays Pending.
    w = workload(namespace=namespace, flavor=flavor, use_spot=spot, num_nodes=2, accelerator=("GPU", 1))
    client.apply(api, render(w))
    selector = f"skyplan.dev/stack={w.stack}"
    (pod,) = placed(core, namespace, selector)
    assert pod.spec.node_name == node
    assert pod.metadata.labels["skyplan.dev/cluster"] == "demo"
    other = wait(lambda: [p for p in core.list_namespaced_pod(namespace, label_selector=selector).items
                          if client.unschedulable(p)], "the second pod to be unschedulable")
    assert "0/3 nodes are available" in client.unschedulable(other[0])


def test_jobset_templates_schedule_like_the_seed_says(api: Any, core: Any, namespace: str):
    from skyplan.clouds.kubernetes.render import render

    # GKE spot: the selectors alone do not schedule (the taint); with the toleration they do.
    w = workload(namespace=namespace, flavor="gke", operator="jobset", use_spot=True)
    pod = pod_from_template(w, render(w)[-1], "gke-spot")
    untolerated = json.loads(json.dumps(pod))
    untolerated["metadata"]["name"] = "gke-spot-untolerated"
    del untolerated["spec"]["tolerations"]
    core.create_namespaced_pod(namespace, untolerated)
    from skyplan.clouds.kubernetes.client import unschedulable

    why = wait(lambda: unschedulable(core.read_namespaced_pod("gke-spot-untolerated", namespace)),
               "the untolerated pod to be refused")
    assert "1 node(s) had untolerated taint" in why
    core.create_namespaced_pod(namespace, pod)
    got = wait(lambda: core.read_namespaced_pod("gke-spot", namespace).spec.node_name, "the tolerated pod")
    assert got == "gke-spot-0"
    # Karpenter (EKS/AKS) spot and on-demand JobSet templates.
    for flavor, spot, node in (("eks", True, "karpenter-spot-0"), ("aks", False, "karpenter-od-0")):
        w = workload(namespace=namespace, flavor=flavor, operator="jobset", use_spot=spot)
        name = f"{flavor}-{'spot' if spot else 'od'}"
        core.create_namespaced_pod(namespace, pod_from_template(w, render(w)[-1], name))
        assert wait(lambda n=name: core.read_namespaced_pod(n, namespace).spec.node_name, name) == node


def test_no_capacity_is_failed_scheduling_which_the_classifier_calls_capacity(api: Any, core: Any, namespace: str):
    from skyplan.clouds import registry
    from skyplan.clouds.kubernetes import client
    from skyplan.clouds.kubernetes.render import render
    from skyplan.errors import Kind, Scope

    w = workload(namespace=namespace, use_spot=True, accelerator=("GPU", 2))  # no node has 2 GPUs
    client.apply(api, render(w))
    with pytest.raises(client.KubeError) as err:
        client.wait_scheduled(api, namespace, f"skyplan.dev/stack={w.stack}", 1, timeout=30, unschedulable_grace=0.5)
    text = err.value.message
    assert "FailedScheduling: 0/3 nodes are available" in text and "Insufficient nvidia.com/gpu" in text
    verdict = registry.get("kubernetes").classify("Exception calling application: " + text)
    assert (verdict.kind, verdict.scope) == (Kind.CAPACITY, Scope.REGION)
    events = core.list_namespaced_event(namespace).items
    assert any(e.reason == "FailedScheduling" for e in events)


# --- eviction ----------------------------------------------------------------------------------------------


def add_node(core: Any, name: str, labels: dict[str, str]) -> None:
    sys.path.insert(0, str(BOOTSTRAP))
    try:
        from bootstrap import node_body
    finally:
        sys.path.remove(str(BOOTSTRAP))
    core.create_node(node_body(name, labels, []))
    wait(lambda: any(c.type == "Ready" and c.status == "True"
                     for c in (core.read_node(name).status.conditions or [])), f"node {name} Ready")


def evict_by_deleting_node(core: Any, pod: Any) -> None:
    """What the pod garbage collector does when a pod's node is deleted: the pod gets
    the DisruptionTarget condition, fails, and is removed."""
    core.delete_node(pod.spec.node_name)
    core.patch_namespaced_pod_status(pod.metadata.name, pod.metadata.namespace, {"status": {
        "phase": "Failed", "conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
                                           "message": "PodGC: node no longer exists"}]}})
    core.delete_namespaced_pod(pod.metadata.name, pod.metadata.namespace, grace_period_seconds=0)


def env_value(pod: Any, name: str) -> str | None:
    return next((e.value for e in pod.spec.containers[0].env if e.name == name), None)


@pytest.mark.parametrize("budget, restarts", [({"max_restarts_on_errors": 0}, True), ({"backoff_limit": 0}, False)])
def test_an_eviction_restarts_the_task_within_its_budget_and_keeps_its_task_id(
        api: Any, core: Any, namespace: str, budget: dict, restarts: bool):
    from kubernetes import client as k8s

    from skyplan.clouds.kubernetes import client
    from skyplan.clouds.kubernetes.render import render

    tag = uuid.uuid4().hex[:5]
    spares = [f"karpenter-spot-x{tag}-{i}" for i in range(2)]
    blocker(core, namespace, "karpenter-spot-0")  # the task goes to a node this test may delete
    add_node(core, spares[0], {"karpenter.sh/capacity-type": "spot"})
    try:
        w = workload(namespace=namespace, use_spot=True, accelerator=("GPU", 1), envs={"SKYPLAN_TASK_ID": "job-42"},
                     **budget)
        client.apply(api, render(w))
        selector = f"skyplan.dev/stack={w.stack}"
        (first,) = placed(core, namespace, selector)
        assert first.spec.node_name == spares[0] and env_value(first, "SKYPLAN_TASK_ID") == "job-42"
        add_node(core, spares[1], {"karpenter.sh/capacity-type": "spot"})  # Karpenter's replacement node
        evict_by_deleting_node(core, first)
        batch = k8s.BatchV1Api(api)
        if not restarts:
            # backoff_limit counts evictions (seed 004): with 0, the first one ends the Job.
            failed = wait(lambda: next((c for c in (batch.read_namespaced_job(w.name, namespace).status.conditions
                                                    or []) if c.type == "Failed"), None), "the Job to fail")
            assert failed.reason == "BackoffLimitExceeded"
            return
        # max_restarts_on_errors counts the user's failures only: even at 0 the eviction is free.
        (again,) = placed(core, namespace, selector)
        assert again.metadata.name != first.metadata.name and again.spec.node_name == spares[1]
        assert env_value(again, "SKYPLAN_TASK_ID") == "job-42"
        status = batch.read_namespaced_job(w.name, namespace).status
        assert not any(c.type == "Failed" for c in status.conditions or [])
    finally:
        for n in spares:
            try:
                core.delete_node(n)
            except Exception:
                pass


# --- through skyplan apply ------------------------------------------------------------------------------


def skyplan(*args: str, cwd: Path, check: int | None = 0) -> subprocess.CompletedProcess:
    p = subprocess.run([SKYPLAN, *args], cwd=cwd, env=dict(os.environ), capture_output=True, text=True, timeout=300)
    if check is not None:
        assert p.returncode == check, f"`skyplan {' '.join(args)}` exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p


def test_apply_fails_over_from_a_full_cluster_to_the_next_and_down_removes_it(
        engine, skyplan_home: Path, kubeconfig: str, core: Any, namespace: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SKYPLAN_K8S_UNSCHEDULABLE_GRACE", "1")
    monkeypatch.setenv("SKYPLAN_K8S_APPLY", "client")
    (skyplan_home / "config.yaml").write_text(
        "kubernetes:\n  contexts:\n"
        f"    eks-a: {{kubeconfig: {kubeconfig}, context: skyplan-testenv, flavor: eks, operator: batch, "
        f"namespace: {namespace}, image: busybox, spot_price: 0.1}}\n"
        f"    gke-b: {{kubeconfig: {kubeconfig}, context: skyplan-testenv, flavor: gke, operator: batch, "
        f"namespace: {namespace}, image: busybox, spot_price: 0.2}}\n")
    blocker(core, namespace, "karpenter-spot-0")  # eks-a, the cheaper, has no free spot GPU
    (tmp_path / "task.yaml").write_text(
        "name: k8stask\nresources:\n  use_spot: true\n  accelerators: GPU:1\n  any_of:\n"
        "    - {cloud: kubernetes, region: eks-a}\n    - {cloud: kubernetes, region: gke-b}\n"
        "run: sleep 3600\n")
    plan = json.loads(skyplan("plan", "task.yaml", "--json", cwd=tmp_path).stdout)
    assert [c["region"] for c in plan["candidates"]][:2] == ["eks-a", "gke-b"]

    out = skyplan("apply", "task.yaml", "--yes", "--detach", "--json", cwd=tmp_path)
    events = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    attempts = [e for e in events if e.get("event") == "attempt"]
    assert attempts[0]["region"] == "eks-a" and attempts[0]["outcome"] == "failed", attempts
    assert attempts[0]["kind"] == "capacity" and "FailedScheduling" in attempts[0]["message"], attempts
    assert attempts[-1]["region"] == "gke-b" and attempts[-1]["outcome"] == "up", attempts

    pods = core.list_namespaced_pod(namespace, label_selector="skyplan.dev/cluster=k8stask").items
    assert [(p.spec.node_name, p.metadata.labels["skyplan.dev/region"]) for p in pods] == [("gke-spot-0", "gke-b")]
    # The failed attempt left nothing on eks-a: one Job, the one on gke-b.
    from kubernetes import client as k8s

    jobs = k8s.BatchV1Api(core.api_client).list_namespaced_job(namespace).items
    assert [j.metadata.labels["skyplan.dev/region"] for j in jobs] == ["gke-b"]

    status = json.loads(skyplan("status", "--json", cwd=tmp_path).stdout)
    (row,) = status["clusters"]
    assert (row["cloud"], row["region"]) == ("kubernetes", "gke-b")
    # What the jobs controller asks the cloud itself: the workload runs, then is gone.
    from skyplan.clouds import registry
    from skyplan.clouds.kubernetes.render import object_name

    outputs = {"kubeconfig": kubeconfig, "context": "skyplan-testenv", "namespace": namespace,
               "selector": f"skyplan.dev/stack={row['stack']}", "name": object_name(row["stack"]),
               "api_version": "batch/v1", "kind": "Job"}
    assert registry.get("kubernetes").node_state(outputs) == "running"

    skyplan("down", "k8stask", "--yes", cwd=tmp_path)
    assert registry.get("kubernetes").node_state(outputs) == "gone"
    assert not k8s.BatchV1Api(core.api_client).list_namespaced_job(namespace).items
    wait(lambda: not core.list_namespaced_pod(namespace, label_selector="skyplan.dev/cluster=k8stask").items,
         "the task's pods to go")
