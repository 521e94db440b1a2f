"""Confirmation prompts with Terraform's care.

* The answer defaults to no: ``[y/N]``, and Enter alone does not go ahead.
* Ctrl-C or Ctrl-D (end of input) at a prompt cancels: one line saying that
  nothing was done, and exit 130, never an internal error.
* With no terminal to ask on, the caller refuses instead (``--yes`` is the way).
"""

from __future__ import annotations

import sys

import typer

from skyplan.errors import EXIT_INTERRUPTED, UsageError

YES = ("y", "yes")
NO = ("", "n", "no")


def can_ask() -> bool:
    return sys.stdin.isatty()


def require_terminal(action: str, hint: str) -> None:
    """UsageError (exit 2) when there is no terminal to confirm ``action`` on."""
    if not can_ask():
        raise UsageError(f"refusing to {action} without --yes: no terminal to confirm on", hint=hint)


def confirm(question: str, *, nothing_done: str) -> bool:
    """Ask ``question [y/N]`` on stderr until the answer is yes or no (default no).

    Ctrl-C or Ctrl-D prints ``nothing_done`` and exits 130. A no returns False (the
    caller says what it did not do)."""
    while True:
        try:
            sys.stderr.write(_fit(f"{question} [y/N]: "))
            sys.stderr.flush()
            line = sys.stdin.readline()
        except KeyboardInterrupt:
            cancel(nothing_done)
        if not line:  # Ctrl-D: end of input
            cancel(nothing_done)
        answer = line.strip().lower()
        if answer in YES:
            return True
        if answer in NO:
            return False
        sys.stderr.write("Please answer y or n.\n")


def _fit(prompt: str) -> str:
    """The prompt wrapped between words at the terminal's width (the terminal would
    cut a word), the answer typed after its last line."""
    from skyplan.cli.tables import console_width, wrap_line

    return "\n".join(wrap_line(prompt.rstrip(), console_width(sys.stderr))) + " "


def cancel(nothing_done: str) -> None:
    """End the command at a prompt: exit 130, saying what was not done."""
    sys.stderr.write(f"\nCancelled; {nothing_done}\n")
    sys.stderr.flush()
    raise typer.Exit(EXIT_INTERRUPTED)
