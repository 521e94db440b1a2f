"""People's view of ``apply``: one line per attempt, a status line while one runs,
and what an interrupted apply cleans up.

Fed by the launch's two channels (``LaunchOptions.on_event``: the launch events of
``provision/events.py``; ``LaunchOptions.on_progress``: the progress events of
``provision/progress.py``); the library never prints. Everything goes to stderr:
stdout is the task's output.

One line per attempt (the README shows it)::

    #3 GCP us-central1-f n1-highmem-8 on-demand: QUOTA_EXCEEDED: Quota 'NVIDIA_V100_GPUS' exceeded.
    #9 AWS us-east-1a [use1-az1] p3.16xlarge on-demand: InsufficientInstanceCapacity: We currently ...
    #17 AWS us-west-2 usw2-az1 p3.2xlarge on-demand: up

the cloud, where (``views.place_text``: region and zone, an AWS AZ ID with the
account's zone name where the provider has said it), the instance type, the
market, then the error's code and the provider's first sentence
(``clouds.headline``). The full text is in ``apply --json`` and the log file.

While an attempt runs, a terminal shows a live line (attempt N of M, where,
phase, elapsed); elsewhere (CI logs) a plain line every ``interval_s`` seconds
(30) while nothing else was printed.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from typing import Any, Callable, TextIO

from skyplan.cli.tables import wrap_line
from skyplan.cli.views import _runs_here, cloud_text, place_text

#: A plain progress line at most this often on a non-terminal (seconds).
PLAIN_INTERVAL_S = 30.0


def market_text(use_spot: bool) -> str:
    return "spot" if use_spot else "on-demand"


def where_text(c: Any, *, text: str = "", outputs: Any = None) -> str:
    """``GCP us-central1-f n1-highmem-8 on-demand`` for a candidate."""
    if _runs_here(c.cloud):
        return f"this machine ({c.cloud})"
    return (f"{cloud_text(c.cloud)} {place_text(c.cloud, c.region, c.zone, text=text, outputs=outputs)} "
            f"{c.instance_type} {market_text(c.use_spot)}")


def cause_text(code: str | None, message: str | None) -> str:
    """The error's code and the provider's first sentence: ``CODE: First sentence.``"""
    from skyplan.clouds.headline import headline

    first = headline(message or "", code or "")
    return f"{code}: {first}" if code and first else (code or first or "failed")


def attempt_line(a: Any) -> str:
    """The one line of a finished attempt (a ``failover.Attempt``)."""
    cls = a.classification
    message = (cls.message if cls else "") or ""
    where = where_text(a.candidate, text=message, outputs=a.detail.get("outputs"))
    if a.ok:
        return f"#{a.number} {where}: up"
    line = f"#{a.number} {where}: {cause_text(cls.code if cls else None, message)}"
    if a.widened:
        line += f" (widened to {a.widened})"
    elif cls is not None and cls.kind.value == "transient" and a.block is None:
        line += " (retrying)"
    return line


def elapsed_text(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def log_attempt(a: Any, cluster: str | None = None) -> None:
    """The attempt with the provider's full text, to the log file (``cli/logfile``)."""
    cls = a.classification
    logging.getLogger("skyplan.apply").info(
        "attempt %d%s %s: %s%s", a.number, f" of cluster {cluster}" if cluster else "",
        where_text(a.candidate), "up" if a.ok else "failed",
        "" if cls is None else f" ({cls.kind.value}, {cls.scope.value}) {cls.code}: {cls.message}")


class _Running:
    """The attempt in progress, as the status line shows it."""

    def __init__(self, number: int, where: str, started: float) -> None:
        self.number = number
        self.bound = 0
        self.where = where
        self.phase = "creating"
        self.detail = ""
        self.started = started

    def text(self, now: float, width: int | None = None) -> str:
        """The status text; with ``width``, parts are dropped (the phase's detail, then
        the market and type, then where) until it fits, so a live line never wraps."""
        from rich.cells import cell_len

        of = f" of {self.bound}" if self.bound else ""
        elapsed = elapsed_text(now - self.started)
        short_where = " ".join(self.where.split()[:-2]) if len(self.where.split()) > 3 else self.where
        phase = f"{self.phase} {self.detail}" if self.detail else self.phase
        tries = [(self.where, phase), (self.where, self.phase), (short_where, self.phase), ("", self.phase)]
        text = ""
        for where, ph in tries:
            middle = f" · {where}" if where else ""
            text = f"attempt {self.number}{of}{middle} · {ph} · {elapsed}"
            if width is None or cell_len(text) <= width:
                break
        return text


class ApplyView:
    """The ``on_event`` and ``on_progress`` sink of a people's ``apply``.

    Use as ``with view: launch(...)``: on a terminal it runs the live status
    line, elsewhere a thread that prints the plain line every ``interval_s``;
    it says at once what an interrupt (Ctrl-C, SIGTERM) stops, and on the way
    out what was cleaned up. ``live``: force the terminal (True) or plain
    (False) behaviour; ``clock`` is injectable for tests."""

    def __init__(self, file: TextIO | None = None, *, simulated: bool = False, live: bool | None = None,
                 interval_s: float = PLAIN_INTERVAL_S, clock: Callable[[], float] = time.monotonic,
                 cluster: str | None = None) -> None:
        from skyplan.cli.tables import console

        out = file or sys.stderr
        self.con = console(out, soft_wrap=True)
        self.live = out.isatty() if live is None else live
        self.simulated = simulated
        self.interval_s = interval_s
        self.clock = clock
        self.cluster = cluster
        self.running: _Running | None = None
        self.cleaned: list[str] = []
        self.leaked: list[str] = []
        self.interrupted = False
        self._said_sim = False
        self._last_output = clock()
        self._lock = threading.RLock()
        self._live: Any = None
        self._spinner: Any = ""
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        self._old_handlers: dict[int, Any] = {}

    # --- output ------------------------------------------------------------------

    def say(self, text: str, style: str | None = None) -> None:
        """One line for people (plain text: provider texts may hold [brackets]).

        On a terminal a line wider than it is wrapped between words, continuation
        lines indented (the terminal would cut words and numbers anywhere);
        elsewhere (CI logs, pipes) it stays one line, for grep."""
        from rich.text import Text

        with self._lock:
            for line in wrap_line(text, self.con.width) if self.live else [text]:
                self.con.print(Text(line, style=style or ""))
            self._last_output = self.clock()

    def __rich_console__(self, console: Any, options: Any) -> Any:
        """The live line (Rich renders it on every refresh, so the elapsed time moves),
        fitted to the width it is given."""
        from rich.table import Table

        grid = Table.grid(padding=(0, 1))
        grid.add_column()
        grid.add_column()
        running = self.running
        # The spinner and the gap take 2 cells; one more keeps the cursor off the edge.
        grid.add_row(self._spinner, running.text(self.clock(), options.max_width - 3) if running else "")
        yield grid

    def tick(self) -> str | None:
        """The plain progress line, printed if an attempt runs and nothing was printed
        for ``interval_s``; returns it (None when not due). Called by the ticker thread."""
        with self._lock:
            running, now = self.running, self.clock()
            if running is None or now - self._last_output < self.interval_s:
                return None
            line = f"... {running.text(now)}"
            self.say(line)
            return line

    # --- events --------------------------------------------------------------------

    def __call__(self, e: Any) -> None:
        from skyplan.provision.events import AttemptDone, Launching, Preflight, Recover
        from skyplan.provision.progress import Cleanup, Phase

        if isinstance(e, Phase):
            self._phase(e)
        elif isinstance(e, Cleanup):
            self._cleanup(e)
        elif isinstance(e, Preflight) and not e.ok:
            reason = e.reason.removeprefix(f"{cloud_text(e.cloud)}: ")
            self.say(f"Skipping {cloud_text(e.cloud)}: {reason}; to enable it: {e.fix}", "yellow")
        elif isinstance(e, Recover):
            self.say(f"Cleaning up stack {e.stack} left by an earlier run ({e.status})")
        elif isinstance(e, Launching):
            self._launching(e)
        elif isinstance(e, AttemptDone):
            self.running = None
            log_attempt(e.attempt, self.cluster)
            self.say(attempt_line(e.attempt), "green" if e.attempt.ok else None)

    def _launching(self, e: Any) -> None:
        if self.simulated and not self._said_sim:
            from skyplan.clouds import registry

            stand_ins = ", ".join(registry.display(n) for n in registry.with_capability(simulatable=True))
            self.say(f"Simulated: the sim cloud stands in for {stand_ins}; nothing real is created.")
            self._said_sim = True
        self.running = _Running(e.number, where_text(e.candidate), self.clock())

    def _phase(self, e: Any) -> None:
        running = self.running
        if running is None or running.number != e.number:
            running = self.running = _Running(e.number, where_text(e.candidate), self.clock())
        running.bound, running.phase, running.detail = e.bound, e.phase, e.detail

    def _cleanup(self, e: Any) -> None:
        where = f" ({where_text(e.candidate)})" if e.candidate is not None else ""
        if not e.done:
            if self.running is not None:
                self.running.phase, self.running.detail = "cleaning up", e.stack
            self.say(f"Cleaning up stack {e.stack}{where}: destroying what it holds")
        elif e.ok:
            self.cleaned.append(e.stack)
            self.say(f"Cleaned up stack {e.stack}: destroyed, checked empty and removed")
        else:
            self.leaked.append(e.stack)
            self.say(f"Could not clean up stack {e.stack}: {e.error}", "red")

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.notice_interrupt()
        old = self._old_handlers.get(signum)
        if callable(old):
            old(signum, frame)
        raise KeyboardInterrupt

    def notice_interrupt(self) -> None:
        """Say at once what an interrupt stops (the engine's graceful stop takes seconds)."""
        if self.interrupted:
            self.say("Interrupted again: the cleanup is cut short; a re-run of apply or "
                     f"`skyplan down {self.cluster or 'NAME'} --yes` cleans up what is left", "red")
            return
        self.interrupted = True
        running = self.running
        if running is not None:
            running.phase, running.detail = "stopping", ""
            self.say(f"Interrupted: stopping attempt {running.number} on {running.where}, "
                     "then cleaning up what it created", "yellow")
        else:
            self.say("Interrupted: stopping, then cleaning up what this run created", "yellow")

    # --- lifetime ----------------------------------------------------------------------

    def __enter__(self) -> "ApplyView":
        from skyplan.cli.logfile import attach

        attach()
        if self.live:
            from rich.live import Live
            from rich.spinner import Spinner

            self._spinner = Spinner("dots")
            self._live = Live(self, console=self.con, refresh_per_second=4, transient=True,
                              redirect_stdout=False, redirect_stderr=False)
            self._live.start()
        else:
            self._ticker = threading.Thread(target=self._tick_loop, name="skyplan-status", daemon=True)
            self._ticker.start()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                old = signal.getsignal(sig)
                if callable(old):  # leave ignored or default signals alone
                    self._old_handlers[sig] = old
                    signal.signal(sig, self._on_signal)
        return self

    def _tick_loop(self) -> None:
        while not self._stop.wait(min(1.0, self.interval_s / 2)):
            self.tick()

    def __exit__(self, typ: Any, exc: BaseException | None, tb: Any) -> None:
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)
        self._old_handlers.clear()
        self._stop.set()
        if self._live is not None:
            self._live.stop()
            self._live = None
        if self._ticker is not None:
            self._ticker.join(timeout=2)
        self.running = None
        if isinstance(exc, KeyboardInterrupt):
            self._interrupt_summary()

    def _interrupt_summary(self) -> None:
        n = len(self.cleaned)
        if self.leaked:
            self.say(f"Interrupted: could not clean up {', '.join(self.leaked)}; run `skyplan down "
                     f"{self.cluster or 'NAME'} --yes` to finish", "red")
        elif n:
            self.say(f"Interrupted: cleaned up {n} stack{'s' if n != 1 else ''} of this run "
                     f"({', '.join(self.cleaned)}); nothing of it is left running")
        else:
            self.say("Interrupted: nothing of this run was left to clean up")
