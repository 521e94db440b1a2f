"""stacks/kubernetes/program.py under Pulumi mocks, for every flavor and both apply
paths: pulumi-kubernetes (a provider for the cluster's context, a ConfigGroup of the
rendered manifests, the Secret's values as a Pulumi secret, then a KubeScheduled
wait) where its plugin is installed, else one KubeWorkload dynamic resource that
applies the same manifests with the Kubernetes client."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from stackmocks import is_secret, plain, run_program

from skyplan.clouds import programs
from skyplan.clouds.base import ProvisionRequest, SecretValues
from skyplan.clouds.kubernetes import discovery

build = programs.load("kubernetes").build

WORKLOAD = "pulumi-python:dynamic/skyplan:KubeWorkload"
SCHEDULED = "pulumi-python:dynamic/skyplan:KubeScheduled"
PROVIDER = "pulumi:providers:kubernetes"
GROUP = "kubernetes:yaml/v2:ConfigGroup"
SECRET = "kubernetes:core/v1:Secret"
FLAVORS = ("eks", "aks", "gke", "generic")


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path))
    monkeypatch.setattr(discovery, "pool_types", lambda cluster: frozenset({"g5.xlarge"}))
    (tmp_path / "config.yaml").write_text(
        "kubernetes:\n  contexts:\n" + "".join(
            f"    {f}-1: {{kubeconfig: /kc/{f}, context: ctx-{f}, flavor: {f}, namespace: ml}}\n" for f in FLAVORS)
        + "    ray-1: {kubeconfig: /kc/ray, flavor: gke, operator: kuberay}\n")
    return tmp_path


def request(flavor: str, **kw) -> ProvisionRequest:
    base = ProvisionRequest(cluster="demo", stack="demo-a1b2", cloud="kubernetes", region=f"{flavor}-1", zone=None,
                            instance_type="k8s-8cpu-32gb-1gpu", use_spot=flavor != "generic",
                            accelerators={"GPU": 1.0}, num_nodes=2, envs={"A": "1"}, run="echo hi",
                            secrets=SecretValues({"TOKEN": "s3cr3t"}))
    return replace(base, **kw)


def workload_of(manifests: list[dict]) -> dict:
    return manifests[-1]


@pytest.mark.parametrize("flavor", FLAVORS)
def test_without_the_plugin_one_dynamic_resource_applies_the_rendered_manifests(flavor: str):
    m = run_program(lambda r: build(r, plugin=False), request(flavor))
    res = m.one(WORKLOAD)
    inputs = res.inputs
    assert res.name == "workload"
    assert (inputs["kubeconfig"], inputs["context"], inputs["namespace"]) == (f"/kc/{flavor}", f"ctx-{flavor}", "ml")
    assert inputs["selector"] == "skyplan.dev/stack=demo-a1b2" and inputs["expected_pods"] == 2
    kinds = [x["kind"] for x in inputs["manifests"]]
    assert kinds[0] == "Secret" and kinds[-1] == ("Job" if flavor == "generic" else "JobSet")
    # The secret's value is only in the secret input, never in the manifests.
    assert is_secret(inputs["secret_values"]) and plain(inputs["secret_values"]) == {"TOKEN": "s3cr3t"}
    assert "s3cr3t" not in repr(inputs["manifests"])
    assert m.exports["apply_path"] == "client" and m.exports["region"] == f"{flavor}-1"
    assert m.exports["kind"] == kinds[-1] and m.exports["selector"] == "skyplan.dev/stack=demo-a1b2"
    assert not m.of_type(PROVIDER) and not m.of_type(GROUP)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_with_the_plugin_pulumi_kubernetes_applies_them(flavor: str):
    m = run_program(lambda r: build(r, plugin=True), request(flavor))
    provider = m.one(PROVIDER)
    assert (provider.inputs["kubeconfig"], provider.inputs["context"], provider.inputs["namespace"]) == \
        (f"/kc/{flavor}", f"ctx-{flavor}", "ml")
    secret = m.one(SECRET)
    assert is_secret(secret.inputs["stringData"]) and plain(secret.inputs["stringData"]) == {"TOKEN": "s3cr3t"}
    group = m.one(GROUP)
    objs = group.inputs["objs"]
    assert "Secret" not in [o["kind"] for o in objs]
    wl = workload_of(objs)
    assert wl["metadata"]["labels"]["skyplan.dev/cluster"] == "demo"
    wait = m.one(SCHEDULED)
    assert wait.name == "scheduled" and wait.inputs["manifests"] == objs
    assert m.exports["apply_path"] == "pulumi-kubernetes"


@pytest.mark.parametrize("flavor, selector", [
    ("eks", {"karpenter.sh/capacity-type": "spot"}),
    ("aks", {"karpenter.sh/capacity-type": "spot"}),
    ("gke", {"cloud.google.com/gke-spot": "true", "cloud.google.com/gke-provisioning": "spot"}),
])
def test_spot_placements_carry_the_flavors_selectors(flavor: str, selector: dict):
    m = run_program(lambda r: build(r, plugin=False), request(flavor))
    js = workload_of(m.one(WORKLOAD).inputs["manifests"])
    pod = js["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == selector
    assert pod["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "1"}


def test_operator_kuberay_renders_a_rayjob_and_a_task_label_can_choose():
    m = run_program(lambda r: build(r, plugin=False), request("gke", region="ray-1"))
    assert workload_of(m.one(WORKLOAD).inputs["manifests"])["kind"] == "RayJob"
    m = run_program(lambda r: build(r, plugin=False), request("eks", labels={"skyplan.dev/operator": "batch"}))
    assert workload_of(m.one(WORKLOAD).inputs["manifests"])["kind"] == "Job"


def test_a_known_instance_type_is_selected_and_a_nodepool_placement_waits_for_its_node():
    m = run_program(lambda r: build(r, plugin=False), request("eks", instance_type="g5.xlarge", accelerators={"A10G": 1}))
    inputs = m.one(WORKLOAD).inputs
    pod = workload_of(inputs["manifests"])["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"]["node.kubernetes.io/instance-type"] == "g5.xlarge"
    assert pod["nodeSelector"]["karpenter.k8s.aws/instance-gpu-name"] == "a10g"
    assert inputs["unschedulable_grace"] == inputs["schedule_timeout"]  # Karpenter needs time to add a node
    m = run_program(lambda r: build(r, plugin=False), request("eks"))
    assert m.one(WORKLOAD).inputs["unschedulable_grace"] < m.one(WORKLOAD).inputs["schedule_timeout"]


def test_budgets_and_buckets_reach_the_manifests():
    req = request("gke", max_restarts_on_errors=2)
    req = replace(req, **({"buckets": ({"dst": "/ckpt", "name": "ckpts", "store": None},)}
                          if "buckets" in ProvisionRequest.__dataclass_fields__ else {}))
    m = run_program(lambda r: build(r, plugin=False), req)
    js = workload_of(m.one(WORKLOAD).inputs["manifests"])
    assert js["spec"]["failurePolicy"]["maxRestarts"] == 2
    if "buckets" in ProvisionRequest.__dataclass_fields__:
        pod = js["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
        assert pod["volumes"][0]["csi"]["driver"] == "gcsfuse.csi.storage.gke.io"


def test_a_local_workdir_cannot_reach_a_pod():
    from skyplan.clouds.kubernetes.render import RenderError

    with pytest.raises(RenderError, match="KubeWorkdirUnsupported"):
        programs.load("kubernetes").workload(request("eks", workdir="/tmp"))
