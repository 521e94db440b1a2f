"""``status [NAME]`` and ``down NAME | --all``: a cluster's life after apply.

``down`` is idempotent, as CI teardown steps need: a cluster that does not exist
is a no-op with exit 0 and a message (JSON: status ``ABSENT``). ``down --all``
destroys every cluster ``status`` lists. Asked on a terminal (no ``--yes``), the
question names each cluster and, when it costs money, where it runs and its
hourly cost; the answer defaults to no, and Ctrl-C or Ctrl-D cancels (exit 130).
"""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from skyplan.cli.errors import handle_errors

JSON_OPT = typer.Option(False, "--json", help="Print machine-readable JSON.")


def _complete_cluster(incomplete: str) -> List[str]:
    from skyplan.cli.completion import cluster_names

    return cluster_names(incomplete)


def _task_states(rows) -> dict:  # noqa: ANN001 - ClusterRow list -> {name: task status dict}
    """For clusters whose task output is readable here, the task's own state."""
    from skyplan.clouds import registry

    out = {}
    for r in rows:
        if r.status != "UP" or registry.find(r.cloud) is None:
            continue
        src = registry.runner(r.cloud, bool(r.simulate)).log_source(r.outputs)
        if src is not None:
            out[r.name] = src.status() or {}
    return out


@handle_errors
def status(
    name: Optional[str] = typer.Argument(None, help="Only this cluster (default: every cluster).",
                                         autocompletion=_complete_cluster),
    as_json: bool = JSON_OPT,
) -> None:
    """List clusters, or show one."""
    from skyplan.cli import views
    from skyplan.errors import NotFoundError
    from skyplan.provision.apply import valid_cluster_name
    from skyplan.state import StateDB

    db = StateDB()
    if name is None:
        rows = db.clusters()
    else:
        row = db.get_cluster(valid_cluster_name(name))
        if row is None:
            raise NotFoundError(f"no cluster named '{name}'", hint="see `skyplan status` for the clusters there are")
        rows = [row]
    states = _task_states(rows)
    phases = {n: st.get("phase") for n, st in states.items()}
    if as_json:
        from skyplan.contract import document
        from skyplan.provision.outcome import TaskOutcome, node_states

        views.write_json(document(clusters=[
            {**r.to_json(), "task_phase": phases.get(r.name),
             "task": TaskOutcome.from_status(states.get(r.name)).to_json(),
             "nodes": node_states(states.get(r.name))} for r in rows]))
        return
    views.render_status(rows, task_phases=phases)
    if name is not None:
        r = rows[0]
        extra = [("Backend", r.backend), ("Simulated by", r.simulate),
                 ("Task", (r.task or {}).get("name") and f"{r.task['name']} (sha256 {r.task_sha256[:12]})")]
        for label, value in extra:
            if value:
                typer.echo(f"{label}: {value}")


def cost_text(row) -> str:  # noqa: ANN001 - a ClusterRow
    """`` (GCP us-central1-a n1-standard-8, $2.90/hr)`` for a cluster that costs money, else ``""``."""
    from skyplan.cli.views import cloud_text, money

    if not row or not row.hourly_cost:
        return ""
    sim = " [sim]" if row.simulate else ""
    return (f" ({cloud_text(row.cloud)} {row.zone or row.region}{sim} {row.instance_type}"
            f"{'[Spot]' if row.use_spot else ''}, {money(row.hourly_cost)}/hr)")


@handle_errors
def down(
    name: Optional[str] = typer.Argument(None, help="Cluster name.", autocompletion=_complete_cluster),
    all_clusters: bool = typer.Option(False, "--all", help="Every cluster `skyplan status` lists."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    as_json: bool = JSON_OPT,
    backend: Optional[str] = typer.Option(None, "--backend", envvar="SKYPLAN_BACKEND", help="Pulumi backend URL."),
) -> None:
    """Destroy every stack of a cluster on the backend, verify nothing is left, and forget it.

    Exits 0 only when the backend holds no stack of the cluster and the clouds
    that can check from here (local, sim) hold nothing of it either; else 5. A
    cluster that does not exist is a no-op (exit 0)."""
    from skyplan.cli import prompts, views
    from skyplan.errors import SkyplanError, UsageError
    from skyplan.provision.apply import valid_cluster_name
    from skyplan.state import StateDB

    if all_clusters == (name is not None):
        raise UsageError("give a cluster name or --all (not both)", hint="`skyplan down NAME`, or `skyplan down --all`")
    rows = {r.name: r for r in StateDB().clusters()}
    names = list(rows) if all_clusters else [valid_cluster_name(name)]
    if not names:  # --all of nothing
        _report([], as_json, all_clusters)
        return
    if not yes:
        target = f"{len(names)} cluster{'s' if len(names) != 1 else ''}" if all_clusters else f"cluster '{names[0]}'"
        if as_json or not prompts.can_ask():
            raise UsageError(f"refusing to destroy {target} without --yes: no terminal to confirm on",
                             hint=f"run `skyplan down {'--all' if all_clusters else names[0]} --yes`")
        listed = [f"  {n}{cost_text(rows.get(n))}" for n in names]
        total = sum(r.hourly_cost or 0 for n, r in rows.items() if n in names)
        if all_clusters:
            sys.stderr.write("Clusters to destroy:\n" + "\n".join(listed) + "\n")
            question = f"Destroy these {len(names)} clusters" + (f" (together {views.money(total)}/hr)" if total else "")
        else:
            question = f"Destroy cluster '{names[0]}'{cost_text(rows.get(names[0]))}"
        if not prompts.confirm(question + "?", nothing_done="nothing was destroyed."):
            typer.echo("Cancelled; nothing was destroyed.", err=True)
            raise typer.Exit(0)
    results, failed = [], []
    for n in names:
        try:
            results.append(_down_one(n, backend, as_json))
        except SkyplanError as exc:
            if not all_clusters:
                raise
            failed.append(exc)  # the others are still destroyed; the first failure is the exit code
            from skyplan.cli.errors import describe

            sys.stderr.write(f"cluster '{n}': " + describe(exc)[2])
    _report(results, as_json, all_clusters)
    if failed:
        raise typer.Exit(failed[0].exit_code)


def _down_one(name: str, backend: Optional[str], as_json: bool) -> dict:
    from skyplan.errors import NotFoundError
    from skyplan.provision.launch import down as down_cluster

    try:
        result = down_cluster(name, backend=backend)
    except NotFoundError:
        if not as_json:
            typer.echo(f"No cluster named '{name}' (nothing on the backend either); nothing to destroy.", err=True)
        return {"cluster": name, "status": "ABSENT", "stacks_removed": []}
    if not as_json:
        n = len(result.stacks)
        typer.echo(f"Cluster '{name}' is down ({n} stack{'s' if n != 1 else ''} destroyed and verified empty).")
    return {"cluster": name, "status": "DOWN", "stacks_removed": list(result.stacks)}


def _report(results: list[dict], as_json: bool, all_clusters: bool) -> None:
    if not as_json:
        if all_clusters and not results:
            typer.echo("No clusters; nothing to destroy.", err=True)
        return
    from skyplan.cli import views
    from skyplan.contract import document

    views.write_json(document(clusters=results) if all_clusters else document(**results[0]))
