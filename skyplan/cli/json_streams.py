"""The JSON-lines commands: ``apply --json`` and ``logs --json``.

``apply --json`` writes its events on stdout, ended by exactly one ``summary`` line:
however the apply ends (the cluster up, a task that failed, an error before or
during failover, Ctrl-C, SIGTERM as CI sends it, a bug), the last line on stdout
is one ``summary`` (``skyplan.provision.events.summary_json``) whose
``exit_code`` is the process's exit status. People's text goes to stderr.

``logs --json`` writes one ``log`` line per line of output, then a ``summary``
with the task's outcome; ``apply --json`` writes the same ``log`` lines while it
follows its task. Both follow their ``schemas/<command>.schema.json``.
"""

from __future__ import annotations

import contextlib
import re
import signal
import sys
import threading
from typing import Any, Iterator, TextIO

import typer

from skyplan.cli.views import write_json_line


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    """SIGINT and SIGTERM are ignored while the summary is written: a second
    signal must not cut the one line CI waits for."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class JsonApplyStream:
    """The ``on_event`` sink of ``apply --json``, and the guard that writes its summary.

    Use as ``with stream: ...`` around the whole command: an exception leaving
    the block becomes a summary with its error object, the people's text on
    stderr, and ``typer.Exit`` with its code."""

    def __init__(self, file: TextIO | None = None) -> None:
        self.file = file
        self.cluster: str | None = None
        self.attempts: list[dict[str, Any]] = []
        self.finished = False

    def __call__(self, e: Any) -> None:
        from skyplan.provision.events import AttemptDone

        line = e.to_json()
        if isinstance(e, AttemptDone):
            self.attempts.append(line)
        write_json_line(line, self.file)

    def finish(self, summary: dict[str, Any]) -> None:
        """Write the summary (once) and end the command with its exit code."""
        with _signals_ignored():
            if not self.finished:
                self.finished = True
                write_json_line(summary, self.file)
        if summary["exit_code"]:
            raise typer.Exit(summary["exit_code"])

    def __enter__(self) -> "JsonApplyStream":
        return self

    def __exit__(self, typ: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or self.finished or isinstance(exc, (SystemExit, GeneratorExit)):
            return False
        if isinstance(exc, typer.Exit):  # a path that ended the command without a summary (a prompt's)
            from skyplan.cli.errors import error_object
            from skyplan.errors import EXIT_INTERRUPTED

            code = exc.exit_code
            if code == EXIT_INTERRUPTED:
                error = error_object("Interrupted", "interrupted", code)
            else:
                error = error_object("Cancelled" if code == 0 else "Exited",
                                     "nothing was done" if code == 0 else f"apply ended with exit code {code}", code)
            self.finish(self._failed("INTERRUPTED" if code == EXIT_INTERRUPTED else "FAILED", error, code, None))
            return False
        with _signals_ignored():
            from skyplan.cli.errors import describe

            code, error, text = describe(exc)
            status = "INTERRUPTED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
            attempts = getattr(exc, "attempts", None)
            self.finished = True
            write_json_line(self._failed(status, error, code, attempts), self.file)
            sys.stderr.write(text)
            sys.stderr.flush()
        raise typer.Exit(code) from None

    def _failed(self, status: str, error: dict[str, Any] | None, code: int, attempts: Any) -> dict[str, Any]:
        from skyplan.provision.events import attempt_json, summary_json

        seen = [attempt_json(a) for a in attempts] if attempts else self.attempts
        return summary_json(status=status, cluster=self.cluster, attempts=seen, error=error, exit_code=code)


#: How a multi-node cluster's output names the node a line came from (as SkyPilot does).
_NODE_PREFIX = re.compile(r"\(node-(\d+)\) ")


def log_event(line: str) -> dict[str, Any]:
    """One line of a task's output as a ``log`` event: ``{"event": "log", "node",
    "line"}``, ``node`` the rank from a multi-node ``(node-N) `` prefix, else 0."""
    from skyplan.contract import event

    text = line[:-1] if line.endswith("\n") else line
    m = _NODE_PREFIX.match(text)
    node, text = (int(m.group(1)), text[m.end():]) if m else (0, text)
    return event("log", node=node, line=text)


class LogLines:
    """A file-like ``out`` for the task's output that writes each line as a ``log``
    event (``apply --json`` following its task): stdout stays JSON, and the task's
    output stays on stdout, the task's own channel."""

    def __init__(self, file: TextIO | None = None) -> None:
        self.file = file
        self._buf = ""

    def write(self, text: str) -> int:
        self._buf += text
        *lines, self._buf = self._buf.split("\n")
        for line in lines:
            write_json_line(log_event(line), self.file)
        return len(text)

    def flush(self) -> None:
        if self._buf:
            write_json_line(log_event(self._buf), self.file)
            self._buf = ""


def log_events(cluster: str, lines: Iterator[str], source: Any, file: TextIO | None = None) -> None:
    """``logs --json``: a ``log`` event per line (``log_event``), then ``{"event":
    "summary", "cluster", "task"}``, the task's outcome when the lines ended."""
    from skyplan.contract import event
    from skyplan.provision.outcome import task_outcome

    for line in lines:
        write_json_line(log_event(line), file)
    write_json_line(event("summary", cluster=cluster, task=task_outcome(source).to_json()), file)
