"""Where skyplan keeps its files: SKYPLAN_HOME, default a platformdirs user data dir.

Layout under the home:
  state.db             clusters and attempts (skyplan.state)
  locks/<cluster>.lock cluster locks (fcntl; released by the kernel if we die)
  pulumi/              default file:// backend for stacks
  passphrase           stack secrets passphrase, 0600
  sandboxes/           local/sim instances
  sim/ledger.db        sim cloud's ledger of live resources
  logs/                skyplan.log (internal errors) and per-cluster logs
engine (not under SKYPLAN_HOME): <user data dir>/skyplan/engine, or SKYPLAN_ENGINE_DIR
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    env = os.environ.get("SKYPLAN_HOME")
    if env:
        path = Path(env).expanduser()
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir("skyplan", appauthor=False))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from skyplan.errors import InputError

        raise InputError(f"SKYPLAN_HOME {path} is not a usable directory: {exc.strerror or exc}",
                         hint="point SKYPLAN_HOME at a writable directory, or unset it") from None
    return path


def sub(*parts: str) -> Path:
    path = home().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def engine_dir() -> Path:
    """The engine is a machine-wide build cache, not per-home state: it stays in
    the default user data dir even when SKYPLAN_HOME points elsewhere."""
    env = os.environ.get("SKYPLAN_ENGINE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("skyplan", appauthor=False)) / "engine"


def log_file() -> Path:
    return sub("logs") / "skyplan.log"


def pulumi_home() -> Path:
    """The PULUMI_HOME the engine runs with: the user's ``$PULUMI_HOME`` if set,
    else ``<skyplan home>/pulumi-home``. Provider plugins are looked up, and must
    be installed, there (the preflight check and the driver share this rule)."""
    env = os.environ.get("PULUMI_HOME")
    return Path(env).expanduser() if env else home() / "pulumi-home"
