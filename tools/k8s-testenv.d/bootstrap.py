"""tools/k8s-testenv's last step: the JobSet CRD and the three fake nodes.

usage: python bootstrap.py KUBECONFIG CRD_DIR

Idempotent (objects that exist are replaced). Waits until the CRD is
established, kwok has made every node Ready, and the ``default``
ServiceAccount exists (the controller-manager's serviceaccount controller
makes it; pods are refused without it).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

GPU = "nvidia.com/gpu"
RESOURCES = {"cpu": "8", "memory": "32Gi", GPU: "1", "pods": "110"}
NODES = {
    "karpenter-spot-0": ({"karpenter.sh/capacity-type": "spot"}, []),
    "karpenter-od-0": ({"karpenter.sh/capacity-type": "on-demand"}, []),
    "gke-spot-0": ({"cloud.google.com/gke-spot": "true", "cloud.google.com/gke-provisioning": "spot"},
                   [{"key": "cloud.google.com/gke-spot", "value": "true", "effect": "NoSchedule"}]),
}


def node_body(name: str, labels: dict[str, str], taints: list[dict[str, str]]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            # kwok manages only the nodes it is told to (tools/k8s-testenv: --manage-nodes-with-annotation-selector).
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                       "type": "kwok", **labels},
        },
        "spec": {"taints": taints},
        "status": {"allocatable": dict(RESOURCES), "capacity": dict(RESOURCES)},
    }


def wait(what: str, check, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return
        except ApiException as exc:
            if exc.status not in (404, 409, 500, 503):
                raise
        if time.monotonic() > deadline:
            raise SystemExit(f"bootstrap: {what} not ready after {seconds:.0f}s")
        time.sleep(0.2)


def main(kubeconfig: str, crd_dir: str) -> None:
    api = config.new_client_from_config(config_file=kubeconfig)
    ext = client.ApiextensionsV1Api(api)
    core = client.CoreV1Api(api)
    for path in sorted(Path(crd_dir).glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            name = doc["metadata"]["name"]
            try:
                ext.create_custom_resource_definition(doc)
            except ApiException as exc:
                if exc.status != 409:
                    raise
            wait(f"CRD {name}", lambda n=name: any(
                c.type == "Established" and c.status == "True"
                for c in (ext.read_custom_resource_definition(n).status.conditions or [])))
            print(f"CRD {name} established")
    for name, (labels, taints) in NODES.items():
        body = node_body(name, labels, taints)
        try:
            core.create_node(body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            core.replace_node(name, {**body, "metadata": {**body["metadata"], "resourceVersion":
                                                          core.read_node(name).metadata.resource_version}})
    for name in NODES:
        wait(f"node {name}", lambda n=name: any(c.type == "Ready" and c.status == "True"
                                               for c in (core.read_node(n).status.conditions or [])))
        print(f"node {name} Ready")
    wait("the default ServiceAccount", lambda: core.read_namespaced_service_account("default", "default") is not None)
    print("ServiceAccount default/default exists")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
