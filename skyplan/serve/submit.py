"""Checking a service file before anything is recorded (``serve up``, ``serve update``).

``prepare`` loads the file (one task; a pipeline is refused), checks its
``service`` section (``skyplan.serve.config.service_config``: a port, a
probe, a policy), refuses secrets (a controller that runs for days cannot ask
for them), makes the workdir and file-mount sources absolute (the controller
runs elsewhere), and plans every market the service will launch in: spot
replicas, and on-demand ones for ``base_ondemand_fallback_replicas`` and
``dynamic_ondemand_fallback`` (or on-demand only). A market with no feasible
placement is a NoCandidatesError (exit 3): nothing is recorded. Nothing here
prints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from skyplan.errors import InputError


@dataclass(frozen=True)
class Prepared:
    task: Any  # skyplan.spec.models.Task, paths absolute
    config: Any  # skyplan.serve.config.ServiceConfig
    task_json: str  # what the store keeps for the version (canonical JSON, no secrets)
    plans: tuple[tuple[bool, Any], ...]  # (use_spot, Plan) per market the replicas use, spot first
    options: dict[str, Any]  # simulate, backend, catalog: what the controller launches with


def markets(cfg: Any) -> tuple[bool, ...]:
    """The markets (use_spot values) the service's replicas launch in, spot first."""
    if not cfg.use_spot:
        return (False,)
    out = [True] if cfg.max_replicas > cfg.base_ondemand else []
    if cfg.base_ondemand > 0 or cfg.dynamic_fallback:
        out.append(False)
    return tuple(out)


def prepare(path: str, *, simulate: str | None = None, catalog: str | None = None,
            backend: str | None = None) -> Prepared:
    """The service in ``path``, checked and planned (see the module docstring)."""
    from skyplan.catalog import load_catalog
    from skyplan.jobs.executor import with_use_spot
    from skyplan.jobs.submit import absolute_paths, load_tasks
    from skyplan.planner import make_plan
    from skyplan.provision.memory import for_planning
    from skyplan.serve.config import service_config
    from skyplan.spec.serialize import canonical_json, task_to_dict

    cat = load_catalog(catalog)
    pipeline, tasks = load_tasks(path, cat)
    if pipeline is not None or len(tasks) != 1:
        raise InputError(f"{path} is a pipeline; a service is one task",
                         hint="put the service in a file of its own (one YAML document)", file=path)
    task = tasks[0]
    cfg = service_config(task)  # InputError with a hint: no service section, no port
    if task.secrets:
        raise InputError(f"the service needs secrets ({', '.join(n for n, _ in task.secrets)}); services do not "
                         "take secrets yet", hint="pass the value as an env, or run it with `skyplan apply --secret "
                         "NAME`", file=path)
    if simulate is not None:
        from skyplan.clouds.sim.scenario import load_scenario

        load_scenario(simulate)  # a bad scenario is refused now, not in the controller
        simulate = os.path.abspath(simulate)
    task = absolute_paths(task, os.path.dirname(os.path.abspath(path)))
    memory = for_planning(backend)
    plans = []
    for spot in markets(cfg):
        market = task if not cfg.use_spot else with_use_spot(task, spot)
        plans.append((spot, make_plan(market, cat, memory=memory)))  # NoCandidatesError (exit 3)
    options = {"simulate": simulate, "backend": backend, "catalog": os.path.abspath(catalog) if catalog else None}
    return Prepared(task, cfg, canonical_json(task_to_dict(task)), tuple(plans), options)


def service_name(path: str, task: Any, name: str | None) -> str:
    """The service's name: ``-n``, else the task's, else the file's stem. It names the replicas'
    clusters (``serve-<name>-<id>``), so it must be a cluster name."""
    from skyplan.spec.parse import CLUSTER_NAME_RULE, is_cluster_name, suggest_cluster_name

    chosen = name or task.name or os.path.splitext(os.path.basename(path))[0]
    if not is_cluster_name(chosen) or len(chosen) > 40:
        better = suggest_cluster_name(chosen)
        raise InputError(f"'{chosen}' is not a valid service name ({CLUSTER_NAME_RULE}; at most 40, as it is part "
                         "of each replica's cluster name)",
                         hint=f"e.g. -n {better[:40]}" if better else "pick another name with -n")
    return chosen
