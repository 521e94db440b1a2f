"""``skyplan serve ...``: services (up, status, logs, update, down).

Thin: each command parses, calls ``skyplan.serve`` (the store, the submit
checks, the daemon) and renders (``serve_views``). The controller is a
process per service (``skyplan.serve.daemon``); every command here that
finds a service whose controller died starts it again (``ensure_running``).

Exit codes (the README's table): 0 success; 2 invalid input (a bad file, an
unknown service, a name in use, no ``--yes`` off a terminal); 3 no feasible
placement at ``up`` or ``update`` (nothing recorded); 1 the controller did not
come up (its load balancer not bound in time) or the service FAILED while
``up`` followed it; 130 Ctrl-C while following (the service keeps running).
"""

from __future__ import annotations

import sys
import time
from typing import Any, Optional

import typer

from skyplan.cli.errors import handle_errors

serve_app = typer.Typer(help="Services: replicas of a task behind a load balancer, autoscaled, on spot and "
                        "on-demand.", no_args_is_help=True)

JSON_OPT = typer.Option(False, "--json", help="Print machine-readable JSON.")
YES_OPT = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")

#: Seconds ``serve up`` waits for the controller to bind the load balancer (publish the endpoint).
START_WAIT_S = 60.0
#: Seconds between two looks at the store while following a service.
POLL_S = 0.5
#: Times ``serve down`` starts a controller that died before the service is gone.
DOWN_RESTARTS = 3


def _controller_error(message: str, hint: str) -> Exception:
    from skyplan.errors import ServeControllerError

    return ServeControllerError(message, hint=hint)


def _store() -> Any:
    from skyplan.serve.store import ServeStore

    return ServeStore()


def _alive(pid: int | None) -> bool:
    from skyplan.serve import daemon

    return daemon._alive(pid)  # the daemon's own test of its pid


def _ensure(name: str) -> Any:
    from skyplan.serve import daemon

    return daemon.ensure_running(name)


def _revive(svc: Any) -> bool:
    """Start the controller of ``svc`` when the one it recorded is not running; True when started."""
    if svc.controller_pid is not None and _alive(svc.controller_pid):
        return False
    _ensure(svc.name)
    return True


def _get(store: Any, name: str) -> Any:
    from skyplan.errors import NotFoundError

    svc = store.service(name)
    if svc is None:
        raise NotFoundError(f"no service named '{name}'", hint="`skyplan serve status` lists the services")
    return svc


def _log_hint(name: str) -> str:
    return f"see `skyplan serve logs {name} --controller`"


# --- up -----------------------------------------------------------------------------------------

@serve_app.command("up")
@handle_errors
def up(
    service_file: str = typer.Argument(..., help="Service YAML: a task with a `service:` section."),
    name: Optional[str] = typer.Option(None, "--name", "-n", help="The service's name (default: the task's name, "
                                       "else the file's)."),
    yes: bool = YES_OPT,
    detach: bool = typer.Option(False, "--detach", "-d", help="Return once the load balancer is up; do not follow "
                                "the replicas."),
    simulate: Optional[str] = typer.Option(None, "--simulate", envvar="SKYPLAN_SIMULATE",
                                           help="Scenario file: the sim cloud stands in for AWS/GCP/Azure."),
    as_json: bool = JSON_OPT,
    catalog: Optional[str] = typer.Option(None, "--catalog", envvar="SKYPLAN_CATALOG", help="Offer catalog file."),
    backend: Optional[str] = typer.Option(None, "--backend", envvar="SKYPLAN_BACKEND",
                                          help="Pulumi backend URL (default: file:// under the skyplan home)."),
) -> None:
    """Start a service: its controller launches the replicas (planner and failover, as apply),
    probes them and puts the READY ones behind a load balancer on 127.0.0.1. Follows the
    replicas until the service is READY unless --detach."""
    from skyplan.cli import views
    from skyplan.serve.submit import prepare, service_name

    prep = prepare(service_file, simulate=simulate, catalog=catalog, backend=backend)  # exit 2/3: nothing recorded
    svc_name = service_name(service_file, prep.task, name)
    with _store() as store:
        store.check_name_free(svc_name)  # before asking
        if not yes:
            _confirm_up(prep, svc_name, as_json)
        store.create_service(svc_name, prep.task_json, prep.options)
        from skyplan.serve import paths

        paths.retire(svc_name)  # an earlier service's logs of this name: not mixed with this one's
        _ensure(svc_name)
        endpoint = _wait_endpoint(store, svc_name)
        if as_json:
            views.write_json({"service": svc_name, "endpoint": endpoint})
        else:
            typer.echo(f"Service '{svc_name}' is up: its endpoint is {endpoint} (replicas are launching).", err=True)
        if detach:
            if not as_json:
                typer.echo(f"See it with `skyplan serve status {svc_name}`; stop it with `skyplan serve down "
                           f"{svc_name}`.", err=True)
            return
        code = _follow_until_ready(store, svc_name, out=sys.stderr if as_json else sys.stdout)
    if code:
        raise typer.Exit(code)


def _confirm_up(prep: Any, name: str, as_json: bool) -> None:
    from skyplan.cli import prompts, views
    from skyplan.errors import UsageError

    if as_json or not prompts.can_ask():
        raise UsageError("refusing to start a service without --yes: no terminal to confirm on",
                         hint="add --yes")
    cfg = prep.config
    for spot, plan in prep.plans:
        typer.echo(f"{'Spot' if spot else 'On-demand'} replicas: the first placements they try", err=True)
        views.render_plan(plan, top=5, file=sys.stderr)
    span = f"{cfg.min_replicas}" if cfg.min_replicas == cfg.max_replicas else f"{cfg.min_replicas}-{cfg.max_replicas}"
    if not prompts.confirm(f"Start service '{name}' with {span} replica(s)?", nothing_done="nothing was started."):
        typer.echo("Cancelled; nothing was started.", err=True)
        raise typer.Exit(0)


def _wait_endpoint(store: Any, name: str) -> str:
    """The service's endpoint once the controller has bound the load balancer; an error
    (exit 1) when the controller fails or does not bind it within ``START_WAIT_S``."""
    deadline = time.monotonic() + START_WAIT_S
    seen_pid = False
    while True:
        svc = _get(store, name)
        if svc.endpoint:
            return svc.endpoint
        if svc.status.value in ("FAILED", "CONTROLLER_FAILED"):
            raise _controller_error(f"the controller of service '{name}' failed before its load balancer was up",
                                    f"{_log_hint(name)}; `skyplan serve down {name}` removes the service")
        seen_pid = seen_pid or svc.controller_pid is not None
        if seen_pid and not _alive(svc.controller_pid):
            raise _controller_error(f"the controller of service '{name}' exited before its load balancer was up",
                                    f"{_log_hint(name)}; `skyplan serve down {name}` removes the service")
        if time.monotonic() > deadline:
            raise _controller_error(f"the controller of service '{name}' did not start its load balancer within "
                                    f"{START_WAIT_S:g} s",
                                    f"{_log_hint(name)}; `skyplan serve status {name}` shows it later, "
                                    f"`skyplan serve down {name}` removes it")
        time.sleep(POLL_S / 5)


def _print(out: Any, line: str) -> None:
    out.write(line + "\n")
    out.flush()


def _follow_until_ready(store: Any, name: str, *, out: Any) -> int:
    """Print the service's transitions until it is READY (0), FAILED (1) or gone (1); Ctrl-C: 130."""
    from skyplan.cli.serve_views import EventLines
    from skyplan.errors import EXIT_INTERNAL, EXIT_INTERRUPTED

    last = 0
    lines = EventLines(name)
    try:
        while True:
            svc = store.service(name)
            if svc is None:
                _print(out, f"Service '{name}' is gone (taken down).")
                return EXIT_INTERNAL
            for eid, e in store.events_after(name, last):
                last = eid
                _print(out, lines.line(e))
            if svc.controller_pid is not None and not _alive(svc.controller_pid):
                _print(out, f"The controller of '{name}' is not running: starting it again.")
                store.set_service(name, controller_pid=None)  # the new one records its own
                _ensure(name)
            if svc.status.value == "READY":
                _print(out, f"Service '{name}' is READY at {svc.endpoint}. `skyplan serve status {name}` shows it.")
                return 0
            if svc.status.value in ("FAILED", "CONTROLLER_FAILED"):
                _print(out, f"Service '{name}' {svc.status.value}; {_log_hint(name)}.")
                return EXIT_INTERNAL
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        typer.echo(f"\nInterrupted: stopped following; service '{name}' keeps running. See it with `skyplan serve "
                   f"status {name}`; stop it with `skyplan serve down {name}`.", err=True)
        return EXIT_INTERRUPTED


# --- status -------------------------------------------------------------------------------------

@serve_app.command("status")
@handle_errors
def status(
    name: Optional[str] = typer.Argument(None, help="One service (default: every service)."),
    as_json: bool = typer.Option(False, "--json", help="With NAME the service as an object, without a list of "
                                 "them: {name, version, status, endpoint, replicas: [...]}."),
) -> None:
    """Show services and their replicas (two tables), or one service. A service whose
    controller died is given a new one."""
    from skyplan.cli import views
    from skyplan.cli.serve_views import render_status

    with _store() as store:
        services = [_get(store, name)] if name is not None else store.services()
        if any([_revive(s) for s in services]):
            services = [s for s in (store.service(s.name) for s in services) if s is not None]
        if as_json:
            docs = [s.to_json() for s in services]
            views.write_json(docs[0] if name is not None else docs)
            return
        metrics = {s.name: store.metrics(s.name) for s in services}
    render_status(services, metrics=metrics)


# --- logs ---------------------------------------------------------------------------------------

@serve_app.command("logs")
@handle_errors
def logs(
    name: str = typer.Argument(..., help="The service."),
    replica_id: Optional[int] = typer.Argument(None, help="A replica's id: its launch and its task's output."),
    lb: bool = typer.Option(False, "--lb", "--load-balancer", help="The load balancer's log."),
    controller: bool = typer.Option(False, "--controller", help="The controller's log."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing lines as they are written (until the "
                                "replica, or for --lb/--controller the service, is gone; or Ctrl-C)."),
    as_json: bool = typer.Option(False, "--json", help="A log event per line, then one summary."),
) -> None:
    """Print a replica's log (its launch, then its task's output), or the load balancer's
    (--lb), or the controller's (--controller)."""
    from skyplan.errors import NotFoundError, UsageError
    from skyplan.serve import paths

    if sum((replica_id is not None, lb, controller)) != 1:
        raise UsageError("give a REPLICA_ID, --lb or --controller (one of them)",
                         hint=f"`skyplan serve status {name}` lists the replicas")
    with _store() as store:
        svc = store.service(name)
        if svc is None and not paths.service_dir(name).is_dir():
            raise NotFoundError(f"no service named '{name}'", hint="`skyplan serve status` lists the services")
        if replica_id is not None:
            path, source = paths.replica_log(name, replica_id), "replica"
            known = svc is not None and any(r.id == replica_id for r in store.replicas(name, include_gone=True))
            if not known and not path.exists():
                raise NotFoundError(f"service '{name}' has no replica {replica_id}",
                                    hint=f"`skyplan serve status {name}` lists its replicas")
        else:
            path, source = (paths.lb_log(name), "lb") if lb else (paths.controller_log(name), "controller")

        def still_written() -> bool:
            if replica_id is None:
                return store.service(name) is not None
            return any(r.id == replica_id for r in (store.replicas(name) if store.service(name) else []))

        lines = _tail(path, follow=follow, still_written=still_written)
        try:
            if as_json:
                from skyplan.cli.views import write_json_line
                from skyplan.contract import event

                for line in lines:
                    write_json_line(event("log", line=line.rstrip("\n")))
                write_json_line(event("summary", service=name, source=source, replica_id=replica_id,
                                      path=str(path)))
                return
            for line in lines:
                sys.stdout.write(line)
                sys.stdout.flush()
        except KeyboardInterrupt:
            from skyplan.errors import EXIT_INTERRUPTED

            raise typer.Exit(EXIT_INTERRUPTED) from None
    if not path.exists() and not as_json:
        typer.echo(f"No log yet at {path}.", err=True)


def _tail(path: Any, *, follow: bool, still_written: Any) -> Any:
    """The lines of ``path``; with ``follow`` new ones as they come, until ``still_written()``
    is False (then what is left is read once more)."""
    pos = 0
    partial = ""
    while True:
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                fh.seek(pos)
                data = fh.read()
                pos = fh.tell()
        except FileNotFoundError:
            data = ""
        if data:
            chunk = partial + data
            *whole, partial = chunk.split("\n")
            for line in whole:
                yield line + "\n"
        if not follow:
            break
        if not data:
            if not still_written():
                follow = False  # one more read picks up the last lines
                continue
            time.sleep(POLL_S)
    if partial:
        yield partial + "\n"


# --- update -------------------------------------------------------------------------------------

@serve_app.command("update")
@handle_errors
def update(
    name: str = typer.Argument(..., help="The service."),
    service_file: str = typer.Argument(..., help="The new service YAML."),
    yes: bool = YES_OPT,
    as_json: bool = JSON_OPT,
    catalog: Optional[str] = typer.Option(None, "--catalog", envvar="SKYPLAN_CATALOG", help="Offer catalog file."),
) -> None:
    """Add a version of the service from SERVICE_FILE: the controller rolls it out, launching
    new replicas while the old ones serve and draining an old one only once a new one is READY."""
    from skyplan.cli import prompts, views
    from skyplan.errors import UsageError
    from skyplan.serve.submit import prepare

    with _store() as store:
        svc = _get(store, name)
        options = store.options(name)
        prep = prepare(service_file, simulate=None, catalog=catalog or options.get("catalog"),
                       backend=options.get("backend"))
        if not yes:
            if as_json or not prompts.can_ask():
                raise UsageError("refusing to update a service without --yes: no terminal to confirm on",
                                 hint="add --yes")
            if not prompts.confirm(f"Roll service '{name}' from version {svc.version} to {svc.version + 1} "
                                   f"({service_file})?", nothing_done="nothing was changed."):
                typer.echo("Cancelled; nothing was changed.", err=True)
                raise typer.Exit(0)
        version = store.add_version(name, prep.task_json)
        _revive(store.service(name))
    if as_json:
        from skyplan.contract import document

        views.write_json(document(service=name, version=version))
        return
    typer.echo(f"Service '{name}': version {version} added; the controller rolls it out (new replicas first, "
               f"old ones drained once new ones are READY). Watch it with `skyplan serve status {name}`.")


# --- down ---------------------------------------------------------------------------------------

@serve_app.command("down")
@handle_errors
def down(
    name: str = typer.Argument(..., help="The service."),
    yes: bool = YES_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Take a service down: every replica leaves the load balancer, finishes its requests
    (bounded by the drain timeout) and is torn down; then the controller exits. Waits
    for all of it. A service that does not exist: nothing to do (exit 0)."""
    from skyplan.cli import prompts, views
    from skyplan.contract import document
    from skyplan.errors import UsageError

    out = sys.stderr if as_json else sys.stdout
    with _store() as store:
        svc = store.service(name)
        if svc is None:
            if as_json:
                views.write_json(document(service=name, existed=False, replicas_torn_down=0))
            else:
                typer.echo(f"No service named '{name}': nothing to take down.")
            return
        if not yes:
            if as_json or not prompts.can_ask():
                raise UsageError("refusing to take a service down without --yes: no terminal to confirm on",
                                 hint="add --yes")
            if not prompts.confirm(f"Take service '{name}' down ({len(svc.replicas)} replica(s))?",
                                   nothing_done="nothing was changed."):
                typer.echo("Cancelled; nothing was changed.", err=True)
                raise typer.Exit(0)
        since = store.last_event_id(name)
        store.request_down(name)
        _ensure(name)
        _print(out, f"Taking service '{name}' down: draining and tearing down {len(svc.replicas)} replica(s)...")
        torn = _wait_down(store, name, since, out=out, status=svc.status.value)
    if as_json:
        views.write_json(document(service=name, existed=True, replicas_torn_down=torn))
    else:
        _print(out, f"Service '{name}' is down.")


def _wait_down(store: Any, name: str, since: int, *, out: Any, status: str | None = None) -> int:
    """Print the transitions until the service is gone and its controller has exited; the
    number of replicas torn down. A controller that dies first is started again (at most
    ``DOWN_RESTARTS`` times, then an error, exit 1)."""
    from skyplan.cli.serve_views import EventLines
    from skyplan.errors import EXIT_INTERRUPTED
    from skyplan.serve.store import GONE_REASON

    last, restarts, pid, torn = since, 0, None, set()
    unseen_since: float | None = None  # no controller recorded yet (one is starting) since then
    lines = EventLines(name, status)  # the status before down: its "down requested" is a note

    def show() -> None:
        nonlocal last
        for eid, e in store.events_after(name, last):
            last = eid
            if e.replica_id is not None and e.reason == GONE_REASON:
                torn.add(e.replica_id)
            _print(out, lines.line(e))

    try:
        while True:
            svc = store.service(name)
            show()  # (after the look: a deletion's last teardowns are read here)
            if svc is None:
                break
            pid = svc.controller_pid or pid
            now = time.monotonic()
            if svc.controller_pid is None:
                unseen_since = unseen_since if unseen_since is not None else now
            else:
                unseen_since = None
            died = svc.controller_pid is not None and not _alive(svc.controller_pid)
            if died or (unseen_since is not None and now - unseen_since > START_WAIT_S):
                restarts += 1
                if restarts > DOWN_RESTARTS:
                    raise _controller_error(f"the controller of service '{name}' keeps stopping before the service "
                                            "is down", f"{_log_hint(name)}; then run `skyplan serve down {name}` again")
                _print(out, f"The controller of '{name}' is not running: starting it again to finish.")
                store.set_service(name, controller_pid=None)
                unseen_since = now
                _ensure(name)
            time.sleep(POLL_S)
        # Gone from the store: the controller exits right after (it logs its last lines first).
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(POLL_S / 5)
    except KeyboardInterrupt:
        typer.echo(f"\nInterrupted: stopped waiting; the controller keeps taking '{name}' down. "
                   f"`skyplan serve status {name}` shows how far it got.", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    return len(torn)
