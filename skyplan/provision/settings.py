"""The Automation API's settings: backend URL, Pulumi home, passphrase, work dir, environment.

Below both the stack driver (``driver.py``) and the engine finder (``engine.py``),
so neither imports the other for them. Nothing here starts pulumi.

* Backend URL: the ``backend_url`` argument, else ``$SKYPLAN_BACKEND``, else the
  config file's ``backend`` (``skyplan.config.setting``), else
  ``file://<skyplan home>/pulumi`` (created). Any Pulumi backend URL passes
  through unchanged (``s3://``, ``gs://``, ``azblob://``, ``https://api.pulumi.com``);
  it reaches the CLI as ``PULUMI_BACKEND_URL``, so no ``pulumi login`` state is written.
* ``PULUMI_HOME``: the user's own ``$PULUMI_HOME`` if set, else
  ``<skyplan home>/pulumi-home``. skyplan's plugin cache, workspace files and
  credentials then never touch ``~/.pulumi``, and a test's tmp home is hermetic.
  Cost: provider plugins installed in ``~/.pulumi/plugins`` are not seen, and a
  Pulumi Cloud backend needs ``PULUMI_ACCESS_TOKEN`` (or ``PULUMI_HOME`` pointed
  at the logged-in home).
* Secrets: passphrase provider. ``$PULUMI_CONFIG_PASSPHRASE`` (or
  ``$PULUMI_CONFIG_PASSPHRASE_FILE``) wins; otherwise a passphrase generated once
  and kept in ``<skyplan home>/passphrase`` (mode 0600).
* ``PATH`` starts with the engine's bin dir so that the dynamic-provider shim
  next to the CLI is the one used, and ``SKYPLAN_PYTHON`` names this interpreter
  for the shim. Update checks and checkpoint backups are off (one stack per
  attempt would otherwise leave a backup file per update forever).
* Project ``skyplan``; its ``Pulumi.yaml`` and the per-stack config files live in
  a work dir per backend, ``<skyplan home>/pulumi-work/<hash of backend URL>``.

Every writer here is safe against concurrent callers (threads of one process,
or several processes): files are written under a private name and renamed or
linked into place.
"""

from __future__ import annotations

import os
import secrets
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skyplan import errors, home
from skyplan.provision.names import _short_hash

if TYPE_CHECKING:
    from skyplan.provision.engine import Engine

PROJECT = "skyplan"


def _configured_backend() -> str | None:
    """``$SKYPLAN_BACKEND``, else the config file's ``backend``."""
    from skyplan.config import setting

    return setting("backend")


def resolve_backend_url(backend_url: str | None = None, *, create: bool = True) -> str:
    """The backend URL to use (see the module docstring). With ``create``, make
    the directory of the default ``file://`` backend."""
    url = backend_url or _configured_backend() or ""
    if not url:
        path = home.home() / "pulumi"
        if create:
            path.mkdir(parents=True, exist_ok=True)
        return "file://" + str(path)
    if "://" not in url:
        raise errors.InputError(
            f"not a Pulumi backend URL: {url!r}",
            hint="use file:///absolute/path, s3://bucket, gs://bucket, azblob://container or https://api.pulumi.com",
        )
    if url.startswith("file://") and create:
        local = url[len("file://") :].split("?", 1)[0]
        if local and not local.startswith("~"):
            Path(local).mkdir(parents=True, exist_ok=True)
    return url


def pulumi_home_dir(*, create: bool = True) -> Path:
    """``$PULUMI_HOME`` if the user set one, else ``<skyplan home>/pulumi-home``."""
    path = home.pulumi_home()
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def passphrase_path() -> Path:
    return home.home() / "passphrase"


def passphrase_info() -> dict[str, Any]:
    """Where the secrets passphrase comes from, without creating anything."""
    path = passphrase_path()
    if "PULUMI_CONFIG_PASSPHRASE" in os.environ:
        source = "env"
    elif os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
        source = "env-file"
    else:
        source = "file" if path.exists() else "absent"
    return {"source": source, "file": str(path)}


def passphrase_env() -> dict[str, str]:
    """The passphrase variables for the CLI; creates the passphrase file once."""
    if "PULUMI_CONFIG_PASSPHRASE" in os.environ:
        return {"PULUMI_CONFIG_PASSPHRASE": os.environ["PULUMI_CONFIG_PASSPHRASE"]}
    if os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
        return {"PULUMI_CONFIG_PASSPHRASE_FILE": os.environ["PULUMI_CONFIG_PASSPHRASE_FILE"]}
    return {"PULUMI_CONFIG_PASSPHRASE": _read_or_create_passphrase(passphrase_path())}


def _read_or_create_passphrase(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        text = ""
    if text:
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        return text
    # Write a complete file under a private name, then link it into place: a
    # concurrent skyplan either wins the link or reads the winner's full file.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".passphrase.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (secrets.token_urlsafe(32) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return path.read_text().strip()


def work_dir(backend_url: str) -> Path:
    """The project's work dir for ``backend_url``, with its ``Pulumi.yaml`` in place."""
    path = home.sub("pulumi-work", _short_hash(backend_url, 12))
    _write_if_changed(path / "Pulumi.yaml", f"name: {PROJECT}\nruntime: python\n")
    return path


def engine_env(backend_url: str, engine: Engine) -> dict[str, str]:
    """The environment every pulumi command of this backend runs with (see the module docstring)."""
    return {
        "PULUMI_BACKEND_URL": backend_url,
        "PULUMI_HOME": str(pulumi_home_dir()),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        # As the Automation API sets it: unhides --event-log on destroy.
        "PULUMI_DEBUG_COMMANDS": "true",
        "PULUMI_DIY_BACKEND_DISABLE_CHECKPOINT_BACKUPS": "true",
        "PATH": os.pathsep.join([str(engine.bin_dir), os.environ.get("PATH", "")]),
        "SKYPLAN_PYTHON": sys.executable,
        **passphrase_env(),
    }


def _write_if_changed(path: Path, text: str) -> None:
    try:
        if path.read_text() == text:
            return
    except FileNotFoundError:
        pass
    # Private per process and thread: concurrent launches write the same file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    tmp.write_text(text)
    os.replace(tmp, path)
