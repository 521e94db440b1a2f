"""A service's controller as a real process: one per service, restartable, safe to SIGKILL.

Lifecycle
  * ``ensure_running(name)`` (``serve up`` calls it, and every later ``serve``
    command for that service) starts ``python -m skyplan.serve.daemon NAME``
    when no controller runs for the service and it is not gone: detached (a new
    session; stdin /dev/null; stdout and stderr appended to
    ``<home>/serve/<name>/controller.log``), so it outlives the CLI. Its pid.
  * One controller per service: an ``flock`` on ``<home>/serve/<name>/lock``
    (the kernel drops it when the process dies, SIGKILL included). A second
    process that cannot take it exits at once, status 0.
  * It binds the load balancer on the port recorded for the service (the
    endpoint stays the same across restarts), or on a free port the first time,
    and records ``endpoint`` and ``controller_pid`` in the store: ``serve up``
    returns once both are there (``wait_up``), before any replica is READY.
  * It exits when the service is gone (``serve down`` finished) or on
    SIGTERM/SIGINT; the replicas keep serving... without their load balancer
    until the next ``serve`` command starts a controller again, which resumes
    (``ServeController``'s first pass checks every replica before deciding).

Threads
  * The MAIN thread runs one asyncio event loop: the load balancer
    (``lb.LoadBalancer``: the service endpoint) and the signal handlers. Nothing
    on it blocks.
  * ONE thread, ``serve-<name>``, runs the synchronous controller
    (``ServeController.run(stop)``), which pushes each change of the READY set
    to the load balancer (``LoadBalancer.push``, applied on the loop) and keeps
    a bounded pool of worker threads for launches and teardowns (the stack
    operations themselves run in forked children, so the proxy's GIL is not
    held by Pulumi).

Nothing here prints: the process logs through ``logging`` to its stderr (the
controller log); the load balancer logs to ``lb.log`` beside it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Mapping

log = logging.getLogger("skyplan.serve.daemon")

#: Seconds ``wait_up`` waits for a starting controller to record its endpoint.
START_WAIT_S = 60.0


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive flock on ``path`` (its directory made), or None when
    another process holds it: the jobs controller's singleton lock."""
    from skyplan.jobs.daemon import _try_lock as try_lock

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return try_lock(path)


def _unlock(fd: int) -> None:
    from skyplan.jobs.daemon import _unlock as unlock

    unlock(fd)


def is_running(name: str) -> bool:
    """Whether a controller holds the service's lock now."""
    from skyplan.serve import paths

    path = paths.lock_file(name)
    if not path.exists():
        return False
    fd = _try_lock(path)
    if fd is None:
        return True
    _unlock(fd)
    return False


def spawn(name: str) -> int:
    """Start the service's controller process, detached; its pid. It exits at
    once, harmlessly, when another one already runs for the service."""
    from skyplan.serve import paths

    paths.service_dir(name, create=True)
    path = paths.controller_log(name)
    with open(path, "ab", buffering=0) as out:
        os.chmod(path, 0o600)
        proc = subprocess.Popen([sys.executable, "-m", "skyplan.serve.daemon", name], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                                env=dict(os.environ), cwd=str(path.parent))
    return proc.pid


def _alive(pid: int | None) -> bool:
    """Whether ``pid`` runs. A controller this process spawned (``serve down``
    restarting one) is its child: once it exits it stays a zombie until reaped,
    and ``kill(pid, 0)`` would call it alive, so it is reaped here first; a
    zombie of another parent is dead too."""
    try:
        if not pid or int(pid) <= 0:
            return False
        pid = int(pid)
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return False  # our child, exited (now reaped)
        except ChildProcessError:
            pass  # not our child
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True  # no /proc: kill's answer stands


def ensure_running(name: str, store: Any = None) -> int:
    """The pid of the service's controller, starting one when none runs (and the
    service exists and is not gone). NotFoundError for an unknown service."""
    from skyplan.errors import NotFoundError

    own = store is None
    if own:
        from skyplan.serve.store import ServeStore

        store = ServeStore()
    try:
        svc = store.service(name)
        if svc is None:
            raise NotFoundError(f"no service named '{name}'", hint="`skyplan serve status` lists the services")
        if is_running(name) and _alive(svc.controller_pid):
            return int(svc.controller_pid)
        if is_running(name):
            return _wait_pid(store, name)  # one is starting: it records its pid in a moment
        return spawn(name)
    finally:
        if own:
            store.close()


def _wait_pid(store: Any, name: str, wait_s: float = 10.0) -> int:
    deadline = time.monotonic() + wait_s
    while True:
        svc = store.service(name)
        if svc is not None and _alive(svc.controller_pid):
            return int(svc.controller_pid)
        if time.monotonic() > deadline or not is_running(name):
            return spawn(name)
        time.sleep(0.1)


def wait_up(name: str, store: Any = None, *, wait_s: float = START_WAIT_S) -> str:
    """The service's endpoint once its controller runs and its load balancer
    listens (``serve up`` returns then). InputError when it does not come up
    within ``wait_s`` (its log says why)."""
    from skyplan.errors import InputError
    from skyplan.serve import paths

    own = store is None
    if own:
        from skyplan.serve.store import ServeStore

        store = ServeStore()
    try:
        deadline = time.monotonic() + wait_s
        while True:
            svc = store.service(name)
            if svc is not None and svc.endpoint and _alive(svc.controller_pid) and is_running(name):
                return str(svc.endpoint)
            if svc is None:
                raise InputError(f"service '{name}' is gone", hint="`skyplan serve status` lists the services")
            if time.monotonic() > deadline:
                raise InputError(f"the controller of service '{name}' did not start its load balancer",
                                 hint=f"see {paths.controller_log(name)} (`skyplan serve logs {name} --controller`)")
            time.sleep(0.1)
    finally:
        if own:
            store.close()


# --- the process ---------------------------------------------------------------------


class LoopBalancer:
    """``controller.Balancer`` over an ``lb.LoadBalancer`` whose loop runs in another thread."""

    def __init__(self, lb: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.lb = lb
        self.loop = loop

    def push(self, replicas: Mapping[int, str]) -> None:
        self.lb.push(replicas, self.loop)

    def wait_drained(self, replica_id: int, timeout_s: float) -> bool:
        return self.lb.wait_drained(replica_id, timeout_s, self.loop)

    def metrics(self) -> Any:
        return self.lb.metrics()


def _lb_logger(name: str) -> logging.Logger:
    from skyplan.serve import paths

    paths.service_dir(name, create=True)
    logger = logging.getLogger(f"skyplan.serve.lb.{name}")
    logger.propagate = False
    for old in list(logger.handlers):  # a daemon started again in one process (tests)
        logger.removeHandler(old)
        old.close()
    handler = logging.FileHandler(paths.lb_log(name), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger


def _port_of(endpoint: str | None) -> int:
    if not endpoint:
        return 0
    try:
        return int(endpoint.rsplit(":", 1)[1].split("/", 1)[0])
    except (IndexError, ValueError):
        return 0


class ServeDaemon:
    """One service controller process's life (see the module docstring)."""

    def __init__(self, name: str, store: Any, *, executor: Any = None, settings: Any = None) -> None:
        from skyplan.serve.controller import ServeSettings

        self.name = name
        self.store = store
        self.executor = executor
        self.settings = settings or ServeSettings.from_env()
        self.stop = threading.Event()
        self.controller: Any = None
        self.error: BaseException | None = None
        self.port: int | None = None

    def _run_controller(self, balancer: Any) -> None:
        from skyplan.serve.controller import ServeController
        from skyplan.serve.executor import ProvisionServeExecutor

        try:
            ex = self.executor or ProvisionServeExecutor()
            self.controller = ServeController(self.name, self.store, ex, balancer, self.settings)
            self.controller.run(self.stop)
        except BaseException as exc:  # noqa: BLE001 - logged; the process exits non-zero
            self.error = exc
            log.exception("service %s: the controller failed", self.name)
        finally:
            self.stop.set()

    async def _serve(self) -> None:
        from skyplan.serve.lb import LoadBalancer
        from skyplan.serve.states import ServiceStatus

        loop = asyncio.get_running_loop()
        if threading.current_thread() is threading.main_thread():  # a test runs it in a thread
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._on_signal, sig)
        svc = self.store.service(self.name)
        if svc is None:
            log.info("service %s is gone: nothing to do", self.name)
            return
        cfg = _config(self.store, self.name, svc.version)
        window = float(os.environ.get("SKYPLAN_SERVE_LB_WINDOW_S") or 60.0)
        lb = LoadBalancer(policy=cfg.lb_policy if cfg is not None else "least_load", window_s=window,
                          log=_lb_logger(self.name))
        recorded = _port_of(svc.endpoint)
        try:
            self.port = await lb.start("127.0.0.1", recorded)
        except OSError as exc:
            if not recorded:
                raise
            # Taken by someone else meanwhile: a new endpoint, recorded (status shows it).
            log.warning("service %s: port %d is taken (%s): listening on a free one", self.name, recorded, exc)
            self.port = await lb.start("127.0.0.1", 0)
        endpoint = f"http://127.0.0.1:{self.port}"
        status = ServiceStatus.NO_REPLICA if svc.status is ServiceStatus.CONTROLLER_INIT else None
        self.store.set_service(self.name, endpoint=endpoint, controller_pid=os.getpid(), status=status,
                               reason="controller and load balancer up" if status is not None else "")
        log.info("service %s: controller pid %d, load balancer on %s", self.name, os.getpid(), endpoint)
        worker = threading.Thread(target=self._run_controller, args=(LoopBalancer(lb, loop),),
                                  name=f"serve-{self.name}", daemon=True)
        worker.start()
        while not self.stop.is_set():
            await asyncio.sleep(0.2)
        # The controller's drains wait on this loop: keep it running while the thread ends.
        await asyncio.to_thread(worker.join)
        await lb.stop()

    def _on_signal(self, sig: int) -> None:
        log.info("service %s: signal %d: stopping", self.name, sig)
        self.stop.set()

    def run(self) -> int:
        asyncio.run(self._serve())
        return 1 if self.error is not None else 0


def _config(store: Any, name: str, version: int) -> Any:
    import json

    from skyplan.serve.config import service_config
    from skyplan.spec import task_from_dict

    try:
        return service_config(task_from_dict(json.loads(store.task_json(name, version))))
    except Exception:  # noqa: BLE001 - the controller reports a task it cannot read
        log.exception("service %s: reading version %s failed", name, version)
        return None


def main(argv: list[str] | None = None) -> int:
    """``python -m skyplan.serve.daemon NAME``: run the service's controller and load balancer."""
    from skyplan.home import private_umask

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m skyplan.serve.daemon NAME\n")
        return 2
    name = args[0]
    private_umask()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.Formatter.converter = time.gmtime
    from skyplan.serve import paths
    from skyplan.serve.store import ServeStore

    fd = _try_lock(paths.lock_file(name))
    if fd is None:
        return 0  # another controller runs for this service
    store = ServeStore()
    code = 0
    try:
        daemon = ServeDaemon(name, store)
        code = daemon.run()
    finally:
        try:
            svc = store.service(name)
            if svc is not None and svc.controller_pid == os.getpid():
                store.set_service(name, controller_pid=None)
        except Exception:  # noqa: BLE001 - the database is gone: the next controller overwrites it
            log.exception("service %s: clearing the controller's pid failed", name)
        finally:
            _unlock(fd)
            store.close()
        log.info("service %s: controller stopped", name)
    return code


if __name__ == "__main__":
    sys.exit(main())
