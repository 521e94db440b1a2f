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


def emit_error(exc: SkyplanError, *, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps({"event": "error", **exc.to_json()}, separators=(",", ":")) + "\n")
        sys.stdout.flush()
    diags = getattr(exc, "diagnostics", None)
    err = sys.stderr
    if diags:
        for d in diags:
            err.write(f"error: {d.format()}\n")
        err.write(f"{exc.message}\n")
    else:
        err.write(f"error: {exc.message}\n")
    if exc.hint:
        err.write(f"hint: {exc.hint}\n")
    err.flush()


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a command: SkyplanError -> its exit code; anything else -> exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except SkyplanError as exc:
            emit_error(exc, as_json=as_json)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            sys.stderr.write("interrupted\n")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except BrokenPipeError:
            raise typer.Exit(0) from None
        except Exception as exc:  # noqa: BLE001 - the one place that catches everything
            path = _log_internal(exc)
            msg = f"internal error: {type(exc).__name__}: {exc}"
            if as_json:
                sys.stdout.write(json.dumps({"event": "error", "error": "InternalError", "message": msg,
                                             "hint": f"details in {path}"}, separators=(",", ":")) + "\n")
            sys.stderr.write(f"error: {msg}\nhint: this is a bug in skyplan; details in {path}\n")
            logging.getLogger("skyplan").debug("internal error", exc_info=exc)
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper
