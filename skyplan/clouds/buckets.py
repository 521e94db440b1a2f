"""Checkpoint buckets: ``file_mounts`` entries ``{name: B, mode: MOUNT}``.

A bucket outlives every cluster that mounts it: a managed job's relaunch after a
preemption mounts the same bucket (same name, same data) at the same path.

Where a bucket is, by what the cloud declares (``Capabilities.bucket_store``):

* ``"dir"`` (local, sim, ssh): a directory beside the node sandboxes,
  ``<base>/buckets/<B>`` (``<base>``: the skyplan home here, ``~/.skyplan`` on
  an ssh host), that each node sees at the exact path it asked for through a bind
  mount in a private mount namespace of its own (the sandbox runner,
  ``skyplan.clouds.local.runner``). Any ``store:`` is accepted: the directory
  stands in for it. A machine that cannot give a node such a namespace refuses
  the launch before anything exists (``check_buckets``).
* ``"s3"`` / ``"gcs"`` / ``"azure"`` (the provider clouds): the program creates
  the bucket when it does not exist, kept when the cluster's stack is destroyed
  (``retain_on_delete``), or attaches the existing one, and the VM's boot script
  mounts it (Mountpoint for S3, gcsfuse, blobfuse2) with the instance's own
  identity (``stacks/<cloud>/program.py``, ``skyplan.clouds.vm``). ``store:``,
  when given, must be the cloud's own.
* None: the cloud cannot mount buckets; a task with one is refused.

Ownership: whoever creates a bucket records who it belongs to: the managed job
whose task launched it (``OWNER_ENV`` in the task's envs, set by the jobs
executor), else nobody. ``skyplan.jobs.buckets.release`` deletes, at the end
of a job, the buckets that job created, and keeps every other (one the user
made, or that existed before the job). The record: on ``"dir"`` clouds the file
``<base>/buckets/.<B>.json`` written when the directory is made; on the
provider clouds the bucket's ``skyplan-owner`` tag/label.

No cloud is named here: clouds say what they store in their capabilities.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from skyplan.errors import InputError

#: The task env that names the managed job a launch belongs to: a bucket it
#: creates is that job's (``skyplan.jobs.buckets.release``).
OWNER_ENV = "SKYPLAN_JOB_ID"

#: ``Capabilities.bucket_store`` of clouds whose buckets are directories on the node's machine.
DIR_STORE = "dir"

#: What every store accepts (S3, GCS and Azure Blob containers alike): 3-63
#: lowercase letters, digits and single hyphens, a letter or digit at each end.
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]")


@dataclass(frozen=True)
class Bucket:
    """One bucket mount of a task: where (``dst``), which (``name``) and, if the
    task said so, in which store (``store``)."""

    dst: str
    name: str
    store: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"dst": self.dst, "name": self.name, "store": self.store}


def is_bucket(mount: Any) -> bool:
    """A file mount that is a bucket: no source, and mode MOUNT (or none: SkyPilot's default)."""
    return mount.source is None and (mount.mode or "MOUNT").upper() == "MOUNT"


def task_buckets(task: Any) -> tuple[Bucket, ...]:
    """The task's bucket mounts, by destination. A bucket without a name is
    kept with name "" (``check_buckets`` refuses it)."""
    return tuple(Bucket(m.dst, m.name or "", (m.store or "").lower() or None)
                 for m in sorted(task.file_mounts, key=lambda m: m.dst) if is_bucket(m))


def owner_of(envs: Mapping[str, Any]) -> str:
    """Who a bucket created by a launch with these task envs belongs to ("" : nobody)."""
    value = envs.get(OWNER_ENV)
    return "" if value is None else str(value)


def release_here(names: Any, owner: str, since: float) -> tuple[str, ...]:
    """``CloudBase.release_buckets`` of the clouds whose buckets are directories
    under this machine's skyplan home (``<home>/buckets``)."""
    from skyplan import home
    from skyplan.clouds.local import runner

    base = home.home()
    out = []
    for name in names:
        try:
            if runner.release_bucket(base, name, owner, since):
                out.append(name)
        except (OSError, runner.SandboxError):
            continue  # kept: the next release tries again
    return tuple(out)


def check_names(buckets: tuple[Bucket, ...]) -> None:
    """InputError for a bucket without a name, with a name no store accepts, or
    a destination two mounts share."""
    seen: dict[str, str] = {}
    for b in buckets:
        if not b.name:
            raise InputError(f"file_mounts '{b.dst}': a bucket (mode MOUNT) needs a name",
                             hint="write `{name: my-bucket, mode: MOUNT}`; nothing was created")
        if not _NAME.fullmatch(b.name):
            raise InputError(f"file_mounts '{b.dst}': bucket name '{b.name}' is not one every store accepts",
                             hint="use 3-63 lowercase letters, digits and single hyphens, starting and ending "
                                  "with a letter or digit; nothing was created")
        if b.dst.rstrip("/") in ("", "~"):
            raise InputError(f"file_mounts '{b.dst}': a bucket cannot be mounted over the root or the home",
                             hint="mount it at a path of its own, e.g. /checkpoint; nothing was created")
        seen[b.dst] = b.name


def check_buckets(task: Any, clouds: list[Any]) -> None:
    """What a launch of ``task`` on candidates of ``clouds`` (``Cloud`` objects)
    needs for its buckets, before anything exists; else InputError naming the
    cloud and a next step. A cloud whose buckets are directories and runs here
    (``runs_here``) is checked on this machine: a private mount namespace, and
    every absolute mountpoint makeable (``runner.namespace_problem``,
    ``runner.mountpoint_problem``). An ssh host is checked when its node starts
    (its launch fails there with the reason, and failover moves on)."""
    buckets = task_buckets(task)
    if not buckets:
        return
    check_names(buckets)
    from skyplan.clouds.local import runner

    for cloud in clouds:
        store = cloud.capabilities.bucket_store
        if store is None:
            raise InputError(f"file_mounts {', '.join(repr(b.dst) for b in buckets)}: {cloud.display} cannot "
                             "mount a bucket", hint="run the task on a cloud that can (see the README's "
                                                    "\"Checkpoint buckets\"); nothing was created")
        if store != DIR_STORE:
            for b in buckets:
                if not b.dst.startswith("/"):
                    # The VM's sandbox is replaced at each sync: a bucket mounted in it would be emptied.
                    raise InputError(f"file_mounts '{b.dst}': {cloud.display} mounts a bucket at an absolute "
                                     "path only", hint=f"mount it at e.g. /{b.name}; nothing was created")
                if b.store and b.store != store:
                    raise InputError(f"file_mounts '{b.dst}': bucket '{b.name}' is in store '{b.store}', which "
                                     f"{cloud.display} does not mount (its store is '{store}')",
                                     hint="drop `store:` to use each cloud's own store, or run the task where "
                                          "that store is; nothing was created")
            continue
        if not cloud.capabilities.runs_here:
            continue
        problem = runner.namespace_problem()
        if problem is None:
            problem = next((f"bucket '{b.name}' at {b.dst}: {why}" for b in buckets if b.dst.startswith("/")
                            and (why := runner.mountpoint_problem(b.dst))), None)
        if problem:
            raise InputError(f"file_mounts {', '.join(repr(b.dst) for b in buckets)}: {cloud.display} mounts a "
                             "bucket at its exact path in a private mount namespace of the node's own, and this "
                             f"machine cannot: {problem}",
                             hint="run as root, or enable unprivileged user namespaces "
                                  "(sysctl kernel.unprivileged_userns_clone=1) with util-linux installed; "
                                  "or run the task on a cloud; nothing was created")
