"""What the VM programs (``stacks/<cloud>/program.py`` of the provider clouds) share,
without importing any Pulumi module:

* :func:`startup_script`: the boot script a VM runs (cd workdir, export envs,
  secrets and ``SKYPLAN_*``, run ``setup`` then ``run``, log to a file), and
  :func:`startup_input`, the same as a program input: a Pulumi secret when the
  task has secrets, since their values are in it;
* :func:`node_name` / :func:`skyplan_labels` / :func:`all_ports`: names, labels
  and ports every program uses.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from typing import TYPE_CHECKING, Any, Callable

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

    The task's envs are exported first, then its secrets; the ``SKYPLAN_*``
    variables (task id = the stack, cluster, node rank, number of nodes) override
    them, as on the local cloud. The script holds the secrets' values: pass it to
    a resource through :func:`startup_input`, never as plain text.

    The local workdir is not copied to the VM by this script: the task runs in
    ``REMOTE_WORKDIR``, which a later sync step fills.
    """
    envs = {str(k): "" if v is None else str(v) for k, v in request.envs.items()}
    envs.update(request.secrets)
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


def startup_input(request: ProvisionRequest, rank: int, encode: Callable[[str], str] | None = None) -> Any:
    """The boot script of node ``rank`` (passed through ``encode``, e.g. base64) as
    a resource input: a Pulumi secret when the task has secrets, so the backend
    stores it encrypted with the stack's passphrase and the engine shows
    ``[secret]``. The cloud still holds it in the instance's metadata, readable
    by whoever may read that instance's user data."""
    script = startup_script(request, rank)
    if encode is not None:
        script = encode(script)
    if not request.secrets:
        return script
    import pulumi

    return pulumi.Output.secret(script)
