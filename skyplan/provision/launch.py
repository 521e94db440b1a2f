"""The one launch API: ``launch(LaunchRequest) -> LaunchResult`` and ``down(cluster)``.

The CLI's ``apply`` and ``down`` are thin callers of these (parse, call,
render); the jobs and serve controllers call them too, from a long-running
process and for many clusters at once.

Inside one ``launch``, in order:
  1. the plan: the request's plan as it is, or the task planned against the
     catalog (``LaunchOptions.catalog``, default the embedded one); every
     secret of its task must have a value (a plan read from a file has none:
     ``skyplan.planner.bind_secrets``);
  2. the cluster lock (a second launch of the same cluster raises LockedError);
     a cluster that is up converges (``converge``, ``converging``): the same
     task returns ALREADY_UP; a task whose setup, run, envs, secrets or
     workdir alone changed re-runs on the same nodes (clouds that can); any
     other change is a replacement (``LaunchOptions.replace`` must allow it):
     the new placement is launched below while the old one runs, then the old
     one is destroyed. A cluster this machine has no row for, that a stack on
     the backend records (launched from another machine), converges the same way;
  3. preflight: each cloud among the candidates is checked (plugin,
     credentials); clouds that cannot be used are dropped, one ``Preflight``
     event each. Under ``simulate`` the simulatable clouds need no check;
  4. the backend is checked once, then stacks an earlier run of this cluster
     left behind are destroyed (``Recover`` events);
  5. failover: candidates in rank order, one Pulumi stack per attempt
     (``Launching``, then ``AttemptDone`` events). Each attempt is journalled in
     the state database before its stack exists; a failed attempt's stack is
     destroyed, checked empty and removed before the next starts. On a cloud whose
     VMs skyplan reaches over SSH (``nodes_over_ssh``) an attempt is up only once
     every node answered and its task was synced and started through the node
     runtime (``nodes.py``); a node that never answers fails the attempt;
  6. the cluster row: UP with its placement and outputs, or FAILED.

Nothing here prints: events go to ``LaunchOptions.on_event`` (typed, see
``events.py`` for their JSON lines), and what happens meanwhile (the running
attempt's phase, what a stopping launch cleans up) to ``LaunchOptions.on_progress``
(``progress.py``). A launch that cannot bring the cluster up
raises from the ``skyplan.errors`` hierarchy: InputError (bad name, scenario or
backend; nothing created), LockedError, PreflightError, ProvisionFailed (every
candidate failed; ``.attempts`` holds the history) or CleanupError (an
attempt's stack could not be cleaned: something may have leaked).

Concurrency: launches (and downs) of distinct clusters may run at once from
threads of one process. Each call has its own state connection and stack
driver unless the options pass shared ones (both are thread-safe); the driver
installs no signal handler, so a controller's threads are fine.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Callable

from skyplan.errors import InputError
from skyplan.planner.plan import Plan
from skyplan.provision.apply import DEFAULT_TIMEOUT_S, Applier, LaunchResult, default_cluster_name
from skyplan.provision.converge import Action
from skyplan.provision.events import EventSink, LaunchEvent
from skyplan.provision.failover import Policy
from skyplan.provision.progress import ProgressSink
from skyplan.provision.protocol import Driver
from skyplan.spec.models import Task
from skyplan.state import StateDB

__all__ = ["Action", "LaunchOptions", "LaunchRequest", "LaunchResult", "LaunchEvent", "DownResult", "launch", "down",
           "preview"]


@dataclasses.dataclass(frozen=True)
class LaunchOptions:
    """How to launch. Every field has a default that the CLI's defaults match."""

    #: Pulumi backend URL; None: ``$SKYPLAN_BACKEND``, else file:// under the skyplan home.
    backend: str | None = None
    #: A scenario file: the simulator stands in for the simulatable clouds.
    simulate: str | None = None
    #: Seconds allowed per attempt.
    timeout_s: float = DEFAULT_TIMEOUT_S
    policy: Policy = Policy()
    #: Ignore what earlier launches learnt about capacity.
    fresh: bool = False
    #: Receives every LaunchEvent, in order, on the launching thread.
    on_event: EventSink | None = None
    #: Receives the progress events (``progress.py``: the running attempt's phase,
    #: what a stopping launch cleans up), for a live status line.
    on_progress: ProgressSink | None = None
    #: Offer catalog file for a task (None: ``$SKYPLAN_CATALOG``, else the embedded catalog).
    catalog: str | None = None
    #: A shared driver or state database (None: one of each per call).
    driver: Driver | None = None
    db: StateDB | None = None
    sleep: Callable[[float], None] = time.sleep
    #: A cluster that is up may be replaced (the caller has confirmed the diff); else
    #: a replacement is refused with UsageError.
    replace: bool = False
    #: Re-run the task on a cluster that is up even if nothing changed (a secret's
    #: value alone changed: skyplan keeps no trace of values to compare).
    rerun: bool = False
    #: Seconds an attempt on a cloud whose nodes are reached over SSH waits, in all, for
    #: them to answer and finish booting before it fails (``skyplan.provision.nodes``).
    node_wait_s: float = 600.0


@dataclasses.dataclass(frozen=True)
class LaunchRequest:
    """A task or a plan, the cluster to bring up, and how."""

    target: Task | Plan
    #: None: derived from the task's name.
    cluster: str | None = None
    options: LaunchOptions = LaunchOptions()


@dataclasses.dataclass(frozen=True)
class DownResult:
    cluster: str
    #: Every stack destroyed, checked empty and removed.
    stacks: tuple[str, ...]


_warm = threading.Lock()
_warmed = False


def _warm_imports() -> None:
    """Import, once and before any thread forks, what a launch imports lazily:
    a child forked while another thread holds a module's import lock would wait
    for that lock forever (see ``forked.fork_lock``)."""
    global _warmed
    if _warmed:
        return
    from skyplan.provision import forked

    with _warm, forked.fork_lock:
        if _warmed:
            return
        from skyplan.clouds import registry
        from skyplan.clouds.sim import ledger, scenario  # noqa: F401
        from skyplan.provision import driver, names  # noqa: F401

        for name in registry.names():
            registry.get(name)
        _warmed = True


def plan_for(request: LaunchRequest) -> Plan:
    """The request's plan, or its task planned against the catalog."""
    if isinstance(request.target, Plan):
        return request.target
    from skyplan.catalog import load_catalog
    from skyplan.planner import make_plan
    from skyplan.provision.memory import for_planning

    opts = request.options
    # Recent capacity and quota failures (beside the backend's state) rank last, unless fresh.
    backend = opts.backend or (opts.driver.backend_url if opts.driver is not None else None)
    memory = None if opts.fresh else for_planning(backend)
    return make_plan(request.target, load_catalog(opts.catalog), memory=memory)


def check_task(plan: Plan, simulate: str | None = None) -> None:
    """What the task needs before any stack exists, else InputError: a value for
    every secret; a workdir, and file mount sources, that exist (a plan file may
    outlive them) without symbolic links that leave them (the sync refuses
    those: ``skyplan.clouds.workdir``); for a node on this machine
    (``runs_here``), no URL mount, which it cannot reach; and buckets that every
    candidate's cloud (the simulator's, under ``simulate``) can mount, which for
    a node on this machine means a private mount namespace
    (``skyplan.clouds.buckets.check_buckets``)."""
    import os

    from skyplan.clouds import registry
    from skyplan.clouds.workdir import ADVICE, WorkdirLinkError, outside_links
    from skyplan.provision.apply import task_file_mounts, task_workdir
    from skyplan.spec.secrets import require_values

    require_values(plan.task)
    mounts, remote = task_file_mounts(plan)
    workdir = task_workdir(plan)
    sources = [("workdir", workdir)] if workdir else []
    sources += [(f"file mount '{dst}'", src) for dst, src in mounts.items()]
    for what, src in sources:
        if not os.path.exists(src) or (what == "workdir" and not os.path.isdir(src)):
            raise InputError(f"the {what} source {src} {'is not a directory' if os.path.exists(src) else 'is missing'}",
                             hint="restore it, or re-plan the task; nothing was created")
        links = outside_links(src) if os.path.isdir(src) else []
        if links:
            where = "" if what == "workdir" else f"{what}: "
            raise InputError(where + str(WorkdirLinkError(src, links)), hint=f"{ADVICE}; nothing was created")
    here = sorted({c.cloud for c in plan.candidates
                   if (cloud := registry.find(c.cloud)) is not None and cloud.capabilities.runs_here})
    if remote and here:
        raise InputError(f"file_mounts {', '.join(repr(d) for d in remote)}: a URL, or a bucket in COPY mode, "
                         f"cannot be mounted on "
                         f"{' or '.join(registry.display(c) for c in here)}, which copies local paths only",
                         hint="mount a local directory instead (`/data: ./data`), or run on a cloud; "
                              "nothing was created")
    from skyplan.clouds.buckets import check_buckets

    check_buckets(plan.task, [registry.runner(name, bool(simulate))
                              for name in dict.fromkeys(c.cloud for c in plan.candidates) if registry.find(name)])


def launch(request: LaunchRequest) -> LaunchResult:
    """Bring ``request.cluster`` up on the best candidate that works (see the module docstring)."""
    _warm_imports()
    opts = request.options
    plan = plan_for(request)
    check_task(plan, opts.simulate)
    cluster = request.cluster or default_cluster_name(plan)
    from skyplan.provision.converging import adopted_backend

    backend = opts.backend if opts.driver is not None else adopted_backend(opts.backend, opts.db, cluster)
    applier = Applier(backend=backend, simulate=opts.simulate, timeout_s=opts.timeout_s, policy=opts.policy,
                      driver=opts.driver, db=opts.db, sleep=opts.sleep, fresh=opts.fresh, replace=opts.replace,
                      rerun=opts.rerun, **({"emit": opts.on_event} if opts.on_event is not None else {}))
    if opts.on_progress is not None:
        applier.progress = opts.on_progress
    applier.node_wait_s = opts.node_wait_s
    return applier.apply(plan, cluster)


def preview(plan: Plan, cluster: str, *, simulate: str | None = None, backend: str | None = None,
            rerun: bool = False, db: StateDB | None = None) -> Action:
    """What ``launch`` of ``plan`` on ``cluster`` would do, without doing it (``plan
    -c``, and ``apply``'s confirmation): Create, NoChange, InPlace or Replace
    (``skyplan.provision.converge``). Reads the cluster's row; without one, the
    record of its stack on the backend (which needs the engine)."""
    from skyplan.provision import converging

    row = converging.observe(cluster, backend=backend, db=db)
    sha = converging.task_workdir_digest(plan)
    return converging.assess(plan, row, simulate=simulate, rerun=rerun, workdir_sha256=sha)


def down(cluster: str, *, backend: str | None = None, driver: Driver | None = None,
         db: StateDB | None = None) -> DownResult:
    """Destroy every stack of ``cluster``, check each is empty, remove it, forget the cluster.

    ``backend`` defaults to the one the cluster was launched on. Raises
    NotFoundError for an unknown cluster, LockedError while it is being
    launched, CleanupError when a stack could not be emptied (kept for a retry).
    """
    from skyplan.provision.apply import valid_cluster_name

    _warm_imports()
    db = db or StateDB()
    row = db.get_cluster(valid_cluster_name(cluster))
    applier = Applier(backend=backend or (row.backend if row else None), driver=driver, db=db)
    return DownResult(cluster, tuple(applier.down(cluster)))
