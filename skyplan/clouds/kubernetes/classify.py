"""Kubernetes error text -> kind and scope. Rows are ordered specific to generic.

Texts come from the scheduler (a pod's ``PodScheduled=False`` condition and its
``FailedScheduling`` event: ``0/3 nodes are available: 1 Insufficient
nvidia.com/gpu, ...``), from the API server (``HTTP 403``, ``422 ... is
invalid``), from the Kubernetes client (a cluster that cannot be reached) and
from skyplan's own checks, whose texts start with a ``Kube*`` code
(``client.py``, ``render.py``). The region of a Kubernetes placement is the
cluster: a verdict of ``Scope.REGION`` moves failover to the next cluster or
cloud.
"""

from __future__ import annotations

from skyplan.clouds.base import ProvisionRequest
from skyplan.clouds.classify import GENERIC_TRANSIENT, Rule, TableClassifier, sample_from
from skyplan.errors import Classification, Kind, Scope

C, Q, A, I, T = Kind.CAPACITY, Kind.QUOTA, Kind.AUTH, Kind.INVALID, Kind.TRANSIENT

RULES: tuple[Rule, ...] = (
    # --- capacity: no node can take the pod now ---------------------------------------------------
    Rule("FailedScheduling", C, Scope.REGION, codes=("KubeFailedScheduling", "FailedScheduling"),
         pattern=r"\d+/\d+ nodes are available|Insufficient (?:cpu|memory|nvidia\.com/gpu|[\w./-]+)"
                 r"|didn't match Pod's node affinity/selector|untolerated taint",
         why="the cluster has no free node of this kind: try the next cluster or cloud"),
    Rule("KubeScheduleTimeout", C, Scope.REGION, codes=("KubeScheduleTimeout",),
         why="no node was provisioned in time (a NodePool that cannot grow)"),
    Rule("KubeUnreachable", C, Scope.REGION, codes=("KubeUnreachable",),
         pattern=r"Max retries exceeded|Connection refused|Failed to establish a new connection"
                 r"|timed out|Name or service not known",
         why="the cluster's API server cannot be reached: another cluster may be"),
    Rule("Evicted", C, Scope.REGION, codes=("Evicted", "Preempted", "DisruptionTarget"),
         why="the pod lost its node while it started"),
    # --- quota: a namespace's ResourceQuota --------------------------------------------------------
    Rule("ExceededQuota", Q, Scope.REGION, pattern=r"exceeded quota|ResourceQuota",
         why="the namespace's quota on this cluster"),
    # --- transient -----------------------------------------------------------------------------------------
    Rule("KubeThrottled", T, Scope.NONE, codes=("KubeThrottled", "TooManyRequests")),
    Rule("KubeConflict", T, Scope.NONE, codes=("KubeConflict",),
         why="an object changed while it was written: the same apply again"),
    # --- auth ----------------------------------------------------------------------------------------
    Rule("KubeUnauthorized", A, Scope.REGION, codes=("KubeUnauthorized", "Unauthorized"),
         why="the kubeconfig's credentials for this cluster"),
    Rule("KubeForbidden", A, Scope.REGION, codes=("KubeForbidden", "Forbidden"), pattern=r"HTTP 403|forbidden:"),
    Rule("KubeConfigInvalid", A, Scope.REGION, codes=("KubeConfigInvalid",),
         why="this cluster's kubeconfig or context"),
    # --- invalid -------------------------------------------------------------------------------------------
    Rule("KubeWorkdirUnsupported", I, Scope.CLOUD, codes=("KubeWorkdirUnsupported",),
         why="no Kubernetes cluster can take a local workdir: the next cloud may"),
    Rule("KubeOperatorMissing", I, Scope.REGION, codes=("KubeOperatorMissing",),
         pattern=r"no matches for kind|the server could not find the requested resource",
         why="this cluster lacks the operator (CRD); another cluster may have it"),
    Rule("KubeSpotUnsupported", I, Scope.REGION, codes=("KubeSpotUnsupported",)),
    Rule("KubeMountUnsupported", I, Scope.REGION, codes=("KubeMountUnsupported",)),
    Rule("ImagePull", I, Scope.REGION, codes=("ErrImagePull", "ImagePullBackOff", "InvalidImageName")),
    Rule("KubeInvalid", I, Scope.REGION, codes=("KubeInvalid",), pattern=r"HTTP 422|is invalid:",
         why="the cluster's API server refused the manifest (its version or admission policy)"),
    *GENERIC_TRANSIENT,
)

CLASSIFIER = TableClassifier("kubernetes", RULES)

SAMPLES: dict[str, str] = {
    "capacity": ("KubeFailedScheduling: pod {stack}-0-x7k2p in default: FailedScheduling: 0/3 nodes are available: "
                 "1 Insufficient nvidia.com/gpu, 2 node(s) didn't match Pod's node affinity/selector. "
                 "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."),
    "quota": ('KubeForbidden: HTTP 403: pods "{stack}-0" is forbidden: exceeded quota: compute, requested: '
              "requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=4, limited: requests.nvidia.com/gpu=4"),
    "auth": "KubeUnauthorized: HTTP 401: Unauthorized",
    "invalid": ('KubeInvalid: HTTP 422: Job.batch "{stack}" is invalid: spec.template.spec.containers[0].image: '
                "Required value"),
    "transient": "KubeThrottled: HTTP 429: Too Many Requests",
}


def classify(message: str) -> Classification:
    return CLASSIFIER.classify(message)


def sample_error(outcome: str, request: ProvisionRequest) -> str:
    template = SAMPLES.get(outcome, f"kubernetes: simulated {outcome} failure for {{stack}}")
    return sample_from(template, stack=request.stack, region=request.region)
