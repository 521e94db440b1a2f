"""Where a service's files live: ``$SKYPLAN_HOME/serve/<name>/``.

``controller.log`` (the controller process's log), ``lb.log`` (the load
balancer's), ``replica-<id>.log`` (a replica's launch events, then its task's
output, as jobs' run logs) and ``lock`` (the flock of the one controller).
The daemon writes them; ``serve logs`` reads them. Nothing here creates files
except ``service_dir(create=True)``.
"""

from __future__ import annotations

from pathlib import Path


def service_dir(name: str, *, create: bool = False) -> Path:
    """``$SKYPLAN_HOME/serve/<name>`` (made, private, when ``create``)."""
    from skyplan.home import home_path

    path = home_path() / "serve" / name
    if create:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def controller_log(name: str) -> Path:
    return service_dir(name) / "controller.log"


def lb_log(name: str) -> Path:
    return service_dir(name) / "lb.log"


def replica_log(name: str, replica_id: int) -> Path:
    return service_dir(name) / f"replica-{replica_id}.log"


def lock_file(name: str) -> Path:
    return service_dir(name) / "lock"
