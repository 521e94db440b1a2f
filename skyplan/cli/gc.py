"""`skyplan gc` (stacks no cluster uses, and housekeeping) and the hidden `skyplan debug`
group (`debug failpoints`). Registered by ``cli/main.py``."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from skyplan.cli.errors import handle_errors

debug_app = typer.Typer(help="Internals, for tests and debugging.", no_args_is_help=True)


@handle_errors
def gc(
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be collected."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    backend: Optional[str] = typer.Option(None, "--backend", envvar="SKYPLAN_BACKEND", help="Pulumi backend URL."),
) -> None:
    """Destroy the stacks on the backend that no cluster is using, and remove leftover files.

    A stack is collected when its cluster is unknown, down, failed, stopped
    mid-launch, or up on another stack; clusters another skyplan process holds
    are skipped. Also removes what removed stacks left on a file:// backend and
    the lock files of clusters that are gone.
    """
    from skyplan.cli import views
    from skyplan.contract import document
    from skyplan.errors import EXIT_CLEANUP_FAILED, UsageError
    from skyplan.provision import gc as gc_mod
    from skyplan.provision import housekeeping
    from skyplan.provision.driver import StackDriver
    from skyplan.state import StateDB

    if not yes and not dry_run and (as_json or not sys.stdin.isatty()):
        raise UsageError("refusing to collect without --yes: no terminal to confirm on",
                         hint="list what would go with `skyplan gc --dry-run`, then run `skyplan gc --yes`")
    driver = StackDriver(backend)
    housekeeping.note_run_and_rotate()
    db = StateDB()
    garbage = gc_mod.find(driver, db)
    if dry_run:
        if as_json:
            views.write_json(document(dry_run=True, garbage=[g.to_json() for g in garbage]))
        else:
            _render(garbage)
        return
    if garbage and not yes:
        _render(garbage, file=sys.stderr)
        from skyplan.cli.prompts import confirm  # [y/N]; Ctrl-C or Ctrl-D: exit 130

        if not confirm(f"Destroy {len(garbage)} stack{'s' if len(garbage) != 1 else ''}?",
                       nothing_done="nothing was destroyed."):
            typer.echo("Cancelled; nothing was destroyed.", err=True)
            raise typer.Exit(0)
    done = gc_mod.collect(driver, db, garbage)
    if as_json:
        views.write_json(document(dry_run=False, garbage=[g.to_json() for g in garbage], **done.to_json()))
    else:
        n = len(done.destroyed)
        parts = [f"collected {n} stack{'s' if n != 1 else ''} (destroyed and verified empty)"]
        if done.forgotten:
            parts.append(f"forgot {', '.join(done.forgotten)} (down)")
        parts.append(f"removed {done.files_removed} leftover file{'s' if done.files_removed != 1 else ''}")
        typer.echo("; ".join(parts).capitalize() + ".")
        for s in done.skipped:
            typer.echo(f"skipped {s['stack']}: {s['reason']}", err=True)
    if any("locked" not in s["reason"] for s in done.skipped):
        raise typer.Exit(EXIT_CLEANUP_FAILED)


def _render(garbage, file=None) -> None:  # noqa: ANN001
    out = file or sys.stdout
    if not garbage:
        out.write("No stack is left without a cluster.\n")
        return
    out.write(f"Stacks no cluster is using ({len(garbage)}):\n")
    for g in garbage:
        extra = f" [{'; '.join(g.resources)}]" if g.resources else ""
        out.write(f"  {g.stack}  {g.reason}{extra}\n")


@debug_app.command("failpoints")
@handle_errors
def failpoints_cmd(as_json: bool = typer.Option(False, "--json", help="Print the names as a JSON list.")) -> None:
    """List the failpoints (SKYPLAN_FAILPOINTS=NAME:kill|term|raise,...), in the order a launch passes them."""
    from skyplan import failpoints
    from skyplan.cli import views

    if as_json:
        # Issue 8's fixed contract (tests and checks are written against it): a bare JSON
        # list of strings, in launch order, not a document. The one exception to the
        # one-object rule; its schema (schemas/debug-failpoints.schema.json) is an array.
        views.write_json(list(failpoints.NAMES))
        return
    for name in failpoints.NAMES:
        on = failpoints.ACTIVE.get(name)
        typer.echo(name + (f"  ({on})" if on else ""))
