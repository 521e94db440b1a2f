"""``skyplan jobs ...``: managed jobs (launch, logs, cancel; queue and dashboard
are registered beside them by ``_register``).

Thin: each command parses, calls ``skyplan.jobs`` and renders. Exit codes (the
README's table): 0 success; 2 invalid input (no such job, a bad task file);
3 no feasible candidate at submission; and, for ``jobs launch`` without
``--detach`` (it follows the job to its end), the job's end: 7 FAILED or
FAILED_SETUP (the user's code), 4 FAILED_NO_RESOURCE, 1 FAILED_CONTROLLER,
130 CANCELLED, or Ctrl-C while following (the job keeps running).
"""

from __future__ import annotations

import sys
from typing import Optional

import typer

from skyplan.cli.errors import handle_errors

jobs_app = typer.Typer(help="Managed jobs: run a task (or a pipeline) until it succeeds, recovering from "
                       "preemptions and failures.", no_args_is_help=True)

JSON_OPT = typer.Option(False, "--json", help="Print machine-readable JSON.")
NAME_OPT = typer.Option(None, "--name", "-n", help="The job's name (the newest job of that name).")


def _exit_code(status) -> int:  # noqa: ANN001 - a Status
    from skyplan.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_PROVISION_FAILED, EXIT_TASK_FAILED
    from skyplan.jobs.states import Status

    return {Status.SUCCEEDED: 0, Status.FAILED: EXIT_TASK_FAILED, Status.FAILED_SETUP: EXIT_TASK_FAILED,
            Status.FAILED_NO_RESOURCE: EXIT_PROVISION_FAILED, Status.FAILED_CONTROLLER: EXIT_INTERNAL,
            Status.CANCELLED: EXIT_INTERRUPTED}.get(status, EXIT_INTERNAL)


def _use_spot(value: Optional[str]) -> Optional[bool]:
    from skyplan.errors import UsageError

    if value is None:
        return None
    v = value.strip().lower()
    if v in ("true", "yes", "1"):
        return True
    if v in ("false", "no", "0"):
        return False
    raise UsageError(f"--use-spot takes true or false, not {value!r}", hint="e.g. `--use-spot false`")


@jobs_app.command("launch")
@handle_errors
def launch(
    task_file: str = typer.Argument(..., help="Task YAML (several documents: a pipeline, run in order)."),
    name: Optional[str] = typer.Option(None, "--name", "-n", help="The job's name (default: the pipeline's or "
                                       "task's name)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    detach: bool = typer.Option(False, "--detach", "-d", help="Return once submitted; do not follow the logs."),
    simulate: Optional[str] = typer.Option(None, "--simulate", envvar="SKYPLAN_SIMULATE",
                                           help="Scenario file: the sim cloud stands in for AWS/GCP/Azure."),
    use_spot: Optional[str] = typer.Option(None, "--use-spot", metavar="true|false",
                                           help="Override every task's use_spot."),
    as_json: bool = JSON_OPT,
    catalog: Optional[str] = typer.Option(None, "--catalog", envvar="SKYPLAN_CATALOG", help="Offer catalog file."),
    backend: Optional[str] = typer.Option(None, "--backend", envvar="SKYPLAN_BACKEND",
                                          help="Pulumi backend URL (default: file:// under the skyplan home)."),
) -> None:
    """Submit a managed job: the jobs controller launches it, recovers it from preemptions
    and failures, and tears it down when it ends. Follows its logs until then unless --detach."""
    from skyplan.cli import views
    from skyplan.jobs.submit import submit

    spot = _use_spot(use_spot)
    if not yes:
        from skyplan.cli.prompts import confirm, require_terminal

        require_terminal("launch a managed job", hint="add --yes")
        if not confirm(f"Launch a managed job from {task_file}?", nothing_done="no job was submitted."):
            typer.echo("No job was submitted.", err=True)
            raise typer.Exit(0)
    done = submit(task_file, name=name, simulate=simulate, use_spot=spot, catalog=catalog, backend=backend)
    if as_json:
        views.write_json({"job_id": done.job_id, "name": done.name})
    else:
        typer.echo(f"Managed job {done.job_id} ('{done.name}', {done.tasks} task{'s' if done.tasks != 1 else ''}) "
                   f"submitted.", err=True)
    if detach:
        if not as_json:
            typer.echo(f"Follow it with `skyplan jobs logs {done.job_id}`; see `skyplan jobs queue`.", err=True)
        return
    code = _follow(done.job_id, out=sys.stderr if as_json else sys.stdout)
    if code:
        raise typer.Exit(code)


def _follow(job_id: int, *, out=None) -> int:  # noqa: ANN001
    """Print the job's runs until it ends; its exit code (``_exit_code``)."""
    from skyplan.errors import EXIT_INTERRUPTED
    from skyplan.jobs import logs
    from skyplan.jobs.store import Store

    out = out or sys.stdout
    with Store() as store:
        try:
            for line in logs.follow_job(store, job_id):
                out.write(line)
                out.flush()
        except KeyboardInterrupt:
            typer.echo(f"\nInterrupted: stopped following; managed job {job_id} keeps running. "
                       f"Follow it with `skyplan jobs logs {job_id}`; cancel it with `skyplan jobs cancel {job_id}`.",
                       err=True)
            return EXIT_INTERRUPTED
        job = store.job(job_id)
    task = next((t for t in job.tasks if t.status == job.status), None) if job else None
    last = task.events[-1].reason if task is not None and task.events else ""
    typer.echo(f"Managed job {job_id} {job.status.value}{': ' + last if last else ''}.", err=True)
    return _exit_code(job.status)


@jobs_app.command("logs")
@handle_errors
def logs_command(
    job_id: Optional[int] = typer.Argument(None, help="The job's id."),
    name: Optional[str] = NAME_OPT,
    follow: bool = typer.Option(False, "--follow", "-f", help="Print each line as it is written."),
    controller: bool = typer.Option(False, "--controller", help="The controller's account of the job (its "
                                    "transitions and the controller log's lines about it)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON line per run and per output line, then a "
                                 "summary with the job's status."),
) -> None:
    """Print every run of a job in order (recoveries and provisioning included), each after a
    separator line naming its placement; returns when the job has ended."""
    from skyplan.jobs import logs
    from skyplan.jobs.store import Store
    from skyplan.jobs.submit import resolve

    with Store() as store:
        if controller and as_json:
            from skyplan.errors import UsageError

            raise UsageError("--controller has no JSON form", hint="drop --json, or --controller")
        if controller and job_id is None and name is None:
            _print_file(logs.controller_log_path())
            return
        job = resolve(store, job_id, name)
        if controller:
            for line in logs.controller_lines(store, job):
                sys.stdout.write(line)
            return
        if as_json:
            _log_events(store, job.job_id)
            return
        lines = logs.follow_job(store, job.job_id) if follow or not job.status.terminal else logs.job_lines(
            store, job.job_id)
        try:
            for line in lines:
                sys.stdout.write(line)
                sys.stdout.flush()
        except KeyboardInterrupt:
            from skyplan.errors import EXIT_INTERRUPTED

            raise typer.Exit(EXIT_INTERRUPTED) from None


def _log_events(store, job_id: int) -> None:  # noqa: ANN001
    """``jobs logs --json``: a ``run`` event where each run begins, a ``log`` event per
    line, then one ``summary`` once the job has ended (``schemas/jobs-logs.schema.json``)."""
    from skyplan.cli.views import write_json_line
    from skyplan.contract import event
    from skyplan.jobs import logs

    for job, run, _, line in logs.walk(store, job_id, follow=not store.job(job_id).status.terminal):
        if line is None:
            write_json_line(event("run", task_index=run.task_index, run_no=run.run_no, cluster=run.cluster,
                                  placement=run.placement.to_json() if run.placement else None,
                                  outcome=run.outcome))
        else:
            write_json_line(event("log", task_index=run.task_index, run_no=run.run_no, line=line.rstrip("\n")))
    job = store.job(job_id)
    write_json_line(event("summary", job_id=job.job_id, status=job.status.value))


def _print_file(path) -> None:  # noqa: ANN001
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                sys.stdout.write(line)
    except FileNotFoundError:
        typer.echo("The jobs controller has not run yet.", err=True)


@jobs_app.command("cancel")
@handle_errors
def cancel(
    job_ids: Optional[list[int]] = typer.Argument(None, help="The jobs' ids."),
    name: Optional[str] = NAME_OPT,
    all_jobs: bool = typer.Option(False, "--all", "-a", help="Every unfinished job."),
    as_json: bool = JSON_OPT,
) -> None:
    """Cancel jobs: the controller tears their clusters down (verified) and marks them CANCELLED."""
    from skyplan.cli import views
    from skyplan.errors import UsageError
    from skyplan.jobs import daemon
    from skyplan.jobs.store import Store
    from skyplan.jobs.submit import resolve

    if sum((bool(job_ids), name is not None, all_jobs)) != 1:
        raise UsageError("give job ids, -n NAME or --all (one of them)", hint="`skyplan jobs queue` lists the jobs")
    with Store() as store:
        if all_jobs:
            jobs = store.unfinished()
        elif name is not None:
            jobs = [resolve(store, None, name)]
        else:
            jobs = [resolve(store, j, None) for j in job_ids or []]
        cancelling, finished = [], []
        for job in jobs:
            (cancelling if store.request_cancel(job.job_id) else finished).append(job.job_id)
        if cancelling:
            daemon.ensure_running(store=store)
    if as_json:
        from skyplan.contract import document

        views.write_json(document(cancelling=cancelling, already_finished=finished))
        return
    if not jobs:
        typer.echo("No unfinished managed job.")
    for j in cancelling:
        typer.echo(f"Cancelling managed job {j} (its cluster is torn down; see `skyplan jobs queue`).")
    for j in finished:
        typer.echo(f"Managed job {j} has already finished.")


def _register() -> None:
    """The sub-commands other modules own (queue, dashboard), when present."""
    try:
        from skyplan.cli.jobs_views import queue
    except ImportError:
        pass
    else:
        jobs_app.command("queue")(queue)
    try:
        from skyplan.cli.jobs_dashboard import dashboard
    except ImportError:
        pass
    else:
        jobs_app.command("dashboard")(dashboard)


_register()
