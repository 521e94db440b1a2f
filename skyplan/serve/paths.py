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


def retire(name: str) -> Path | None:
    """Move the files of an earlier service of this name (down, deleted) to
    ``serve/.previous/<name>-<UTC time>/``, so a new service's ``replica-1.log``
    is not appended to the old one's (replica ids start again at 1). Called only
    once the name is free: no controller of the old service runs. The new place,
    or None when there was nothing."""
    import time

    path = service_dir(name)
    if not path.is_dir() or not any(path.iterdir()):
        return None
    dest = path.parent / ".previous" / f"{name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    n = 1
    while dest.exists():
        n += 1
        dest = dest.with_name(f"{dest.name.split('.')[0]}.{n}")
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.rename(dest)
    return dest


def controller_log(name: str) -> Path:
    return service_dir(name) / "controller.log"


def lb_log(name: str) -> Path:
    return service_dir(name) / "lb.log"


def replica_log(name: str, replica_id: int) -> Path:
    return service_dir(name) / f"replica-{replica_id}.log"


def lock_file(name: str) -> Path:
    return service_dir(name) / "lock"
