"""Submitting a managed job: a task file (one task, or a pipeline) into the store.

``submit`` checks everything it can before anything is recorded: the file
loads and validates, every task has a feasible plan now (else
NoCandidatesError, exit 3), and no task needs a secret (a controller that runs
for hours has no way to ask for one). The tasks are stored with their workdir
and file-mount sources made absolute (the controller runs elsewhere), and the
controller is started if none runs. Nothing here prints.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from skyplan.errors import InputError


@dataclass(frozen=True)
class Submitted:
    job_id: int
    name: str
    tasks: int
    started_controller: bool


def load_tasks(path: str, catalog: Any) -> tuple[str | None, list[Any]]:
    """``(pipeline name or None, tasks)`` of the task file at ``path``."""
    from skyplan.spec import load
    from skyplan.spec.models import Pipeline

    doc = load(path, catalog=catalog)
    if isinstance(doc, Pipeline):
        return doc.name, list(doc.tasks)
    return None, [doc]


def absolute_paths(task: Any, base: str) -> Any:
    """``task`` with its workdir and local file-mount sources absolute (relative to ``base``)."""
    from skyplan.spec.known import is_url

    def absolute(p: str) -> str:
        return os.path.abspath(os.path.join(base, os.path.expanduser(p)))

    mounts = tuple(m if m.source is None or is_url(m.source)  # a bucket has a name, no source
                   else dataclasses.replace(m, source=absolute(m.source)) for m in task.file_mounts)
    return dataclasses.replace(task, workdir=absolute(task.workdir) if task.workdir else None, file_mounts=mounts)


def resources_text(task: Any, plan: Any) -> str:
    """One line for the RESOURCES column: ``1x gcp(n1-standard-4, V100:1, [Spot])``."""
    if not plan.candidates:
        return "-"
    c = plan.candidates[0]
    markets = {x.use_spot for x in plan.candidates}
    market = "[Spot|On-demand]" if len(markets) > 1 else "[Spot]" if c.use_spot else ""
    acc = ", ".join(f"{n}:{k:g}" for n, k in c.accelerators)
    parts = [p for p in (c.instance_type, acc, market) if p]
    return f"{task.num_nodes}x {c.cloud}({', '.join(parts)})"


def submit(path: str, *, name: str | None = None, simulate: str | None = None, use_spot: bool | None = None,
           catalog: str | None = None, backend: str | None = None, store: Any = None,
           start_controller: bool = True) -> Submitted:
    """Record the job in ``path`` (see the module docstring) and make sure a controller runs."""
    import json

    from skyplan.catalog import load_catalog
    from skyplan.jobs import daemon
    from skyplan.jobs.executor import with_use_spot
    from skyplan.jobs.store import Store, TaskSubmission
    from skyplan.planner import make_plan
    from skyplan.provision.memory import for_planning
    from skyplan.spec.serialize import canonical_json, task_to_dict

    cat = load_catalog(catalog)
    pipeline_name, tasks = load_tasks(path, cat)
    if simulate is not None:
        from skyplan.clouds.sim.scenario import load_scenario

        load_scenario(simulate)  # a bad scenario is refused now, not in the controller
        simulate = os.path.abspath(simulate)
    base = os.path.dirname(os.path.abspath(path))
    job_name = name or pipeline_name or tasks[0].name or os.path.splitext(os.path.basename(path))[0]
    subs = []
    for i, task in enumerate(tasks):
        if task.secrets:
            raise InputError(f"task {i} ({task.name or 'unnamed'}) needs secrets "
                             f"({', '.join(n for n, _ in task.secrets)}); managed jobs do not take secrets yet",
                             hint="run it with `skyplan apply --secret NAME`, or pass the value as an env")
        task = absolute_paths(task, base)
        if use_spot is not None:
            task = with_use_spot(task, use_spot)
        plan = make_plan(task, cat, memory=for_planning(backend))  # NoCandidatesError (exit 3) before any record
        subs.append(TaskSubmission(task.name, canonical_json(task_to_dict(task)), resources_text(task, plan)))
    options = {"simulate": simulate, "backend": backend, "catalog": os.path.abspath(catalog) if catalog else None,
               "use_spot": use_spot}
    own = store is None
    store = store or Store()
    try:
        job_id = store.submit(job_name, subs, options=json.loads(json.dumps(options)))
        started = daemon.ensure_running(store=store) if start_controller else False
    finally:
        if own:
            store.close()
    return Submitted(job_id, job_name, len(subs), started)


def resolve(store: Any, job_id: int | None, name: str | None) -> Any:
    """The job named by id or by name (the newest of that name). NotFoundError/UsageError."""
    from skyplan.errors import NotFoundError, UsageError

    if (job_id is None) == (name is None):
        raise UsageError("give a job id or -n NAME (one of them)", hint="`skyplan jobs queue -a` lists the jobs")
    if job_id is not None:
        job = store.job(job_id)
        if job is None:
            raise NotFoundError(f"no managed job {job_id}", hint="`skyplan jobs queue -a` lists the jobs")
        return job
    found = store.jobs_named(name)
    if not found:
        raise NotFoundError(f"no managed job named '{name}'", hint="`skyplan jobs queue -a` lists the jobs")
    return found[0]
