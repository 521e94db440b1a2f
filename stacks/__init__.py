"""Pulumi programs, one package per cloud (``stacks.<cloud>.program.build(request)``).

This module holds what the cloud VM programs share and what a cloud's preflight
asks about them, without importing any Pulumi module:

* :func:`startup_script`: the boot script a VM runs (cd workdir, export envs and
  ``SKYPLAN_*``, run ``setup`` then ``run``, log to a file);
* :func:`plugin_status`: is the Pulumi resource plugin a program needs installed?
* :func:`node_name` / :func:`skyplan_labels`: names and labels every program uses.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from skyplan.clouds.base import ProvisionRequest

#: Where a VM keeps the task: its working directory and its log.
REMOTE_ROOT = "/opt/skyplan"
REMOTE_WORKDIR = f"{REMOTE_ROOT}/workdir"
REMOTE_LOG = f"{REMOTE_ROOT}/task.log"

#: Ports every VM opens besides the task's own: SSH, so a node can be reached.
BASE_PORTS = (22,)

#: Root disk when the task asks for none, in GB (fits the GPU images, which are large).
DEFAULT_DISK_GB = 100


def node_name(request: ProvisionRequest, rank: int) -> str:
    """The logical and cloud name of node ``rank``: ``<stack>-<rank>`` (lowercase, dashes)."""
    base = re.sub(r"[^a-z0-9-]+", "-", request.stack.lower()).strip("-") or "skyplan"
    return f"{base}-{rank}"


def skyplan_labels(request: ProvisionRequest) -> dict[str, str]:
    """The task's labels plus the two every resource carries: cluster and stack."""
    labels = {str(k): str(v) for k, v in request.labels.items()}
    labels["skyplan-cluster"] = request.cluster
    labels["skyplan-stack"] = request.stack
    return labels


def all_ports(request: ProvisionRequest) -> list[int]:
    """SSH plus the task's ports, sorted, without duplicates."""
    return sorted({*BASE_PORTS, *(int(p) for p in request.ports)})


def _heredoc(name: str, body: str) -> str:
    # A quoted delimiter keeps the body literal; derive it from the body so the body cannot contain it.
    tag = "SKYPLAN_" + name.upper() + "_" + hashlib.sha256(body.encode()).hexdigest()[:12]
    return f"cat > {REMOTE_ROOT}/{name}.sh <<'{tag}'\n{body.rstrip(chr(10))}\n{tag}\n"


def startup_script(request: ProvisionRequest, rank: int) -> str:
    """The boot script of node ``rank``: setup, then run (only if setup succeeded), logged.

    The task's envs are exported first; the ``SKYPLAN_*`` variables (task id = the
    stack, cluster, node rank, number of nodes) override them, as on the local cloud.

    The local workdir is not copied to the VM by this script: the task runs in
    ``REMOTE_WORKDIR``, which a later sync step fills.
    """
    envs = {str(k): "" if v is None else str(v) for k, v in request.envs.items()}
    envs.update(
        SKYPLAN_TASK_ID=request.stack,
        SKYPLAN_CLUSTER=request.cluster,
        SKYPLAN_NODE_RANK=str(rank),
        SKYPLAN_NUM_NODES=str(max(1, int(request.num_nodes))),
    )
    lines = [
        "#!/bin/bash",
        f"# skyplan: cluster {request.cluster}, stack {request.stack}, node {rank}",
        "set -u",
        f"mkdir -p {REMOTE_WORKDIR}",
        f"LOG={REMOTE_LOG}",
    ]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in sorted(envs.items()) if re.fullmatch(r"[A-Za-z_]\w*", k)]
    script = "\n".join(lines) + "\n"
    script += _heredoc("setup", request.setup or "true")
    script += _heredoc("run", request.run or "true")
    script += (
        f"cd {REMOTE_WORKDIR}\n"
        'echo "== setup $(date -u +%FT%TZ)" >> "$LOG"\n'
        f'bash {REMOTE_ROOT}/setup.sh >> "$LOG" 2>&1\n'
        "rc=$?\n"
        f"echo $rc > {REMOTE_ROOT}/setup.rc\n"
        'if [ "$rc" -ne 0 ]; then echo "== setup failed ($rc): run skipped" >> "$LOG"; exit "$rc"; fi\n'
        'echo "== run $(date -u +%FT%TZ)" >> "$LOG"\n'
        f'bash {REMOTE_ROOT}/run.sh >> "$LOG" 2>&1\n'
        "rc=$?\n"
        f"echo $rc > {REMOTE_ROOT}/run.rc\n"
        'echo "== done ($rc)" >> "$LOG"\n'
    )
    return script


# --- Pulumi resource plugins ----------------------------------------------------------------


@dataclass(frozen=True)
class PluginStatus:
    """Whether a Pulumi resource plugin is installed where the engine looks for it."""

    provider: str  # "aws", "gcp", "azure-native"
    package: str  # "pulumi-aws"
    version: str | None  # the Python SDK's version, which names the plugin it needs
    path: str | None  # the plugin's directory or binary, when found
    reason: str = ""  # why not, when not found

    @property
    def installed(self) -> bool:
        return self.path is not None

    @property
    def install_hint(self) -> str:
        if self.version is None:
            return f"pip install {self.package}"
        prefix = "" if os.environ.get("PULUMI_HOME") else f"PULUMI_HOME={pulumi_home()} "
        return f"{prefix}pulumi plugin install resource {self.provider} v{self.version}"


def pulumi_home() -> Path:
    """Where the engine looks for plugins: the same rule as the stack driver."""
    from skyplan.home import pulumi_home as _pulumi_home

    return _pulumi_home()


def plugin_status(provider: str, package: str) -> PluginStatus:
    """Find the resource plugin ``provider`` at the version the installed ``package`` needs.

    The engine looks in ``$PULUMI_HOME/plugins/resource-<provider>-v<version>/``
    and for ``pulumi-resource-<provider>`` on PATH. No network.
    """
    try:
        version: str | None = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return PluginStatus(provider, package, None, None, f"the Python package {package} is not installed")
    binary = f"pulumi-resource-{provider}"
    plugin_dir = pulumi_home() / "plugins" / f"resource-{provider}-v{version}"
    if (plugin_dir / binary).is_file() or ((plugin_dir.is_dir()) and any(plugin_dir.glob(binary + "*"))):
        return PluginStatus(provider, package, version, str(plugin_dir))
    on_path = shutil.which(binary)
    if on_path:
        return PluginStatus(provider, package, version, on_path)
    others = sorted(p.name for p in (pulumi_home() / "plugins").glob(f"resource-{provider}-v*")
                    if p.is_dir() and not p.name.endswith(".partial"))
    found = f" (found {', '.join(others)})" if others else ""
    return PluginStatus(provider, package, version, None,
                        f"the Pulumi resource plugin {provider} v{version} is not installed{found}")
