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
* ``"program"``: the program picks the store for the placement (a Kubernetes
  cluster's CSI drivers) and refuses one it cannot mount.
* None: the cloud cannot mount buckets; a task with one is refused.

Named and job buckets (seed 003: "the bucket will be created during the job
running time, and cleaned up after the job finishes"):

* a bucket **the user named** (``{name: B, mode: MOUNT}``) is created when it
  does not exist and is never deleted by skyplan: it is the user's, and so are
  the checkpoints in it;
* a bucket **without a name** (``{mode: MOUNT}``, as seed 003's bert_qa.yaml
  leaves it) is made *for a managed job*: its name comes from the task's
  ``SKYPLAN_TASK_ID`` (the same across recoveries, unique per pipeline task)
  and the destination (``job_bucket_name``), it is recorded as the job's when
  created (``SKYPLAN_JOB_ID``: on ``"dir"`` clouds the file
  ``<base>/buckets/.<B>.json`` written when the directory is made; on the
  provider clouds the bucket's ``skyplan-owner`` tag/label), and
  ``skyplan.jobs.buckets.release`` deletes it when the job ends. Outside a
  managed job a bucket needs a name.

No cloud is named here: clouds say what they store in their capabilities.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from skyplan.errors import InputError

#: The task env that names the managed job a launch belongs to: a bucket made for
#: it is that job's (``skyplan.jobs.buckets.release``).
OWNER_ENV = "SKYPLAN_JOB_ID"
#: The task env that identifies a managed task across its recoveries: names its job buckets.
TASK_ID_ENV = "SKYPLAN_TASK_ID"

#: ``Capabilities.bucket_store`` of clouds whose buckets are directories on the node's machine.
DIR_STORE = "dir"
#: ``Capabilities.bucket_store`` of clouds whose program picks the store per placement (a
#: Kubernetes cluster's CSI drivers) and refuses, itself, a store it cannot mount.
PROGRAM_STORE = "program"

#: What every store accepts (S3, GCS and Azure Blob containers alike): 3-63
#: lowercase letters, digits and single hyphens, a letter or digit at each end.
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]")


@dataclass(frozen=True)
class Bucket:
    """One bucket mount of a task: where (``dst``), which (``name``), if the task
    said so in which store (``store``), and the managed job it is made for
    (``owner``: "" for a bucket the user named, which is never deleted)."""

    dst: str
    name: str
    store: str | None = None
    owner: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"dst": self.dst, "name": self.name, "store": self.store, "owner": self.owner}


def job_bucket_name(task_id: str, dst: str, job_id: str) -> str:
    """The name of the bucket made for a managed task's unnamed mount at ``dst``:
    the same for every recovery of the task (its ``SKYPLAN_TASK_ID`` holds the
    submission time to the microsecond), valid in every store."""
    import hashlib

    digest = hashlib.sha256(f"{task_id}\0{dst}".encode()).hexdigest()[:12]
    return f"skyplan-job{int(job_id) if job_id.isdigit() else 0}-{digest}"


def is_bucket(mount: Any) -> bool:
    """A file mount that is a bucket: no source, and mode MOUNT (or none: SkyPilot's default)."""
    return mount.source is None and (mount.mode or "MOUNT").upper() == "MOUNT"


def task_buckets(task: Any) -> tuple[Bucket, ...]:
    """The task's bucket mounts, by destination. An unnamed one gets its job
    bucket's name when the task's envs say which managed task it is (``OWNER_ENV``
    and ``TASK_ID_ENV``), else name "" (``check_names`` refuses it)."""
    envs: Mapping[str, Any] = dict(task.envs)
    job, task_id = str(envs.get(OWNER_ENV) or ""), str(envs.get(TASK_ID_ENV) or "")
    out = []
    for m in sorted(task.file_mounts, key=lambda m: m.dst):
        if not is_bucket(m):
            continue
        store = (m.store or "").lower() or None
        if m.name:
            out.append(Bucket(m.dst, m.name, store))
        elif job and task_id:
            out.append(Bucket(m.dst, job_bucket_name(task_id, m.dst, job), store, owner=job))
        else:
            out.append(Bucket(m.dst, "", store))
    return tuple(out)


def release_here(owner: str, since: float) -> tuple[str, ...]:
    """``CloudBase.release_buckets`` of the clouds whose buckets are directories
    under this machine's skyplan home (``<home>/buckets``)."""
    from skyplan import home
    from skyplan.clouds.local import runner

    return tuple(runner.release_owned(home.home(), owner, since))


def cloud_record(store: str, name: str) -> Any:
    """Where this machine records a bucket it made for a managed job in a cloud's
    ``store``: ``<home>/buckets/.cloud/<store>/<name>.json``. The program writes it
    once the bucket exists (``record_cloud_bucket``); ``release_cloud_buckets``
    reads it, so that a job's end finds the buckets to delete without listing the
    cloud's (the tag says the same in the cloud)."""
    from skyplan import home

    return home.home() / "buckets" / ".cloud" / store / f"{name}.json"


def record_cloud_bucket(store: str, name: str, owner: str, **details: Any) -> None:
    """Record bucket ``name`` of ``store`` as made for managed job ``owner``;
    ``details`` are what the cloud's program needs to adopt it again (region,
    tags, its id ...). Called by the program, from an ``apply`` on the new
    bucket's id: only a bucket that was really created is recorded."""
    import json
    import os
    import time

    path = cloud_record(store, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"name": name, "store": store, "owner": owner, "created_at": time.time(),
                               **details}, sort_keys=True))
    os.replace(tmp, path)


#: Seconds each engine operation of a bucket's release may take.
RELEASE_TIMEOUT_S = 900.0


def release_cloud_buckets(cloud: Any, owner: str, since: float, driver: Any = None) -> tuple[str, ...]:
    """``CloudBase.release_buckets`` of a cloud whose program makes buckets in its
    object store: each bucket recorded on this machine (``cloud_record``) as made
    for job ``owner`` at or after ``since`` is adopted into a throwaway stack
    (``skyplan-bucket-<name>``: the program's ``adopt_bucket``, first importing it,
    then with ``force_destroy`` in its state, so that a bucket holding objects can
    go), which is then destroyed and removed; its record goes with it. A bucket
    whose release fails is kept with its record (the next release tries again).
    ``driver``: a StackDriver (default: one on the default backend)."""
    import json

    from skyplan.clouds import programs

    store = cloud.capabilities.bucket_store
    base = cloud_record(store, "x").parent
    records = []
    for path in sorted(base.glob("*.json")) if base.is_dir() else []:
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if rec.get("owner") == owner and owner and float(rec.get("created_at") or 0) >= since:
            records.append((path, rec))
    if not records:
        return ()
    if driver is None:
        from skyplan.provision.driver import StackDriver

        driver = StackDriver()
    program = programs.load(cloud.name)
    out = []
    for path, rec in records:
        stack = f"skyplan-bucket-{rec['name']}"
        try:
            for adopt in (True, False):
                res = driver.up(stack, lambda rec=rec, adopt=adopt: program.adopt_bucket(rec, adopt=adopt),
                                timeout_s=RELEASE_TIMEOUT_S)
                if not res.ok:
                    raise RuntimeError(res.error or "the bucket could not be adopted")
            driver.destroy_and_remove(stack, timeout_s=RELEASE_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - kept, with its record: the next release tries again
            continue
        path.unlink(missing_ok=True)
        out.append(str(rec["name"]))
    return tuple(out)


def check_names(buckets: tuple[Bucket, ...]) -> None:
    """InputError for a bucket without a name, with a name no store accepts, or
    mounted over the root or the home."""
    for b in buckets:
        if not b.name:
            raise InputError(f"file_mounts '{b.dst}': a bucket (mode MOUNT) needs a name outside a managed job",
                             hint="write `{name: my-bucket, mode: MOUNT}` (kept after the task), or launch it with "
                                  "`skyplan jobs launch`, which makes a bucket for the job and deletes it when the "
                                  "job ends; nothing was created")
        if not _NAME.fullmatch(b.name):
            raise InputError(f"file_mounts '{b.dst}': bucket name '{b.name}' is not one every store accepts",
                             hint="use 3-63 lowercase letters, digits and single hyphens, starting and ending "
                                  "with a letter or digit; nothing was created")
        if b.dst.rstrip("/") in ("", "~"):
            raise InputError(f"file_mounts '{b.dst}': a bucket cannot be mounted over the root or the home",
                             hint="mount it at a path of its own, e.g. /checkpoint; nothing was created")


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
        if store == PROGRAM_STORE:
            continue
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
