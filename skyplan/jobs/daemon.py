"""The jobs controller as a real process: started on demand, one per database,
stopped when idle, safe to SIGKILL.

Lifecycle
  * ``ensure_running()`` (the CLI calls it after every submission and cancel)
    starts ``python -m skyplan.jobs.daemon`` when no controller runs for the
    database: detached (a new session; stdin /dev/null; stdout and stderr
    appended to ``<home>/jobs/controller.log``), so it outlives the CLI.
  * One controller per database: an ``flock`` on ``<home>/jobs/controller-<hash
    of the URL>.lock`` (this machine; the kernel drops it when the process dies,
    SIGKILL included) and the store's lease (``Store.lease``, renewed every few
    seconds: a team sharing one PostgreSQL database across machines). A second
    process that cannot take both exits at once, status 0.
  * It publishes ``pid``, ``host``, ``port`` (the HTTP API) and ``started_at``
    with ``Store.set_controller_info``, and clears them when it exits.
  * It stops itself once the controller has had nothing to do for
    ``jobs.idle_stop_s`` (``Controller.run`` returns), or on SIGTERM/SIGINT. A
    job submitted while it was stopping is not lost: after giving up the lock
    it looks at the database once more and starts a successor if any job is
    unfinished (the CLI's own check runs after its submission is committed, so
    one of the two sees the job).
  * Killed with SIGKILL, a new one resumes every unfinished job from the
    database (``Controller.resume``: each cluster is checked before anything
    is decided).

Threads (where the HTTP API lives; ``skyplan.jobs.http``)
  * The MAIN thread runs one asyncio event loop: the HTTP API
    (``http.start_server(store, port)``, aiohttp, on this loop), the lease
    renewal, and the signal handlers. Anything else served over HTTP belongs
    on this loop too; it must never block it (the store is synchronous: run
    its reads in a thread pool, as ``http.py`` does).
  * ONE thread, ``jobs-controller``, runs the synchronous controller
    (``Controller.run(stop)``, which resumes every unfinished job first), which keeps its own
    bounded pool of worker threads for launches and teardowns.
  * ``stop`` (a ``threading.Event``) ends both: set by a signal, by a lost
    lease, or by the loop when the controller thread returns.

Nothing here prints: the process logs through ``logging`` to its stderr, the
controller log.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

log = logging.getLogger("skyplan.jobs.daemon")

#: Seconds the store's lease lasts unless renewed; renewed every third of it.
LEASE_TTL_S = 30.0
#: Seconds ``ensure_dashboard`` waits for a starting controller to publish its port.
START_WAIT_S = 60.0


def lock_path(db_url: str) -> Path:
    """The flock file of the controller of ``db_url`` (one per database)."""
    from skyplan.jobs.logs import jobs_dir

    digest = hashlib.sha256(db_url.encode()).hexdigest()[:16]
    return jobs_dir() / f"controller-{digest}.lock"


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive flock on ``path``, or None when another process holds it."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _unlock(fd: int) -> None:
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def is_running(db_url: str, store: Any = None) -> bool:
    """Whether a controller serves ``db_url`` now: one on this machine holds the
    flock, or (a shared database) one elsewhere holds the store's lease."""
    fd = _try_lock(lock_path(db_url))
    if fd is None:
        return True
    _unlock(fd)
    if store is not None:
        holder = store.lease_holder()
        if holder is not None and not holder[0].startswith(f"{socket.gethostname()}:"):
            return True
    return False


def spawn(*, port: int | None = None) -> int:
    """Start a controller process, detached; its pid. It exits at once, harmlessly,
    when another one already serves the database."""
    from skyplan.jobs.logs import controller_log_path

    env = dict(os.environ)
    if port is not None:
        env["SKYPLAN_JOBS_DASHBOARD_PORT"] = str(port)
    path = controller_log_path()
    with open(path, "ab", buffering=0) as out:
        os.chmod(path, 0o600)
        proc = subprocess.Popen([sys.executable, "-m", "skyplan.jobs.daemon"], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                                env=env, cwd=str(path.parent))
    return proc.pid


def ensure_running(settings: Any = None, store: Any = None, *, port: int | None = None) -> bool:
    """Start a controller unless one runs; True when this call started one."""
    from skyplan.jobs.settings import load

    settings = settings or load()
    if is_running(settings.db_url, store):
        return False
    spawn(port=port)
    return True


def ensure_dashboard(port: int | None = None, *, wait_s: float = START_WAIT_S) -> int:
    """The port of the running controller's HTTP API, starting the controller (on
    ``port``, else ``jobs.dashboard_port``) when none runs. Raises InputError when
    it does not publish a port within ``wait_s``."""
    from skyplan.errors import InputError
    from skyplan.jobs.settings import load
    from skyplan.jobs.store import Store

    settings = load()
    store = Store(settings.db_url)
    try:
        ensure_running(settings, store, port=port)
        deadline = time.monotonic() + wait_s
        while True:
            info = store.controller_info() or {}
            if info.get("port") and _alive(info) and is_running(settings.db_url, store):
                return int(info["port"])
            if time.monotonic() > deadline:
                from skyplan.jobs.logs import controller_log_path

                raise InputError("the jobs controller did not start its HTTP API",
                                 hint=f"see {controller_log_path()} (`skyplan jobs logs --controller`)")
            time.sleep(0.2)
    finally:
        store.close()


def _alive(info: dict[str, Any]) -> bool:
    """Whether the controller that published ``info`` still runs (a SIGKILLed one
    leaves its info behind); one on another machine is taken at its word."""
    if info.get("host") != socket.gethostname():
        return True
    try:
        pid = int(info.get("pid") or 0)
        if pid <= 0:
            return False
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


# --- the process ---------------------------------------------------------------------


class Daemon:
    """One controller process's life (see the module docstring)."""

    def __init__(self, settings: Any, store: Any, *, controller: Any = None, lease_ttl_s: float = LEASE_TTL_S) -> None:
        self.settings = settings
        self.store = store
        self.stop = threading.Event()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_ttl_s = lease_ttl_s
        self.controller = controller
        self.http: Any = None
        self.port: int | None = None
        self.error: BaseException | None = None
        self.signalled = False

    def take_lease(self) -> bool:
        """The store's lease; a holder on this machine is a dead controller (we hold the flock)."""
        if self.store.lease(self.owner, self.lease_ttl_s):
            return True
        holder = self.store.lease_holder()
        if holder is not None and holder[0].startswith(f"{socket.gethostname()}:"):
            log.info("taking over the lease of %s (it no longer runs here)", holder[0])
            self.store.release(holder[0])
            return self.store.lease(self.owner, self.lease_ttl_s)
        return False

    def _make_controller(self) -> Any:
        from skyplan.jobs.controller import Controller
        from skyplan.jobs.executor import ProvisionExecutor

        return Controller(self.store, ProvisionExecutor(store=self.store), self.settings)

    def _run_controller(self) -> None:
        try:
            if self.controller is None:
                self.controller = self._make_controller()
            self.controller.run(self.stop)  # resumes every unfinished job first
        except BaseException as exc:  # noqa: BLE001 - logged; the process exits non-zero
            self.error = exc
            log.exception("the controller failed")
        finally:
            self.stop.set()

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            from skyplan.jobs import http

            self.http = await http.start_server(self.store, int(getattr(self.settings, "dashboard_port", 0) or 0))
            self.port = self.http.port
        except Exception:  # the controller runs without its API rather than not at all
            log.exception("the HTTP API could not start; the controller runs without it")
        self.store.set_controller_info(pid=os.getpid(), host=socket.gethostname(), port=self.port,
                                       started_at=time.time(), owner=self.owner)
        log.info("controller %s started (pid %d, port %s, database %s)", self.owner, os.getpid(), self.port,
                 getattr(self.store, "safe_url", "?"))
        worker = threading.Thread(target=self._run_controller, name="jobs-controller", daemon=True)
        worker.start()
        renew_every = self.lease_ttl_s / 3
        renewed = time.monotonic()
        while not self.stop.is_set():
            await asyncio.sleep(0.2)
            if time.monotonic() - renewed >= renew_every:
                renewed = time.monotonic()
                try:
                    ok = await asyncio.to_thread(self.store.lease, self.owner, self.lease_ttl_s)
                except Exception:  # a database hiccup: try again next round; the lease outlasts it
                    log.exception("renewing the lease failed")
                    continue
                if not ok:
                    log.error("lost the controller lease to another process: stopping")
                    self.stop.set()
        await asyncio.to_thread(worker.join)
        if self.http is not None:
            await self.http.aclose()

    def _on_signal(self, sig: int) -> None:
        log.info("signal %d: stopping", sig)
        self.signalled = True
        self.stop.set()

    def run(self) -> int:
        asyncio.run(self._serve())
        return 1 if self.error is not None else 0


def main() -> int:
    """``python -m skyplan.jobs.daemon``: run the controller until idle (see the module docstring)."""
    from skyplan.home import private_umask

    private_umask()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.Formatter.converter = time.gmtime
    from skyplan.jobs.settings import load
    from skyplan.jobs.store import Store

    settings = load()
    fd = _try_lock(lock_path(settings.db_url))
    if fd is None:
        return 0  # another controller serves this database
    store = Store(settings.db_url)
    daemon = Daemon(settings, store)
    code = 0
    try:
        if not daemon.take_lease():
            log.info("another controller holds the lease of %s: exiting", store.safe_url)
            return 0
        code = daemon.run()
    finally:
        try:
            info = store.controller_info() or {}
            if info.get("owner") == daemon.owner:
                store.set_controller_info()
            store.release(daemon.owner)
        finally:
            _unlock(fd)
        log.info("controller %s stopped", daemon.owner)
    # A job submitted while this one was stopping: its CLI saw the lock still held.
    if code == 0 and not daemon.signalled and store.unfinished():
        log.info("unfinished jobs remain: starting a successor")
        spawn()
    store.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
