"""``apply``'s confirmation, with Terraform's care.

With ``--yes`` nothing is asked and a replacement is allowed. Otherwise, on a
terminal, apply first says what it would do to the cluster (the plan's top rows
for a new cluster; the diff for a re-run in place or a replacement) and asks
``[y/N]``: Enter alone does not launch, Ctrl-C or Ctrl-D cancels with exit 130.
A cluster that already matches is not asked about: there is nothing to do.
Without a terminal (CI, pipes, ``--json``) apply refuses instead of asking.
"""

from __future__ import annotations

import sys
from typing import Optional

import typer


def confirm_apply(plan, name: str, *, yes: bool, as_json: bool, simulate: Optional[str],  # noqa: ANN001
                  backend: Optional[str], rerun: bool = False) -> bool:
    """Ask (unless ``yes``) and return whether a replacement is allowed. Exits 0 on a
    no, 130 on Ctrl-C/Ctrl-D; UsageError when there is no terminal to ask on."""
    from skyplan.cli import prompts, views
    from skyplan.cli.converge_view import placement_text, render_action
    from skyplan.errors import UsageError
    from skyplan.provision.launch import preview

    if yes:
        return True
    if as_json or not prompts.can_ask():
        raise UsageError("refusing to apply without --yes: no terminal to confirm on",
                         hint=f"review it with `skyplan plan TASK -c {name}`, then run `skyplan apply ... --yes`")
    action = preview(plan, name, simulate=simulate, backend=backend, rerun=rerun)
    if action.kind == "none":
        return False
    if action.kind == "create":
        views.render_plan(plan, top=5, file=sys.stderr)
        where = f" (first trying {placement_text(action.new)})" if action.new is not None else ""
        question, nothing = f"Launch cluster '{name}'{where}?", "nothing was created."
    else:
        render_action(action, name, sys.stderr)
        verb = "Re-run the task on" if action.kind == "rerun" else "Replace"
        question, nothing = f"{verb} cluster '{name}'?", "nothing was changed."
    if not prompts.confirm(question, nothing_done=nothing):
        typer.echo(f"Cancelled; {nothing}", err=True)
        raise typer.Exit(0)
    return True
