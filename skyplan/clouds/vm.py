"""What the VM programs (``stacks/<cloud>/program.py`` of the provider clouds) share,
without importing any Pulumi module:

* :func:`startup_script`: the boot script a VM runs as root, which does only what
  must be done as root at boot (the file mounts' destinations at absolute paths,
  made the login user's), then leaves :data:`BOOT_MARKER`. The task itself is
  synced, started and watched over SSH by the node runtime after ``up``
  (``skyplan.provision.nodes``), so neither the task nor its envs and secrets
  are in the instance's metadata any more;
* :func:`authorized_key`: the cluster's SSH public key, checked to be one;
* :func:`bucket_lines`: the boot script's part that mounts the task's buckets
  (``skyplan.clouds.buckets``) at their destinations, with the cloud's own FUSE
  client (each program says how to install it and how to mount one bucket);
* :func:`node_name` / :func:`skyplan_labels` / :func:`all_ports`: names, labels
  and ports every program uses.
"""

from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from skyplan.clouds.base import ProvisionRequest

#: Left by the boot script when its root work is done: the runtime waits for it
#: before syncing (a file mount's destination must be the login user's first).
BOOT_MARKER = "/var/lib/skyplan/boot-done"

#: The port the runtime reaches a node's sshd on.
SSH_PORT = 22

#: How long the boot script waits for the login user to exist (GCP's guest agent
#: creates the user named in the ``ssh-keys`` metadata while the script runs).
USER_WAIT_S = 300

#: How long the boot script waits for a GPU driver that the image installs at first
#: boot (``gpu_driver_wait``), seconds: the marker then tells the runtime the GPUs work.
GPU_DRIVER_WAIT_S = 300

#: Ports every VM opens besides the task's own: SSH, so a node can be reached.
BASE_PORTS = (SSH_PORT,)

#: Root disk when the task asks for none, in GB (fits the GPU images, which are large).
DEFAULT_DISK_GB = 100

#: How long the boot script keeps trying to mount a bucket, seconds: the grant that
#: lets the instance's identity reach a bucket made in the same update takes a while
#: to be seen (IAM is eventually consistent on every cloud).
BUCKET_MOUNT_WAIT_S = 300

#: The tag/label a bucket that skyplan created carries: the managed job it belongs
#: to ("" : none), so that the job's end deletes it (``skyplan.jobs.buckets``).
OWNER_TAG = "skyplan-owner"


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


_PUBLIC_KEY = re.compile(r"(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+=*( [^\n]*)?")


def authorized_key(request: ProvisionRequest) -> str:
    """The cluster's SSH public key, as the program authorises it for the login user.

    A VM that no key reaches is useless to skyplan (the task is started over SSH),
    so a request without one is a program error; and anything but a single
    OpenSSH public-key line (a private key pasted by mistake) is refused, so no
    private key can reach a resource input or the Pulumi state."""
    key = (request.ssh_public_key or "").strip()
    if not key:
        raise ValueError(f"{request.stack}: no SSH public key for the cluster's nodes (ProvisionRequest.ssh_public_key)")
    if not _PUBLIC_KEY.fullmatch(key):
        raise ValueError(f"{request.stack}: ssh_public_key is not a single OpenSSH public key line")
    return key


def _absolute_mounts(request: ProvisionRequest) -> list[tuple[str, bool]]:
    """(destination, is a directory) of the file mounts at absolute paths: the ones a
    non-root login user cannot create. ``~/x`` and relative ones live in the
    workdir, which the runtime creates itself."""
    import os

    out = []
    for dst, src in sorted(request.file_mounts.items()):
        if dst.startswith("/") and dst.rstrip("/"):
            out.append((dst.rstrip("/"), os.path.isdir(src)))
    return out


def bucket_owners(request: ProvisionRequest) -> dict[str, str]:
    """Each bucket's name -> the managed job a bucket made now is recorded for ("" : none)."""
    return {str(b["name"]): str(b.get("owner") or "") for b in request.buckets}


def bucket_lines(request: ProvisionRequest, login_user: str, install: list[str],
                 mount: Callable[[dict, str, str], str]) -> list[str]:
    """The boot script's lines that mount each of the request's buckets at its
    (absolute) destination: ``install`` once (the FUSE client; each line idempotent),
    then per bucket its mountpoint (an empty directory the login user owns) and
    ``mount(bucket, uid_expr, gid_expr)``, the cloud's mount command, retried for
    up to ``BUCKET_MOUNT_WAIT_S`` and skipped when already mounted (GCP runs the
    script at every boot). The files in it are the login user's. No line fails the
    script: a bucket that cannot be mounted leaves its directory empty, which the
    task sees (and the runtime's boot marker still comes)."""
    if not request.buckets:
        return []
    user = shlex.quote(login_user)
    uid, gid = f"$(id -u {user})", f"$(id -g {user})"
    lines = [f"for _ in $(seq {USER_WAIT_S}); do id -u {user} >/dev/null 2>&1 && break; sleep 1; done",
             "export DEBIAN_FRONTEND=noninteractive", *install]
    for b in request.buckets:
        dst = shlex.quote(str(b["dst"]).rstrip("/"))
        lines += [
            f"install -d -m 0755 {dst} && chown {user}: {dst}",
            f"for _ in $(seq {BUCKET_MOUNT_WAIT_S // 10}); do mountpoint -q {dst} && break; "
            f"{mount(dict(b), uid, gid)} && break; sleep 10; done || true",
        ]
    return lines


def startup_script(request: ProvisionRequest, rank: int, login_user: str, *, gpu_driver_wait: bool = False,
                   buckets: list[str] | None = None) -> str:
    """The boot script of node ``rank``: root-at-boot work only, then the marker.

    It makes each file mount's absolute destination exist and belong to
    ``login_user`` (a directory for a directory source, an empty file for a file
    source, which the runtime then writes in place), after waiting (bounded) for
    that user to exist. ``gpu_driver_wait`` (an image that installs its GPU driver
    at first boot, for a task with GPUs): the marker waits, at most
    ``GPU_DRIVER_WAIT_S``, for ``nvidia-smi`` to answer, so the task does not start
    before its GPUs can be used (past the bound it starts anyway, and says why
    if it needs them). Idempotent: GCP runs it at every boot. It holds no task,
    env or secret: those reach the node over SSH, through the runtime's stdin.
    """
    user = shlex.quote(login_user)
    lines = [
        "#!/bin/bash",
        f"# skyplan: cluster {request.cluster}, stack {request.stack}, node {rank}: root work at boot only; the task",
        "# is synced and started over SSH by skyplan's node runtime once this script has left its marker.",
        "set -eu",
    ]
    mounts = _absolute_mounts(request)
    if mounts:
        lines += [
            f"for _ in $(seq {USER_WAIT_S}); do id -u {user} >/dev/null 2>&1 && break; sleep 1; done",
        ]
        for dst, is_dir in mounts:
            q = shlex.quote(dst)
            if is_dir:
                lines.append(f"install -d -m 0755 {q} && chown {user}: {q}")
            else:
                parent = shlex.quote(dst.rsplit("/", 1)[0] or "/")
                lines.append(f"install -d -m 0755 {parent} && {{ [ -e {q} ] || install -m 0644 /dev/null {q}; }} "
                             f"&& chown {user}: {q}")
    if gpu_driver_wait and request.accelerators:
        lines.append(f"for _ in $(seq {GPU_DRIVER_WAIT_S // 5}); do nvidia-smi >/dev/null 2>&1 && break; sleep 5; done")
    if buckets:
        # Before the marker: the runtime starts the task once its buckets are mounted.
        lines += ["set +e", *buckets, "set -e"]
    lines += [f"install -d -m 0755 {shlex.quote(BOOT_MARKER.rsplit('/', 1)[0])}", f"touch {BOOT_MARKER}"]
    return "\n".join(lines) + "\n"


def startup_input(request: ProvisionRequest, rank: int, login_user: str,
                  encode: Callable[[str], str] | None = None, *, gpu_driver_wait: bool = False,
                  buckets: list[str] | None = None) -> str:
    """The boot script of node ``rank`` as a resource input, passed through
    ``encode`` (e.g. base64). Plain text: it holds nothing secret (``buckets``:
    the lines of ``bucket_lines``; the instance's own identity reaches them)."""
    script = startup_script(request, rank, login_user, gpu_driver_wait=gpu_driver_wait, buckets=buckets)
    return encode(script) if encode is not None else script
