"""The kubernetes cloud without a cluster: the config section, offers from node and
NodePool data (priced from the catalog, cached with a TTL), the pure renderer's
manifests for every flavor (seed 004's selectors and tolerations, GPUs, num_nodes,
SKYPLAN_* env, restart budgets, bucket mounts), the classifier, and the plan path's
import cost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from skyplan.clouds import registry
from skyplan.clouds.kubernetes import discovery
from skyplan.clouds.kubernetes.config import Cluster, clusters
from skyplan.clouds.kubernetes.render import Bucket, RenderError, Workload, render
from skyplan.config import ConfigError, read_config
from skyplan.errors import Kind, Scope


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path))
    return tmp_path


def write(home: Path, text: str) -> None:
    (home / "config.yaml").write_text(text)


def cluster(flavor: str = "eks", **kw) -> Cluster:
    return Cluster(name=kw.pop("name", "c1"), kubeconfig="/k", context="ctx", flavor=flavor,
                   operator=kw.pop("operator", "jobset" if flavor != "generic" else "batch"), **kw)


def node(name: str, labels: dict, taints: list | None = None, cpu: str = "8", memory: str = "32Gi",
         gpu: str | None = "1", ready: bool = True, unschedulable: bool = False) -> dict:
    alloc = {"cpu": cpu, "memory": memory, "pods": "110"}
    if gpu is not None:
        alloc["nvidia.com/gpu"] = gpu
    return {"name": name, "labels": labels, "taints": taints or [], "unschedulable": unschedulable,
            "ready": ready, "allocatable": alloc}


SPOT = node("karpenter-spot-0", {"karpenter.sh/capacity-type": "spot"})
ON_DEMAND = node("karpenter-od-0", {"karpenter.sh/capacity-type": "on-demand"})
GKE_SPOT = node("gke-spot-0", {"cloud.google.com/gke-spot": "true", "cloud.google.com/gke-provisioning": "spot"},
                [{"key": "cloud.google.com/gke-spot", "value": "true", "effect": "NoSchedule"}])
TESTENV = [SPOT, ON_DEMAND, GKE_SPOT]


# --- the config section -------------------------------------------------------------------------


def test_contexts_take_the_contract_shape_with_defaults(home: Path):
    write(home, "kubernetes:\n  contexts:\n    prod:\n      kubeconfig: kc.yaml\n      context: arn-prod\n"
                "      flavor: eks\n    lab: {flavor: generic, namespace: ml, price: 0.5}\n")
    got = clusters()
    assert got["prod"] == Cluster("prod", str(home / "kc.yaml"), "arn-prod", "eks", "jobset")
    lab = got["lab"]
    assert (lab.context, lab.flavor, lab.operator, lab.namespace) == ("lab", "generic", "batch", "ml")
    assert lab.kubeconfig.endswith(".kube/config") and (lab.price, lab.spot_price) == (0.5, 0.5)


def test_config_mistakes_are_each_located(home: Path):
    write(home, "kubernetes:\n  contexts:\n    a: {flavour: eks}\n    b: {flavor: gke, operator: rayy, price: -1}\n"
                "    c: {flavor: eks, namespace: Not_OK}\n  contxts: {}\n")
    with pytest.raises(ConfigError) as err:
        read_config()
    text = "\n".join(d.format() for d in err.value.diagnostics)
    assert "unknown key 'flavour'" in text and "flavor" in text
    assert "'flavor' is one of eks, aks, gke, generic" in text
    assert "'operator' is one of jobset, kuberay, batch" in text and "kuberay" in text
    assert "'price' is a number" in text and "'namespace'" in text
    assert "unknown key 'contxts'" in text


def test_a_task_on_kubernetes_without_any_context_is_told_where_contexts_go(home: Path):
    from skyplan.errors import InputError

    with pytest.raises(InputError, match="names none") as err:
        registry.get("kubernetes").own_offers()
    assert "kubernetes: {contexts:" in (err.value.hint or "")


# --- discovery --------------------------------------------------------------------------------------


def shapes(data: dict) -> list[tuple]:
    return [(o["instance_type"], o["accelerator"], o["accelerator_count"], o["price"], o["spot_price"])
            for o in data["offers"]]


def test_karpenter_nodes_are_offers_by_market_and_the_gke_pool_is_not_theirs():
    got = shapes(discovery.offers_from(cluster("eks", price=1.0, spot_price=0.25), TESTENV))
    # Both karpenter nodes have the same shape: one offer with both markets. The GKE
    # node is neither karpenter-spot nor on-demand as an eks workload asks.
    assert got == [("k8s-8cpu-32gb-1gpu", "GPU", 1.0, 1.0, 0.25)]


def test_gke_spot_needs_both_labels_and_on_demand_means_untainted():
    gke = shapes(discovery.offers_from(cluster("gke"), TESTENV))
    assert gke == [("k8s-8cpu-32gb-1gpu", "GPU", 1.0, 0.0, 0.0)]  # spot (gke-spot-0) and on-demand (the others)
    half = node("half", {"cloud.google.com/gke-spot": "true"},
                [{"key": "cloud.google.com/gke-spot", "value": "true", "effect": "NoSchedule"}])
    assert discovery.offers_from(cluster("gke"), [half])["offers"] == []


def test_generic_clusters_offer_untainted_ready_nodes_on_demand_only():
    nodes = [node("a", {}, gpu=None), node("b", {}, gpu=None, ready=False), node("c", {}, gpu=None,
             unschedulable=True), node("d", {}, [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}])]
    assert shapes(discovery.offers_from(cluster("generic", price=0.5), nodes)) == \
        [("k8s-8cpu-32gb", None, 0.0, 0.5, None)]


def test_instance_types_are_priced_from_the_catalog_and_gpus_split():
    from skyplan.catalog import load_catalog

    cat = load_catalog()
    row = next(o for o in cat.offers(clouds=["aws"], instance_type="g5.12xlarge") if o.price)
    gpu_node = node("g", {"karpenter.sh/capacity-type": "on-demand", "node.kubernetes.io/instance-type": "g5.12xlarge",
                          "topology.kubernetes.io/region": row.region, "karpenter.k8s.aws/instance-gpu-name": "a10g"},
                    cpu="47", memory="180Gi", gpu="4")
    got = shapes(discovery.offers_from(cluster("eks"), [gpu_node], catalog=cat))
    assert [(t, a, n) for t, a, n, _, _ in got] == [("g5.12xlarge", "A10G", 1.0), ("g5.12xlarge", "A10G", 2.0),
                                                    ("g5.12xlarge", "A10G", 4.0)]
    assert got[-1][3] == pytest.approx(row.price) and got[0][3] == pytest.approx(row.price / 4)
    assert all(s is None for *_, s in got)  # on-demand nodes only


def test_karpenter_nodepools_offer_their_instance_types_from_the_catalog():
    pool = {"spec": {"template": {"spec": {"requirements": [
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]},
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["g5.xlarge", "nope.tiny"]}]}}}}
    data = discovery.offers_from(cluster("eks"), [], [pool])
    (o,) = data["offers"]
    assert (o["instance_type"], o["accelerator"], o["accelerator_count"]) == ("g5.xlarge", "A10G", 1.0)
    assert o["price"] > o["spot_price"] > 0 and data["pool_types"] == ["g5.xlarge"]


def test_offers_are_cached_until_the_ttl(home: Path, monkeypatch: pytest.MonkeyPatch):
    calls = []

    def read(c: Cluster) -> dict:
        calls.append(c.name)
        return discovery.offers_from(c, TESTENV)

    monkeypatch.setattr(discovery, "read_cluster", read)
    c = cluster("eks")
    assert len(discovery.cluster_offers(c)) == 1 and len(discovery.cluster_offers(c)) == 1
    assert calls == ["c1"]
    monkeypatch.setenv("SKYPLAN_K8S_OFFERS_TTL", "0")
    discovery.cluster_offers(c)
    assert calls == ["c1", "c1"]


def test_an_unreachable_cluster_gives_no_offers_and_says_why(home: Path):
    c = Cluster("gone", str(home / "missing-kubeconfig"), "ctx", "generic", "batch")
    assert discovery.cluster_offers(c, use_cache=False) == ()
    assert discovery.problems()["gone"].startswith("KubeConfigInvalid")


def test_quantities():
    assert discovery.cpu_cores("7910m") == 7.91 and discovery.memory_gib("32Gi") == 32.0
    assert discovery.memory_gib("65843484Ki") == 62.79 and discovery.cpu_cores("1k") == 1000


# --- the renderer -----------------------------------------------------------------------------------


def workload(**kw) -> Workload:
    base = dict(name="t1", namespace="default", cluster="demo", stack="demo-a1b2", task_id="demo-a1b2",
                flavor="eks", operator="batch", image="img", run="echo hi", region="c1")
    base.update(kw)
    return Workload(**base)


def pod_spec(manifest: dict) -> dict:
    kind = manifest["kind"]
    if kind == "Job":
        return manifest["spec"]["template"]["spec"]
    if kind == "JobSet":
        return manifest["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    return manifest["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]


@pytest.mark.parametrize("flavor, spot, selector, tolerations", [
    ("eks", True, {"karpenter.sh/capacity-type": "spot"}, None),
    ("eks", False, {"karpenter.sh/capacity-type": "on-demand"}, None),
    ("aks", True, {"karpenter.sh/capacity-type": "spot"},
     [{"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot", "effect": "NoSchedule"}]),
    ("gke", True, {"cloud.google.com/gke-spot": "true", "cloud.google.com/gke-provisioning": "spot"},
     [{"key": "cloud.google.com/gke-spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]),
    ("gke", False, None, None),
    ("generic", False, None, None),
])
def test_spot_and_on_demand_as_seed_004_asks(flavor: str, spot: bool, selector, tolerations):
    for operator in ("batch", "jobset", "kuberay"):
        spec = pod_spec(render(workload(flavor=flavor, use_spot=spot, operator=operator))[-1])
        assert spec.get("nodeSelector") == selector
        assert spec.get("tolerations") == tolerations


def test_spot_on_a_flavor_without_spot_is_refused():
    with pytest.raises(RenderError, match="KubeSpotUnsupported"):
        render(workload(flavor="generic", use_spot=True))


def test_gpus_are_limits_plus_the_flavors_accelerator_selector():
    gke = pod_spec(render(workload(flavor="gke", accelerator=("A100", 2), instance_type="a2-highgpu-2g"))[-1])
    assert gke["containers"][0]["resources"] == {"limits": {"nvidia.com/gpu": "2"}}
    assert gke["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-a100",
                                   "node.kubernetes.io/instance-type": "a2-highgpu-2g"}
    eks = pod_spec(render(workload(flavor="eks", accelerator=("A10G", 1), cpus=4, memory_gib=16))[-1])
    assert eks["nodeSelector"]["karpenter.k8s.aws/instance-gpu-name"] == "a10g"
    assert eks["containers"][0]["resources"] == {"requests": {"cpu": "4", "memory": "16Gi"},
                                                 "limits": {"nvidia.com/gpu": "1"}}


def env_of(spec: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in spec["containers"][0]["env"]}


def test_num_nodes_and_skyplan_env_per_workload_kind():
    job, = [m for m in render(workload(num_nodes=3, envs={"A": "1"}))[-1:]]
    assert (job["spec"]["completions"], job["spec"]["parallelism"], job["spec"]["completionMode"]) == (3, 3, "Indexed")
    env = env_of(job["spec"]["template"]["spec"])
    assert env["A"] == "1" and env["SKYPLAN_TASK_ID"] == "demo-a1b2" and env["SKYPLAN_NUM_NODES"] == "3"
    assert env["SKYPLAN_NODE_RANK"] == {"fieldRef": {
        "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}
    assert env["SKYPLAN_NODE_IPS"].splitlines() == ["t1-0.t1", "t1-1.t1", "t1-2.t1"]
    assert [m["kind"] for m in render(workload(num_nodes=3))] == ["Service", "Job"]
    js = render(workload(num_nodes=3, operator="jobset"))[-1]
    assert js["spec"]["replicatedJobs"][0]["replicas"] == 3
    ray = render(workload(num_nodes=3, operator="kuberay"))[-1]
    assert ray["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replicas"] == 2
    assert ray["spec"]["entrypoint"].startswith("bash -c ")
    # A managed job's task id comes in as an env and wins.
    kept = env_of(pod_spec(render(workload(envs={"SKYPLAN_TASK_ID": "job-7"}))[-1]))
    assert kept["SKYPLAN_TASK_ID"] == "job-7"


def test_every_object_and_pod_carries_the_cluster_label():
    for operator in ("batch", "jobset", "kuberay"):
        for m in render(workload(operator=operator, num_nodes=2, secret_name="s", secret_names=("T",))):
            assert m["metadata"]["labels"]["skyplan.dev/cluster"] == "demo"
        w = render(workload(operator=operator))[-1]
        pod_meta = (w["spec"]["template"]["metadata"] if operator == "batch" else
                    w["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["metadata"]
                    if operator == "jobset" else w["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["metadata"])
        assert pod_meta["labels"]["skyplan.dev/cluster"] == "demo"
        assert pod_meta["labels"]["skyplan.dev/stack"] == "demo-a1b2"


def test_restart_budgets_keep_their_managed_job_meanings():
    # Neither: evictions are free, the first error ends the task.
    job = render(workload())[-1]["spec"]
    assert job["backoffLimit"] == 0
    assert job["podFailurePolicy"] == {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    # max_restarts_on_errors: the user's failures only.
    job = render(workload(max_restarts_on_errors=3))[-1]["spec"]
    assert job["backoffLimit"] == 3 and "podFailurePolicy" in job
    # backoff_limit (seed 004): every failure, evictions included.
    job = render(workload(backoff_limit=5, max_restarts_on_errors=3))[-1]["spec"]
    assert job["backoffLimit"] == 5 and "podFailurePolicy" not in job
    js = render(workload(operator="jobset", max_restarts_on_errors=2))[-1]["spec"]
    assert js["failurePolicy"]["maxRestarts"] == 2
    assert js["failurePolicy"]["rules"][0]["action"] == "RestartJobSetAndIgnoreMaxRestarts"
    assert js["replicatedJobs"][0]["template"]["spec"]["podFailurePolicy"]["rules"][0]["action"] == "FailJob"
    js = render(workload(operator="jobset", backoff_limit=5))[-1]["spec"]
    assert js["failurePolicy"] == {"maxRestarts": 5}
    assert render(workload(operator="kuberay", backoff_limit=4))[-1]["spec"]["backoffLimit"] == 4


@pytest.mark.parametrize("flavor, store, driver", [("gke", "gcs", "gcsfuse.csi.storage.gke.io"),
                                                   ("aks", "azure", "blob.csi.azure.com")])
def test_buckets_mount_inline_through_the_flavors_csi_driver(flavor: str, store: str, driver: str):
    w = render(workload(flavor=flavor, buckets=(Bucket("/ckpt", store, "ckpts"),)))[-1]
    spec = pod_spec(w)
    assert spec["volumes"] == [{"name": "bucket-0", "csi": {"driver": driver, "volumeAttributes": {
        ("bucketName" if flavor == "gke" else "containerName"): "ckpts"}}}]
    assert spec["containers"][0]["volumeMounts"] == [{"name": "bucket-0", "mountPath": "/ckpt"}]
    if flavor == "gke":
        assert w["spec"]["template"]["metadata"]["annotations"] == {"gke-gcsfuse/volumes": "true"}


def test_s3_buckets_mount_through_a_static_volume_and_other_stores_are_refused():
    ms = render(workload(flavor="eks", buckets=(Bucket("/ckpt", "s3", "ckpts"),)))
    assert [m["kind"] for m in ms] == ["PersistentVolume", "PersistentVolumeClaim", "Job"]
    assert ms[0]["spec"]["csi"]["driver"] == "s3.csi.aws.com"
    assert ms[0]["spec"]["csi"]["volumeAttributes"] == {"bucketName": "ckpts"}
    assert pod_spec(ms[-1])["volumes"] == [{"name": "bucket-0", "persistentVolumeClaim": {"claimName": "t1-bucket-0"}}]
    with pytest.raises(RenderError, match="KubeMountUnsupported"):
        render(workload(flavor="eks", buckets=(Bucket("/ckpt", "gcs", "ckpts"),)))


def test_secrets_are_a_secret_whose_values_the_renderer_never_holds():
    ms = render(workload(secret_name="t1-secrets", secret_names=("TOKEN",)))
    assert ms[0]["kind"] == "Secret" and ms[0]["stringData"] == {"TOKEN": ""}
    assert pod_spec(ms[-1])["containers"][0]["envFrom"] == [{"secretRef": {"name": "t1-secrets"}}]


# --- the classifier ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text, kind, scope, code", [
    ("Exception calling application: KubeFailedScheduling: pod t1-0-abc in default: FailedScheduling: 0/3 nodes "
     "are available: 1 Insufficient nvidia.com/gpu, 2 node(s) didn't match Pod's node affinity/selector. "
     "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
     Kind.CAPACITY, Scope.REGION, "KubeFailedScheduling"),
    ("0/3 nodes are available: 1 node(s) had untolerated taint {cloud.google.com/gke-spot: true}",
     Kind.CAPACITY, Scope.REGION, "FailedScheduling"),
    ("KubeUnreachable: MaxRetryError: HTTPSConnectionPool(host='127.0.0.1', port=1): Max retries exceeded",
     Kind.CAPACITY, Scope.REGION, "KubeUnreachable"),
    ('KubeForbidden: HTTP 403: pods "x" is forbidden: exceeded quota: compute', Kind.QUOTA, Scope.REGION,
     "ExceededQuota"),
    ("KubeUnauthorized: HTTP 401: Unauthorized", Kind.AUTH, Scope.REGION, "KubeUnauthorized"),
    ("KubeOperatorMissing: the cluster serves no JobSet (jobset.x-k8s.io/v1alpha2)", Kind.INVALID, Scope.REGION,
     "KubeOperatorMissing"),
    ("KubeWorkdirUnsupported: a Kubernetes workload runs in its image", Kind.INVALID, Scope.CLOUD,
     "KubeWorkdirUnsupported"),
    ('KubeInvalid: HTTP 422: Job.batch "t1" is invalid: spec.template: Required value', Kind.INVALID, Scope.REGION,
     "KubeInvalid"),
    ("KubeThrottled: HTTP 429: Too Many Requests", Kind.TRANSIENT, Scope.NONE, "KubeThrottled"),
])
def test_the_classifier(text: str, kind: Kind, scope: Scope, code: str):
    got = registry.get("kubernetes").classify(text)
    assert (got.kind, got.scope, got.code) == (kind, scope, code)


def test_every_sample_error_classifies_as_its_outcome():
    from stackmocks_k8s import request

    cloud = registry.get("kubernetes")
    for outcome in ("capacity", "quota", "auth", "invalid", "transient"):
        assert cloud.classify(cloud.sample_error(outcome, request())).kind.value == outcome


# --- the plan path --------------------------------------------------------------------------------------


def test_the_cloud_module_does_not_import_the_kubernetes_client_or_pulumi():
    code = ("import sys; from skyplan.clouds import registry; c = registry.get('kubernetes'); c.capabilities; "
            "print(json.dumps([m for m in ('kubernetes', 'pulumi', 'pulumi_kubernetes') if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_plan_ranks_cluster_offers_beside_vm_offers(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from skyplan.catalog import load_catalog
    from skyplan.planner import make_plan
    from skyplan.spec import load

    monkeypatch.setattr(discovery, "read_cluster", lambda c: discovery.offers_from(c, TESTENV))
    write(home, "kubernetes:\n  contexts:\n    kc: {flavor: eks, spot_price: 0.01}\n")
    task = tmp_path / "t.yaml"
    task.write_text("name: t\nresources:\n  use_spot: true\n  any_of:\n    - {cloud: kubernetes, region: kc}\n"
                    "    - {cloud: aws, instance_type: m6i.large}\nrun: 'true'\n")
    cat = load_catalog()
    plan = make_plan(load(str(task), catalog=cat), cat)
    clouds = [c.cloud for c in plan.candidates]
    assert clouds[0] == "kubernetes" and "aws" in clouds
    first = plan.candidates[0]
    assert (first.region, first.zone, first.use_spot, first.hourly_price) == ("kc", None, True, 0.01)


# --- status and logs (the API's pod JSON) -------------------------------------------------------------


def test_status_folds_the_newest_pod_of_each_rank(monkeypatch: pytest.MonkeyPatch):
    from skyplan.clouds.kubernetes import client, logs

    def pod(name: str, rank: int, phase: str, created: str, code: int | None = None) -> dict:
        st: dict = {"phase": phase}
        if code is not None:
            st["containerStatuses"] = [{"state": {"terminated": {"exitCode": code}}}]
        return {"metadata": {"name": name, "creationTimestamp": created,
                             "annotations": {"batch.kubernetes.io/job-completion-index": str(rank)}},
                "spec": {"nodeName": "n"}, "status": st}

    pods = [pod("a-0-old", 0, "Failed", "2026-01-01T00:00:00Z", 137), pod("a-0-new", 0, "Running", "2026-01-01T00:05:00Z"),
            pod("a-1", 1, "Succeeded", "2026-01-01T00:00:00Z", 0)]

    class Api:
        def close(self) -> None:
            pass

    monkeypatch.setattr(client, "api_client", lambda *a: Api())
    monkeypatch.setattr(client, "list_pods", lambda api, ns, sel: list(pods))
    src = logs.pod_logs({"kubeconfig": "/k", "context": "c", "namespace": "ns", "selector": "s=1"})
    st = src.status()
    # The evicted pod of rank 0 was replaced: the task runs.
    assert st["phase"] == "run" and [(n["node_rank"], n["pod"]) for n in st["nodes"]] == [(0, "a-0-new"), (1, "a-1")]
    pods[1]["status"] = {"phase": "Failed", "containerStatuses": [{"state": {"terminated": {"exitCode": 3}}}]}
    assert (src.status()["phase"], src.status()["returncode"]) == ("failed", 3)
    assert src.node(1).status()["nodes"] == [{"node_rank": 1, "phase": "done", "returncode": 0, "pod": "a-1",
                                              "node": "n"}]
    assert logs.pod_logs({"kubeconfig": "/k"}) is None
