"""The managed-jobs settings: config.yaml's ``jobs:`` section, environment overrides.

``load()`` is the one way to read them (the store, the controller, the daemon
and the CLI all call it)::

    jobs:
      db_url: postgresql+psycopg://skyplan@db.example/skyplan   # default: SQLite under the home
      max_concurrent: 16     # jobs running at once; the rest wait as PENDING
      idle_stop_s: 600       # the controller stops itself after this long with nothing to do
      poll_s: 5              # how often each running task is checked
      grace_checks: 3        # failed checks before an unconfirmed node counts as preempted ...
      grace_s: 60            # ... spread over at least this many seconds
      dashboard_port: 0      # the controller's HTTP API and dashboard on 127.0.0.1 (0: a free port)

Each has an environment variable that wins over the file (``ENV``); tests use
them for small values. A value that is not valid is an error naming where it
came from (``file:line:col`` for the file, the variable's name for the
environment): exit 2. ``check_config`` is the file section's check, called by
``skyplan.config.read_config`` with the other sections.

Importing this module is cheap (no SQLAlchemy): the CLI reads settings at start.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from skyplan.errors import InputError

if TYPE_CHECKING:
    from skyplan.config import ConfigFile
    from skyplan.errors import Diagnostic

#: The config section's name.
SECTION = "jobs"


@dataclass(frozen=True)
class JobsSettings:
    db_url: str  # an SQLAlchemy URL: sqlite:///<path> or postgresql+psycopg://...
    max_concurrent: int = 16
    idle_stop_s: float = 600.0
    poll_s: float = 5.0
    grace_checks: int = 3
    grace_s: float = 60.0
    dashboard_port: int = 0  # 127.0.0.1's port for the controller's HTTP API (0: a free one)


#: Key -> (environment variable, kind, minimum, what it is). kind: "url", "int" or "float";
#: the minimum is inclusive except for poll_s (a poll every 0 s would spin).
ENV: dict[str, tuple[str, str, float | None, str]] = {
    "db_url": ("SKYPLAN_JOBS_DB_URL", "url", None,
               "the jobs database's SQLAlchemy URL (sqlite:///PATH or postgresql+psycopg://USER@HOST/DB)"),
    "max_concurrent": ("SKYPLAN_JOBS_MAX_CONCURRENT", "int", 1, "how many jobs run at once"),
    "idle_stop_s": ("SKYPLAN_JOBS_IDLE_STOP_S", "float", 0, "seconds of idleness before the controller stops"),
    "poll_s": ("SKYPLAN_JOBS_POLL_S", "float", 0, "seconds between two checks of a running task"),
    "grace_checks": ("SKYPLAN_JOBS_GRACE_CHECKS", "int", 1,
                     "failed checks before an unconfirmed node counts as preempted"),
    "grace_s": ("SKYPLAN_JOBS_GRACE_S", "float", 0, "seconds the failed checks must span at least"),
    "dashboard_port": ("SKYPLAN_JOBS_DASHBOARD_PORT", "int", 0,
                       "the port of 127.0.0.1 the controller serves its dashboard on (0: a free one)"),
}
_EXCLUSIVE_MIN = frozenset({"poll_s"})
#: URL schemes the store supports (SQLAlchemy dialect names, with or without a driver).
URL_SCHEMES = ("sqlite", "postgresql")


def default_db_url() -> str:
    """``sqlite:///<home>/jobs/jobs.db`` (the directory is created, private)."""
    from skyplan import home

    return f"sqlite:///{home.sub('jobs') / 'jobs.db'}"


def _convert(key: str, value: Any) -> tuple[Any, str | None]:
    """``(value, None)`` converted to the key's type, or ``(None, why)`` when it is not valid."""
    _, kind, minimum, what = ENV[key]
    if kind == "url":
        if not isinstance(value, str) or not value.strip():
            return None, f"'{key}' is {what}: a non-empty string"
        scheme = value.split(":", 1)[0].split("+", 1)[0]
        if "://" not in value or scheme not in URL_SCHEMES:
            return None, (f"'{key}' is {what}; '{value.split('://', 1)[0]}' is not a supported database "
                          f"(supported: {', '.join(URL_SCHEMES)})")
        return value.strip(), None
    if isinstance(value, str):  # from the environment
        try:
            value = int(value) if kind == "int" else float(value)
        except ValueError:
            return None, f"'{key}' is {what}: {'an integer' if kind == 'int' else 'a number'}, not {value!r}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind == "int" and not isinstance(value, int)):
        return None, f"'{key}' is {what}: {'an integer' if kind == 'int' else 'a number'}, not {value!r}"
    if not math.isfinite(value):
        return None, f"'{key}' is {what}: a finite number, not {value!r}"
    if minimum is not None and (value <= minimum if key in _EXCLUSIVE_MIN else value < minimum):
        bound = f"more than {minimum:g}" if key in _EXCLUSIVE_MIN else f"at least {minimum:g}"
        return None, f"'{key}' is {what}: {bound}, not {value!r}"
    if key == "dashboard_port" and value > 65535:
        return None, f"'{key}' is {what}: at most 65535, not {value!r}"
    return (int(value) if kind == "int" else float(value)), None


def check_config(value: Any, cfg: ConfigFile, path: tuple[Any, ...]) -> list[Diagnostic]:
    """Findings for config.yaml's ``jobs:`` section (empty when it is valid)."""
    import difflib

    if value is None:
        return []
    if not isinstance(value, dict):
        return [cfg.diagnostic(path, f"'{SECTION}' is a mapping of settings ({', '.join(ENV)})")]
    found = []
    for key, item in value.items():
        if key not in ENV:
            close = difflib.get_close_matches(str(key), list(ENV), n=1)
            found.append(cfg.diagnostic((*path, key), f"unknown setting '{key}' of '{SECTION}' "
                                        f"(known: {', '.join(ENV)})", close[0] if close else None))
            continue
        _, why = _convert(key, item)
        if why:
            found.append(cfg.diagnostic((*path, key), why))
    return found


def load() -> JobsSettings:
    """The settings: each key's environment variable, else config.yaml's ``jobs:``
    value, else the default. Raises ConfigError (a bad file) or InputError (a bad
    environment variable)."""
    from skyplan.config import read_config

    cfg = read_config()
    section = cfg.data.get(SECTION) or {}
    values: dict[str, Any] = {}
    for f in fields(JobsSettings):
        env, _, _, _ = ENV[f.name]
        raw = os.environ.get(env)
        if raw:
            value, why = _convert(f.name, raw)
            if why:
                raise InputError(f"{env}: {why}", hint=f"fix or unset {env}")
            values[f.name] = value
        elif f.name in section:
            # Checked by read_config already.
            values[f.name] = _convert(f.name, section[f.name])[0]
    if "db_url" in values and values["db_url"].startswith("sqlite:///") and SECTION in cfg.data \
            and not os.environ.get(ENV["db_url"][0]):
        # A relative SQLite path in the file is relative to the file, like the other paths there.
        path = values["db_url"][len("sqlite:///"):]
        if path and path != ":memory:":
            values["db_url"] = "sqlite:///" + cfg.resolve_path(path)
    if "db_url" not in values:
        values["db_url"] = default_db_url()
    return JobsSettings(**values)
