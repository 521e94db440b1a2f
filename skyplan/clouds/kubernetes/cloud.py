"""The kubernetes cloud: clusters you already have, named in the config file.

``resources: {cloud: kubernetes, region: NAME}`` places a task on the cluster
``NAME`` of ``kubernetes.contexts`` (``config.py``). Its offers come from the
cluster's live nodes and Karpenter NodePools (``discovery.py``), priced from the
VM catalog where the instance type is known. The task becomes a JobSet, a
KubeRay RayJob or a batch Job, built by a pure renderer (``render.py``) with the
flavor's spot selectors and tolerations (``flavors.py``, seed 004), and applied
by ``stacks/kubernetes/program.py``. A cluster is the region: there are no
zones, and a pod the scheduler cannot place (``FailedScheduling``) is a capacity
failure of that cluster, so failover moves on (``classify.py``). Like ``ssh``,
it is a candidate only when a task names it (``any_of`` mixes it with VM clouds).

Importing this module must stay cheap (the registry reads ``capabilities`` on
the plan path): the Kubernetes client and Pulumi are imported inside methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

from skyplan.clouds.capabilities import Capabilities, CloudBase
from skyplan.errors import Classification

if TYPE_CHECKING:
    from skyplan.catalog.model import Offer
    from skyplan.clouds.base import LogSource, PreflightResult, ProvisionRequest


class Kubernetes(CloudBase):
    name = "kubernetes"
    display = "Kubernetes"
    capabilities = Capabilities(
        has_zones=False,
        offers_spot=True,
        multi_node=True,
        from_catalog=False,
        default_candidate=False,
        has_log_source=True,
        # An interrupted create is removed by name (``resolve_interrupted``), but listing what
        # every cluster holds for a stack prefix (``leftovers``) is not done: not proven.
        proves_interrupted=False,
        # Buckets: the cluster's CSI drivers mount them; the program picks the store per flavor.
        bucket_store="program",
    )
    takes_config = True

    # --- config and offers -------------------------------------------------------------------

    def check_config(self, section: Any, config: Any, path: tuple[Any, ...]) -> list[Any]:
        from skyplan.clouds.kubernetes.config import check

        return check(section, config, path)

    def own_offers(self) -> tuple[Offer, ...]:
        """The offers of every configured cluster that can be read. InputError when the
        config file names no cluster (a task on this cloud could go nowhere); a
        cluster that cannot be read gives none (``discovery.problems``)."""
        from skyplan.clouds.kubernetes.config import clusters
        from skyplan.clouds.kubernetes.discovery import cluster_offers

        found = clusters()
        if not found:
            from skyplan.config import config_path
            from skyplan.errors import InputError

            raise InputError(f"a task on the kubernetes cloud needs a cluster, and {config_path()} names none",
                             hint="add `kubernetes: {contexts: {NAME: {kubeconfig: PATH, context: CTX, "
                                  "flavor: eks|aks|gke|generic}}}` to it (README: Kubernetes), then name the "
                                  "cluster as the task's region")
        out: list[Offer] = []
        for cluster in found.values():
            out.extend(cluster_offers(cluster))
        return tuple(out)

    # --- errors ----------------------------------------------------------------------------------

    def classify(self, message: str) -> Classification:
        from skyplan.clouds.kubernetes.classify import classify

        return classify(message)

    def sample_error(self, outcome: str, request: ProvisionRequest) -> str:
        from skyplan.clouds.kubernetes.classify import sample_error

        return sample_error(outcome, request)

    # --- the program and its checks ------------------------------------------------------------

    def program(self, request: ProvisionRequest) -> Callable[[], None]:
        def run() -> None:
            from skyplan.clouds import programs

            programs.load(self.name).build(request)

        return run

    def preflight(self) -> PreflightResult:
        """Clusters are named in the config file, and each one's kubeconfig exists.
        No network: whether a cluster answers is discovery's question."""
        import os

        from skyplan.clouds.base import PreflightResult
        from skyplan.clouds.kubernetes.config import clusters
        from skyplan.clouds.kubernetes.applypath import apply_path

        found = clusters()
        if not found:
            from skyplan.config import config_path

            return PreflightResult(False, reason=f"no Kubernetes clusters in {config_path()}",
                                   fix="add `kubernetes: {contexts: {NAME: {kubeconfig, context, flavor}}}` "
                                       "to the config file (README: Kubernetes)")
        missing = [f"{c.name} ({c.kubeconfig})" for c in found.values() if not os.path.isfile(c.kubeconfig)]
        if len(missing) == len(found):
            return PreflightResult(False, reason="no cluster's kubeconfig exists: " + ", ".join(missing),
                                   fix="point each cluster's `kubeconfig` at a kubeconfig file")
        return PreflightResult(True, details={"credentials": f"{len(found) - len(missing)} cluster(s) with a "
                                                             "kubeconfig",
                                              "plugin": apply_path()})

    # --- what it holds -----------------------------------------------------------------------------

    def log_source(self, outputs: Mapping[str, Any]) -> LogSource | None:
        from skyplan.clouds.kubernetes.logs import pod_logs

        return pod_logs(outputs)

    def node_state(self, outputs: Mapping[str, Any]) -> str:
        """``gone`` when the workload object is deleted, ``running`` while one of its
        pods runs or waits for a node (the workload restarts evicted pods itself),
        else ``unknown``; ``unknown`` for outputs of another cloud or an unreachable cluster."""
        from skyplan.clouds.kubernetes.logs import pod_logs

        source = pod_logs(outputs)
        if source is None or not outputs.get("name") or not outputs.get("api_version"):
            return "unknown"
        try:
            from skyplan.clouds.kubernetes import client

            api = client.api_client(str(outputs["kubeconfig"]), str(outputs["context"]))
            try:
                manifest = {"apiVersion": outputs["api_version"], "kind": outputs["kind"],
                            "metadata": {"name": outputs["name"], "namespace": outputs["namespace"]}}
                if not client.exists(api, manifest):
                    return "gone"
            finally:
                api.close()
            status = source.status() or {}
        except Exception:  # must not raise: the controller asks about any stack
            return "unknown"
        return "running" if status.get("phase") in ("run", "starting") else "unknown"

    def resolve_interrupted(self, op: Any) -> bool:
        """A workload whose create the engine never saw finish: its objects are
        removed by name (the resource's inputs say where)."""
        from skyplan.clouds.kubernetes.provider import resolve_interrupted

        return resolve_interrupted(str(getattr(op, "type", "")), getattr(op, "inputs", None) or {})
