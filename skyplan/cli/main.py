"""The `skyplan` command line. Commands parse, call the library, render.

Exit codes (also in the README):
  0 success; 1 internal error (details in the log file under the skyplan home);
  2 invalid input or usage; 3 no feasible candidate; 4 provisioning failed on
  every candidate (or no usable cloud); 5 cleanup failed, resources may have
  leaked; 6 the cluster is locked by another skyplan process; 7 the cluster came up
  but the task it runs here (local, sim) failed; 130 interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from skyplan.cli.errors import handle_errors

app = typer.Typer(
    name="skyplan",
    help="Declarative plan/apply for cloud compute: cost-ranked placements, failover across zones, regions and clouds.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from skyplan import __version__

        typer.echo(f"skyplan {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Declarative plan/apply for cloud compute."""
    import os

    if os.environ.get("SKYPLAN_FAILPOINTS"):  # a test switched failpoints on: a typo must not pass silently
        from skyplan import failpoints

        if failpoints.PROBLEMS:
            typer.echo("error: SKYPLAN_FAILPOINTS: " + "; ".join(failpoints.PROBLEMS), err=True)
            typer.echo("hint: NAME:kill|term|raise, comma-separated; names from `skyplan debug failpoints`", err=True)
            raise typer.Exit(2)


sim_app = typer.Typer(help="The fault-injecting sim cloud.", no_args_is_help=True)


def _simulator_name() -> str:
    from skyplan.clouds import registry

    return registry.simulator().name


app.add_typer(sim_app, name=_simulator_name())


JSON_OPT = typer.Option(False, "--json", help="Print machine-readable JSON.")
SECRET_OPT = typer.Option(None, "--secret", metavar="NAME[=VALUE]",
                          help="A secret for the task (repeatable): NAME=VALUE, or NAME to take the value of NAME "
                          "from your environment. Never written to a plan, the state or the logs.")
FRESH_OPT = typer.Option(False, "--fresh", help="Ignore the capacity memory (recent capacity and quota failures "
                         "are otherwise ranked last).")


def _memory(fresh: bool, backend: Optional[str] = None):
    """The capacity memory to rank with: None under --fresh. A small local file (the
    one beside a file:// backend's state); never the engine."""
    if fresh:
        return None
    from skyplan.provision.memory import for_planning

    return for_planning(backend)


def _load_task(path: str, secrets: Optional[List[str]] = None, catalog=None,  # noqa: ANN001 - a Catalog
               allow_pipeline: bool = False):
    """The task in ``path``, with the values of ``--secret`` flags over its secrets,
    validated against ``catalog`` (the one the command plans with): names that do
    not exist there, and missing workdir or file-mount sources, are exit 2.
    A pipeline is returned as it is with ``allow_pipeline``, else refused."""
    from skyplan.errors import InputError
    from skyplan.spec import load

    doc = load(path, catalog=catalog)
    from skyplan.spec.models import Pipeline

    if isinstance(doc, Pipeline) and allow_pipeline:
        return doc
    if isinstance(doc, Pipeline):
        raise InputError(
            f"{path} is a pipeline ({len(doc.tasks)} tasks); plan/apply take a single task",
            hint="split the pipeline into task files, or plan each task on its own",
        )
    if secrets:
        from skyplan.spec.secrets import parse_flags, with_values

        doc = with_values(doc, parse_flags(secrets))
    return doc


def _catalog(path: Optional[str]):
    from skyplan.catalog import load_catalog

    return load_catalog(path)


def _complete_cluster(incomplete: str) -> List[str]:
    from skyplan.cli.completion import cluster_names

    return cluster_names(incomplete)


def _errors_exit_1(fn):  # noqa: ANN001, ANN202
    """``plan --detailed-exitcode`` is Terraform's: 0 no change, 2 a change, so every
    error exits 1, whatever its usual code (goes inside ``handle_errors``)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        from skyplan.errors import EXIT_INTERNAL, SkyplanError

        try:
            return fn(*args, **kwargs)
        except SkyplanError as exc:
            if kwargs.get("detailed_exitcode"):
                exc.exit_code = EXIT_INTERNAL
            raise

    return wrapper


@app.command()
@handle_errors
@_errors_exit_1
def plan(
    task: str = typer.Argument(..., help="Task YAML file."),
    as_json: bool = JSON_OPT,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the plan to this file (JSON)."),
    top: int = typer.Option(10, "--top", min=0, help="Rows to show (0 = all)."),
    explain: bool = typer.Option(False, "--explain", help="List each constraint and how many candidates it removed."),
    catalog: Optional[str] = typer.Option(None, "--catalog", envvar="SKYPLAN_CATALOG", help="Offer catalog file (default: embedded)."),
    fresh: bool = FRESH_OPT,
    secret: Optional[List[str]] = SECRET_OPT,
    cluster: Optional[str] = typer.Option(None, "--cluster", "-c", autocompletion=_complete_cluster,
                                          help="Compare with this cluster and say what apply would do "
                                          "(nothing, re-run the task in place, or replace it)."),
    detailed_exitcode: bool = typer.Option(False, "--detailed-exitcode",
                                           help="Exit 0 when the cluster (-c; default: the task's name, as apply) "
                                           "already matches, 2 when apply would change something, 1 on error."),
    simulate: Optional[str] = typer.Option(None, "--simulate", envvar="SKYPLAN_SIMULATE",
                                           help="With -c: compare as `apply --simulate` would launch."),
    backend: Optional[str] = typer.Option(None, "--backend", envvar="SKYPLAN_BACKEND",
                                          help="With -c: the Pulumi backend to find the cluster on when this "
                                          "machine has no record of it (a CI runner)."),
) -> None:
    """Validate TASK and rank every feasible placement by cost."""
    from skyplan.cli import views
    from skyplan.planner import dumps, explain as explain_fn, make_plan, write_plan

    if _looks_like_plan(task):
        from skyplan.errors import UsageError

        raise UsageError(f"{task} is a plan file, not a task",
                         hint=f"use `skyplan show {task}` to see it, or `skyplan apply {task}` to apply it")
    cat = _catalog(catalog)
    t = _load_task(task, secret, cat, allow_pipeline=True)
    from skyplan.spec.models import Pipeline

    if isinstance(t, Pipeline):  # one table (or JSON line) per task
        from skyplan.cli.pipeline_plan import plan_pipeline

        return plan_pipeline(t, cat, as_json=as_json, top=top, explain=explain, memory=_memory(fresh),
                             refused={"--out": out, "--cluster": cluster, "--detailed-exitcode": detailed_exitcode,
                                      "--secret": secret})
    if explain:
        expl = explain_fn(t, cat)
    p = make_plan(t, cat, memory=_memory(fresh))
    if out:
        write_plan(p, out)
    action = name = None
    if cluster is not None or detailed_exitcode:
        from skyplan.provision.apply import valid_cluster_name
        from skyplan.provision.launch import default_cluster_name, preview

        name = valid_cluster_name(cluster) if cluster is not None else default_cluster_name(p)
        action = preview(p, name, simulate=simulate, backend=backend)
    if as_json:
        if explain or action is not None:
            doc = p.to_json()
            if explain:
                doc["explain"] = views.explain_json(expl)
            if action is not None:
                from skyplan.cli.converge_view import action_json

                doc["converge"] = action_json(action, name)
            views.write_json(doc)
        else:
            sys.stdout.write(dumps(p))
    else:
        views.render_plan(p, top=top)
        if explain:
            views.render_explain(expl)
        if action is not None:
            from skyplan.cli.converge_view import render_action

            render_action(action, name, sys.stdout)
        if out:
            hint = _apply_hint(out, cluster=name if cluster is not None else None, simulate=simulate,
                               catalog=catalog, backend=backend, secrets=secret)
            typer.echo(f"Plan written to {out}; apply exactly this plan with `{hint}`.", err=True)
    if detailed_exitcode and action is not None and action.kind != "none":
        raise typer.Exit(2)


def _apply_hint(out: Path, *, cluster: Optional[str], simulate: Optional[str], catalog: Optional[str],
                backend: Optional[str], secrets: Optional[List[str]]) -> str:
    """The ``apply`` of a plan just written, as a command that works as printed: the
    cluster it was planned against (``-c``), and the scenario, catalog and backend
    it was planned with (a plan made with ``--catalog`` is stale under any other).
    A secret is named, never its value: apply takes it from the environment."""
    import shlex

    words = ["skyplan", "apply", str(out)] + (["-c", cluster] if cluster else []) + ["--yes"]
    for flag, value in (("--simulate", simulate), ("--catalog", catalog), ("--backend", backend)):
        if value:
            words += [flag, value]
    for name in dict.fromkeys(s.split("=", 1)[0] for s in secrets or ()):
        words += ["--secret", name]
    return shlex.join(words)


@app.command()
@handle_errors
def validate(
    files: List[str] = typer.Argument(..., help="Task or pipeline YAML files."),
    as_json: bool = JSON_OPT,
    catalog: Optional[str] = typer.Option(None, "--catalog", envvar="SKYPLAN_CATALOG",
                                          help="Offer catalog the names are checked against (default: embedded)."),
) -> None:
    """Validate task files without planning: the schema, and that every cloud, region, zone,
    instance type and accelerator exists in the catalog, and every workdir and file-mount source
    on disk. Reports every error at once."""
    from skyplan.cli import views
    from skyplan.errors import EXIT_INPUT
    from skyplan.spec import validate_report

    diags, omitted = validate_report(files, catalog=_catalog(catalog))
    if as_json:
        from skyplan.contract import document

        views.write_json(document(ok=not diags, files=files, diagnostics=[d.to_json() for d in diags],
                                  omitted=omitted))
    else:
        for d in diags:
            typer.echo(f"error: {d.format()}", err=True)
        if omitted:
            typer.echo(f"... and {omitted:,} more error{'s' if omitted != 1 else ''} not shown", err=True)
        if not diags:
            typer.echo(f"{len(files)} file{'s' if len(files) != 1 else ''} valid")
    if diags:
        raise typer.Exit(EXIT_INPUT)


@app.command("show-gpus")
@handle_errors
def show_gpus(
    name: Optional[str] = typer.Argument(None, help="Accelerator, optionally with a count: A100 or A100:8."),
    cloud: Optional[str] = typer.Option(None, "--cloud", help="Only this cloud (one of the catalog's: aws, gcp, azure)."),
    region: Optional[str] = typer.Option(None, "--region", help="Only this region."),
    show_all: bool = typer.Option(False, "--all", help="List every accelerator, not just the common ones."),
    as_json: bool = JSON_OPT,
    catalog: Optional[str] = typer.Option(None, "--catalog", envvar="SKYPLAN_CATALOG", help="Offer catalog file."),
) -> None:
    """List accelerators, or the offers of one accelerator."""
    import dataclasses

    from skyplan.catalog import gpus
    from skyplan.cli import views
    from skyplan.clouds import registry
    from skyplan.contract import count as as_count, document
    from skyplan.errors import InputError, NoCandidatesError

    cat = _catalog(catalog)
    clouds = [cloud] if cloud else None
    known = registry.catalog_clouds()
    if cloud and cloud not in known:
        raise InputError(f"unknown cloud '{cloud}'", hint=f"use one of {', '.join(known)}")
    if name is None:
        data = gpus.list_accelerators(cat, clouds=clouds, region=region, show_all=show_all)
        if as_json:
            views.write_json(document(accelerators={k: [as_count(c) for c in v] for k, v in data.items()}))
        else:
            views.render_accelerator_list(data)
        return
    count = None
    if ":" in name:
        name, _, raw = name.partition(":")
        try:
            count = float(raw)
            if count <= 0:
                raise ValueError
        except ValueError:
            raise InputError(f"bad accelerator count '{raw}'", hint="use NAME or NAME:COUNT, e.g. A100:8") from None
    rows = gpus.accelerator_offers(cat, name, count=count, clouds=clouds, region=region)
    if not rows:
        import difflib

        canonical = cat.canonical_accelerator(name)
        if canonical is not None:
            counts = gpus.list_accelerators(cat, clouds=clouds, region=region, show_all=True).get(canonical)
            hint = (f"{canonical} comes in counts {', '.join(views.num(c) for c in counts)} here; "
                    if counts else f"{canonical} is not offered with these filters; ")
        else:
            close = difflib.get_close_matches(name.upper(), [n.upper() for n in cat.accelerator_names()], n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
        raise NoCandidatesError(f"no offer has {name}{':' + raw if count else ''}"
                                f"{' on ' + cloud if cloud else ''}{' in ' + region if region else ''}",
                                hint=hint + "run `skyplan show-gpus` to list accelerators")
    if as_json:
        views.write_json(document(offers=[
            {**dataclasses.asdict(r), "count": as_count(r.count), "vcpus": as_count(r.vcpus)} for r in rows]))
    else:
        views.render_gpu_rows(rows)


@app.command()
@handle_errors
def apply(
    target: str = typer.Argument(..., help="Task YAML, or a plan file written by `skyplan plan --out`."),
    cluster: Optional[str] = typer.Option(None, "--cluster", "-c", autocompletion=_complete_cluster,
                                          help="Cluster name (default: the task name)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation (a replacement included)."),
    as_json: bool = typer.Option(False, "--json", help="Stream JSON lines: one per attempt, then a summary."),
    simulate: Optional[str] = typer.Option(None, "--simulate", envvar="SKYPLAN_SIMULATE",
                                           help="Scenario file: the sim cloud stands in for AWS/GCP/Azure."),
    backend: Optional[str] = typer.Option(None, "--backend", envvar="SKYPLAN_BACKEND",
                                          help="Pulumi backend URL (default: file:// under the skyplan home)."),
    timeout: float = typer.Option(600.0, "--timeout", min=1.0, help="Seconds allowed per attempt."),
    detach: bool = typer.Option(False, "--detach", "-d", help="Do not stream the task's output."),
    catalog: Optional[str] = typer.Option(None, "--catalog", envvar="SKYPLAN_CATALOG", help="Offer catalog file."),
    fresh: bool = FRESH_OPT,
    secret: Optional[List[str]] = SECRET_OPT,
    rerun: bool = typer.Option(False, "--rerun", help="On a cluster that is up with this very task, re-run it "
                               "anyway (a secret's value alone changed: skyplan keeps no trace of values)."),
) -> None:
    """Provision the plan's placements in rank order, failing over on capacity and quota errors.

    A cluster that is already up converges: nothing to do when it runs this task; the
    task re-run in place when only setup, run, envs, secrets or the workdir changed;
    otherwise a replacement (the new placement first, then the old one destroyed),
    shown as a diff and confirmed (or --yes)."""
    args = (target, cluster, yes, simulate, backend, timeout, detach, catalog, fresh, secret, rerun)
    if not as_json:
        return _apply(None, *args)
    from skyplan.cli.json_streams import JsonApplyStream

    with JsonApplyStream() as stream:  # exactly one summary line, however the apply ends
        _apply(stream, *args)


def _apply(stream, target: str, cluster: Optional[str], yes: bool, simulate: Optional[str],  # noqa: ANN001
           backend: Optional[str], timeout: float, detach: bool, catalog: Optional[str], fresh: bool,
           secret: Optional[List[str]], rerun: bool = False) -> None:
    """``apply``; ``stream``: the ``apply --json`` sink (``cli/json_streams.py``), or None for people."""
    from skyplan.cli import views
    from skyplan.errors import EXIT_INTERRUPTED, EXIT_TASK_FAILED
    from skyplan.planner import bind_secrets, check_fresh, make_plan, read_plan
    from skyplan.provision.launch import LaunchOptions, LaunchRequest, default_cluster_name, launch

    as_json = stream is not None
    if _is_plan_file(target):
        p = read_plan(target)
        check_fresh(p, _catalog(catalog).info, target)
        if p.task.secrets or secret:
            from skyplan.spec.secrets import parse_flags

            p = bind_secrets(p, parse_flags(secret or []))
    else:
        cat = _catalog(catalog)
        p = make_plan(_load_task(target, secret, cat), cat, memory=_memory(fresh, backend))
    if p.task.secrets:  # before asking: a launch without them would be refused
        from skyplan.spec.secrets import require_values

        require_values(p.task)
    name = cluster or default_cluster_name(p)
    if stream is not None:
        stream.cluster = name
    from skyplan.cli.confirm_apply import confirm_apply

    # What apply would do to the cluster, asked [y/N] on a terminal (cli/confirm_apply.py).
    replace = confirm_apply(p, name, yes=yes, as_json=as_json, simulate=simulate, backend=backend, rerun=rerun)
    if stream is not None:
        options = LaunchOptions(backend=backend, simulate=simulate, timeout_s=timeout, fresh=fresh, on_event=stream,
                                replace=replace, rerun=rerun)
        result = launch(LaunchRequest(p, name, options))
    else:
        # One line per attempt as it ends, a status line while it runs (cli/apply_view.py);
        # a failure's error message then needs no table of attempts after it.
        from skyplan.cli.apply_view import ApplyView

        view = ApplyView(simulated=bool(simulate), cluster=name)
        options = LaunchOptions(backend=backend, simulate=simulate, timeout_s=timeout, fresh=fresh, on_event=view,
                                on_progress=view, replace=replace, rerun=rerun)
        with view:
            result = launch(LaunchRequest(p, name, options))
    if not as_json:
        from skyplan.cli.converge_view import done_line

        views.render_launched(result)
        if done_line(result):
            typer.echo(done_line(result), err=True)
    # The task's outcome decides exit 7 in both modes; under --json its output is `log` events.
    if stream is not None:
        from skyplan.cli.json_streams import LogLines

        out = LogLines()
    else:
        out = sys.stdout
    outcome = _watch_task(name, result, follow=not detach, out=out)
    # "running" after following means Ctrl-C or SIGTERM stopped the following: an
    # interrupt exits 130 (the cluster stays up and the task keeps running).
    code = EXIT_TASK_FAILED if outcome.failed else EXIT_INTERRUPTED if outcome.status == "running" else 0
    if outcome.failed:
        setup = "; its setup failed, so its run never started" if outcome.failed_phase == "setup" else ""
        typer.echo(f"Task on '{name}' ended failed (exit code {outcome.exit_code}) on node {outcome.node}{setup}; "
                   f"the cluster is still up: `skyplan logs {name}`, then `skyplan down {name} --yes`.", err=True)
    if stream is not None:
        stream.finish(result.summary(task=outcome.to_json(), exit_code=code))
    elif code:
        raise typer.Exit(code)


def _watch_task(name: str, result, *, follow: bool, out):  # noqa: ANN001, ANN202
    """The task's outcome (``provision.outcome.TaskOutcome``) after a launch.

    ``follow``: print its output to ``out`` until it ends (Ctrl-C or SIGTERM stops
    following: the task is still running, status ``running``, and apply exits 130).
    Not followed (``--detach``), or a cluster that was already up (apply ran
    nothing): unknown, ``status`` None."""
    from skyplan.provision.outcome import TaskOutcome, task_outcome

    if not follow or result.status != "UP":
        return TaskOutcome()
    source = result.log_source()
    if source is None:
        return TaskOutcome()
    if not _stream_task(name, source, out):
        return TaskOutcome("running")
    return task_outcome(source)


def _looks_like_plan(path: str) -> bool:
    """By its contents only (a task may be written as JSON): an object with a format_version."""
    from skyplan.spec.bounded import read_head

    head = read_head(path, 4096)
    return head.lstrip().startswith(b"{") and b'"format_version"' in head


def _is_plan_file(path: str) -> bool:
    """A plan file is JSON with a format_version; a task is YAML (which JSON also is)."""
    from skyplan.spec.bounded import read_head

    if path.endswith(".json"):
        return True
    # read_head never opens a FIFO or device (b"" then): the loader refuses those.
    head = read_head(path, 4096)
    return head.lstrip().startswith(b"{") and b'"format_version"' in head


def _log_source(cloud: Optional[str], simulate: Optional[str], outputs: dict):
    """The task output of a cluster that ran on ``cloud`` (through the simulator
    when ``simulate``), if its cloud can be read from here."""
    from skyplan.clouds import registry

    if registry.find(cloud) is None:
        return None
    return registry.runner(cloud, bool(simulate)).log_source(outputs)


def _stream_task(name: str, source, out=None) -> bool:  # noqa: ANN001 - a skyplan.clouds.base.LogSource
    """For clouds with a log source here (local, sim), print the task's output to
    ``out`` (stdout) until it ends: True; False when Ctrl-C stopped following."""
    out = out or sys.stdout
    try:
        for line in source.follow():
            out.write(line)
            out.flush()
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (run() makes it one): stop following, not the task
        typer.echo(f"\nInterrupted: stopped following; the task keeps running on '{name}'. "
                   f"Follow it with `skyplan logs {name} --follow`; stop it with `skyplan down {name} --yes`.",
                   err=True)
        return False
    return True


@app.command()
@handle_errors
def logs(
    name: str = typer.Argument(..., help="Cluster name.", autocompletion=_complete_cluster),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until the task ends."),
    as_json: bool = typer.Option(False, "--json", help="One JSON line per output line, then a summary with the "
                                 "task's outcome."),
    node: Optional[int] = typer.Option(None, "--node", min=0, help="Only this node's output (rank; 0 is the "
                                       "head node), without prefixes."),
) -> None:
    """Print a cluster's task output (every node's, prefixed (node-N) when several;
    --node N for one) and return; --follow streams it until the task ends."""
    from skyplan.errors import InputError, NotFoundError
    from skyplan.provision.apply import valid_cluster_name
    from skyplan.state import StateDB

    row = StateDB().get_cluster(valid_cluster_name(name))
    if row is None:
        raise NotFoundError(f"no cluster named '{name}'", hint="see `skyplan status`")
    if row.status != "UP":
        raise InputError(f"cluster '{name}' is {row.status}: it has no running task",
                         hint=f"see `skyplan status`; apply it again, or `skyplan down {name} --yes`")
    source = _log_source(row.cloud, row.simulate, row.outputs)
    if source is None:
        from skyplan.clouds import registry

        here = registry.with_capability(has_log_source=True)
        raise InputError(f"cluster '{name}' runs on {row.cloud}; its logs are on the instance",
                         hint=f"logs are available here for {' and '.join(here)} clusters only")
    if node is not None:
        one = source.node(node)
        if one is None:
            raise InputError(f"cluster '{name}' has no node {node}", hint=f"see `skyplan status {name} --json`")
        source = one
    lines = source.follow() if follow else source.lines()
    if as_json:
        from skyplan.cli.json_streams import log_events

        log_events(name, lines, source)
        return
    for line in lines:
        sys.stdout.write(line)
        sys.stdout.flush()


@app.command()
@handle_errors
def doctor(as_json: bool = JSON_OPT) -> None:
    """Report the engine version and paths, and whether each cloud can be used."""
    from skyplan.cli import views
    from skyplan.clouds import registry
    from skyplan.home import home

    info: dict = {"skyplan_home": str(home())}
    try:
        from skyplan.provision.engine import doctor_info

        info["engine"] = doctor_info()
    except Exception as exc:  # the report must still list the clouds
        info["engine"] = {"ok": False, "error": str(getattr(exc, "message", exc)),
                          "hint": getattr(exc, "hint", None)}
    clouds = {}
    for name in registry.with_capability(simulator=False):
        r = registry.get(name).preflight()
        clouds[name] = {"ok": r.ok, "reason": r.reason, "fix": r.fix,
                        "credentials": r.details.get("credentials"), "plugin": r.details.get("plugin")}
    info["clouds"] = clouds
    if as_json:
        from skyplan.contract import document

        views.write_json(document(**info))
        return
    typer.echo(f"skyplan home: {info['skyplan_home']}")
    eng = info["engine"]
    for k, v in eng.items():
        if v is None or k == "shim_python":  # the shim runs the caller's interpreter (SKYPLAN_PYTHON)
            continue
        if isinstance(v, bool):
            v = "yes" if v else "no"
        elif isinstance(v, dict):
            v = ", ".join(f"{a}={b}" for a, b in v.items())
        typer.echo(f"engine {k}: {v}")
    for name, r in clouds.items():
        mark = "ok" if r["ok"] else "unavailable"
        typer.echo(f"{name:6} {mark}" + ("" if r["ok"] else f": {r['reason']}; to enable it: {r['fix']}"))
        if not registry.capabilities(name).runs_here:  # nothing to install, no credentials
            typer.echo(f"{'':6} credentials: {r['credentials'] or 'none found'}; plugin: {r['plugin'] or 'not installed'}")


@sim_app.command("ledger")
@handle_errors
def sim_ledger(as_json: bool = JSON_OPT) -> None:
    """List the sim cloud's live resources (leaks show up here)."""
    from skyplan.cli import views
    from skyplan.clouds.sim.ledger import live_resources

    rows = live_resources()
    if as_json:
        from skyplan.contract import document, utc_time

        times = ("created_at", "preempt_at", "preempted_at", "ended_at")
        views.write_json(document(resources=[{**r, **{k: utc_time(r.get(k)) for k in times if k in r}}
                                             for r in rows]))
        return
    if not rows:
        typer.echo("No live sim resources.")
    for r in rows:
        typer.echo(" ".join(f"{k}={v}" for k, v in r.items()))


@sim_app.command("preempt")
@handle_errors
def sim_preempt(
    cluster: str = typer.Argument(..., help="The cluster whose sim nodes to preempt.",
                                  autocompletion=_complete_cluster),
    as_json: bool = JSON_OPT,
) -> None:
    """Preempt a sim cluster now, as the provider would: its nodes' processes are
    killed and the ledger says preempted (a managed job recovers)."""
    from skyplan.cli import views
    from skyplan.clouds.sim.preempt import preempt_cluster
    from skyplan.errors import NotFoundError

    rows = preempt_cluster(cluster)
    if not rows:
        raise NotFoundError(f"cluster '{cluster}' has no live sim node to preempt",
                            hint="see `skyplan sim ledger` for the live sim resources")
    if as_json:
        from skyplan.contract import document

        views.write_json(document(cluster=cluster, preempted=[r["id"] for r in rows]))
    else:
        typer.echo(f"Preempted {len(rows)} node{'s' if len(rows) != 1 else ''} of '{cluster}': "
                   + ", ".join(f"{r['id']} ({r['cloud']} {r['zone'] or r['region']})" for r in rows))


@sim_app.command("reset")
@handle_errors
def sim_reset(
    scenario: Optional[str] = typer.Argument(None, help="Only this scenario file's counters (default: all)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Reset the `times:` counters and the switches set by `sim switch`, so a scenario
    replays from its start."""
    from skyplan.cli import views
    from skyplan.clouds.sim.ledger import reset_hits, reset_switches
    from skyplan.clouds.sim.scenario import load_scenario

    scen = load_scenario(scenario) if scenario else None
    n = reset_hits(None, scen.sha256 if scen is not None else None)
    k = reset_switches(None, [name for name, _ in scen.switches] if scen is not None else None)
    if as_json:
        from skyplan.contract import document

        views.write_json(document(reset=n, switches=k))
    else:
        typer.echo(f"Reset {n} counter{'s' if n != 1 else ''} and {k} switch{'es' if k != 1 else ''}.")


@sim_app.command("switch")
@handle_errors
def sim_switch(
    name: str = typer.Argument(..., help="The scenario switch (rules with `switch: NAME` match while it is on)."),
    state: str = typer.Argument(..., help="on or off.", metavar="on|off"),
    as_json: bool = JSON_OPT,
) -> None:
    """Turn a scenario switch on or off, for every sim create from now on (e.g. spot
    capacity gone, then back): kept in the sim ledger of this skyplan home."""
    from skyplan.cli import views
    from skyplan.clouds.sim.ledger import set_switch
    from skyplan.clouds.sim.scenario import SWITCH_NAME
    from skyplan.errors import UsageError

    if not SWITCH_NAME.match(name):
        raise UsageError(f"'{name}' is not a switch name", hint="letters, digits, '_', '.' and '-', as in the "
                                                              "scenario's switches")
    if state not in ("on", "off"):
        raise UsageError(f"a switch is 'on' or 'off', not '{state}'", hint=f"skyplan sim switch {name} on")
    was = set_switch(None, name, state == "on")
    if as_json:
        from skyplan.contract import document

        views.write_json(document(switch=name, on=state == "on", was=was))
    else:
        before = "" if was is None else f" (was {'on' if was else 'off'})"
        typer.echo(f"Switch '{name}' is {state}{before}.")


def _register_housekeeping() -> None:
    from skyplan.cli.gc import debug_app, gc

    app.command("gc")(gc)
    app.add_typer(debug_app, name="debug", hidden=True)


_register_housekeeping()


def _register_plugins() -> None:
    from skyplan.cli.plugins import plugins_app

    app.add_typer(plugins_app, name="plugins")


_register_plugins()


def _register_show() -> None:
    from skyplan.cli.lifecycle import down, status
    from skyplan.cli.show import show

    app.command("show")(show)
    app.command("status")(status)
    app.command("down")(down)


_register_show()


def _register_nodes() -> None:
    from skyplan.cli.nodes import exec_command, ssh_command

    app.command("exec")(exec_command)
    app.command("ssh")(ssh_command)


_register_nodes()


def _register_jobs() -> None:
    from skyplan.cli.jobs import jobs_app

    app.add_typer(jobs_app, name="jobs")


_register_jobs()


def _register_serve() -> None:
    from skyplan.cli.serve import serve_app

    app.add_typer(serve_app, name="serve")


_register_serve()


def _terminated(signum, frame):  # noqa: ANN001
    # CI cancels jobs with SIGTERM: clean up exactly as for Ctrl-C.
    raise KeyboardInterrupt


def run() -> None:
    """Console-script entry point."""
    import signal

    from skyplan.home import private_umask

    # Everything skyplan and its children (the engine, providers, sandboxes)
    # create is private: the home holds state, stack checkpoints and task envs.
    private_umask()
    signal.signal(signal.SIGTERM, _terminated)
    try:
        app()
    finally:
        # The command has chosen its exit code: a second Ctrl-C or SIGTERM during the
        # interpreter's shutdown must not print a traceback from threading's exit hook.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: None)


if __name__ == "__main__":
    run()
