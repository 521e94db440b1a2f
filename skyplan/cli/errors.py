"""One top-level handler maps the error root to exit codes and plain messages.

Users see a message and a next step, never a traceback. Unexpected errors are
logged with their traceback to the log file under the skyplan home, and the
message points there (exit 1).
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import traceback
from typing import Any, Callable

import typer

from skyplan.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, SkyplanError


def _log_internal(exc: BaseException) -> str:
    try:
        from skyplan.home import log_file

        path = log_file()
        with open(path, "a", encoding="utf-8") as fh:
            fh.write("".join(traceback.format_exception(exc)))
            fh.write("\n")
        return str(path)
    except Exception:  # the log itself failed; say so rather than crash
        return "(could not write the log file)"


def describe(exc: BaseException) -> tuple[int, dict[str, Any], str]:
    """How a command that raised ``exc`` ends: its exit code, the one error object
    (the inner part of ``{"error": ...}``) and the text for people (stderr).

    A SkyplanError is its own; an interrupt (Ctrl-C, or SIGTERM, which ``main.run``
    turns into one) is ``Interrupted`` (130); anything else is a bug: its traceback
    goes to the log file and it is ``InternalError`` (1)."""
    if isinstance(exc, SkyplanError):
        lines = []
        diags = getattr(exc, "diagnostics", None)
        if diags:
            lines += [f"error: {d.format()}" for d in diags]
            lines.append(getattr(exc, "headline", exc.message))  # not the findings again
        else:
            lines.append(f"error: {exc.message}")
        if exc.hint:
            lines.append(f"hint: {exc.hint}")
        return exc.exit_code, exc.to_json(), "".join(line + "\n" for line in lines)
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, error_object("Interrupted", "interrupted", EXIT_INTERRUPTED), "interrupted\n"
    path = _log_internal(exc)
    msg = f"internal error: {type(exc).__name__}: {exc}"
    logging.getLogger("skyplan").debug("internal error", exc_info=exc)
    hint = f"this is a bug in skyplan; details in {path}"
    return EXIT_INTERNAL, error_object("InternalError", msg, EXIT_INTERNAL, hint=hint), f"error: {msg}\nhint: {hint}\n"


def error_object(code: str, message: str, exit_code: int, *, hint: str | None = None) -> dict[str, Any]:
    """An error object for what is not a SkyplanError (same keys as ``SkyplanError.to_json``)."""
    return {"code": code, "message": message, "hint": hint, "exit_code": exit_code, "file": None, "line": None,
            "path": None}


def write_error_document(error: dict[str, Any]) -> None:
    """``{"schema_version", "error": {...}}`` on stdout: what a ``--json`` command prints instead of its document."""
    from skyplan.contract import document

    sys.stdout.write(json.dumps(document(error=error), separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _check_config_file() -> None:
    """A mistake in ``$SKYPLAN_HOME/config.yaml`` stops every command (exit 2, with
    file:line:col), not only those that read a setting: a typo must not pass silently.
    An absent file costs one stat; the home is not created for it."""
    import os

    from skyplan.home import home_path

    path = home_path() / "config.yaml"
    if os.path.lexists(path):
        from skyplan.config import read_config

        read_config(path)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a command: SkyplanError -> its exit code; an interrupt -> 130;
    anything else -> exit 1. Under ``--json`` the error object goes to stdout too."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            _check_config_file()
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except BrokenPipeError:
            raise typer.Exit(0) from None
        except (KeyboardInterrupt, Exception) as exc:  # noqa: BLE001 - the one place that catches everything
            code, error, text = describe(exc)
            if as_json:
                write_error_document(error)
            sys.stderr.write(text)
            sys.stderr.flush()
            raise typer.Exit(code) from None

    return wrapper
