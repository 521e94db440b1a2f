"""Where skyplan keeps its files: SKYPLAN_HOME, default a platformdirs user data dir.

Layout under the home:
  state.db             clusters and attempts (skyplan.state)
  locks/<cluster>.lock cluster locks (fcntl; released by the kernel if we die)
  pulumi/              default file:// backend for stacks
  passphrase           stack secrets passphrase, 0600
  sandboxes/           local/sim instances
  sim/ledger.db        sim cloud's ledger of live resources
  logs/                skyplan.log (internal errors) and per-cluster logs
  config.yaml          optional settings (backend, catalog, engine_dir, ssh pools): skyplan.config
engine (not under SKYPLAN_HOME): <user data dir>/skyplan/engine, or SKYPLAN_ENGINE_DIR

Everything under the home is private: directories 0700, files 0600. The CLI
sets the process umask to 077 at start (``private_umask``), so the files of
the state database, the Pulumi backend and its history, the sim ledger, the
logs and the sandboxes, whoever creates them (skyplan, the pulumi engine, a
provider, the task), are private too. ``home()`` creates the home 0700 and
tightens a home an older skyplan left group- or world-readable: the home
itself and its top-level entries (nothing deeper is reachable once the home is
0700). ``private_file`` pre-creates a file 0600, for SQLite, whose -wal and
-shm files copy the database file's mode.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

#: The process umask the CLI runs under: new files 0600, new directories 0700.
PRIVATE_UMASK = 0o077

_tightened: set[Path] = set()


def private_umask() -> int:
    """Set the process umask to ``PRIVATE_UMASK``; returns the previous one."""
    return os.umask(PRIVATE_UMASK)


def _make_private(path: str | os.PathLike[str]) -> None:
    """Drop group and other permission bits from ``path`` (not following symlinks)."""
    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode) or not st.st_mode & 0o077 or st.st_uid != os.getuid():
            return
        os.chmod(path, stat.S_IMODE(st.st_mode) & 0o700)
    except OSError:  # gone meanwhile, or not ours to change: nothing to tighten
        pass


def _tighten(path: Path) -> None:
    _make_private(path)
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                _make_private(entry.path)
    except OSError:
        pass


def private_file(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` empty with mode 0600 if it does not exist; tighten it if it does."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    except FileExistsError:
        _make_private(p)
    else:
        os.close(fd)
    return p


def home_path() -> Path:
    """Where the home is (``SKYPLAN_HOME``, else the platform's user data dir), without
    creating it."""
    env = os.environ.get("SKYPLAN_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("skyplan", appauthor=False))


def home() -> Path:
    path = home_path()
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        from skyplan.errors import InputError

        raise InputError(f"SKYPLAN_HOME {path} is not a usable directory: {exc.strerror or exc}",
                         hint="point SKYPLAN_HOME at a writable directory, or unset it") from None
    if path not in _tightened:  # once per process: a cheap look at a dozen entries
        _tighten(path)
        _tightened.add(path)
    return path


def sub(*parts: str) -> Path:
    """A directory under the home, created 0700 (with any missing parents)."""
    base = home()
    path = base.joinpath(*parts)
    for i in range(1, len(parts) + 1):
        part = base.joinpath(*parts[:i])
        part.mkdir(mode=0o700, exist_ok=True)
    return path


def engine_dir() -> Path:
    """The engine is a machine-wide build cache, not per-home state: it stays in
    the default user data dir even when SKYPLAN_HOME points elsewhere.
    ``$SKYPLAN_ENGINE_DIR``, else the config file's ``engine_dir``, overrides it."""
    from skyplan.config import setting

    env = setting("engine_dir")
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
