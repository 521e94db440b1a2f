"""Which way a Kubernetes placement's manifests reach the cluster.

* ``pulumi-kubernetes``: the program declares the manifests as
  ``kubernetes:yaml/v2:ConfigGroup`` resources of the pulumi-kubernetes provider
  (``stacks/kubernetes/program.py``), when its resource plugin is installed
  where the engine looks (``skyplan plugins install`` / ``$PULUMI_HOME/plugins``);
  a ``KubeScheduled`` dynamic resource then waits for the pods to be placed.
* ``client``: a ``KubeWorkload`` dynamic resource (``provider.py``) applies the
  same manifests with the Kubernetes Python client (server-side apply) and waits
  for the pods, where the plugin is missing (this repository's CI and tests).

Either way the stack holds the workload, so failover, the journal and ``down``
treat it like any other placement. ``SKYPLAN_K8S_APPLY=pulumi-kubernetes|client``
forces one.
"""

from __future__ import annotations

import os

PLUGIN = "pulumi-kubernetes"
CLIENT = "client"


def use_plugin() -> bool:
    forced = os.environ.get("SKYPLAN_K8S_APPLY", "").strip()
    if forced in (PLUGIN, CLIENT):
        return forced == PLUGIN
    from skyplan.clouds.plugins import plugin_status

    return plugin_status("kubernetes", "pulumi-kubernetes").installed


def apply_path() -> str:
    """How this machine applies manifests, in words (for preflight and doctor)."""
    if use_plugin():
        return "pulumi-kubernetes (resource plugin installed)"
    return "the Kubernetes Python client, through a dynamic provider (pulumi-kubernetes' plugin is not installed)"
