"""Find (and install) the pulumi CLI that skyplan drives.

The CLI must be exactly the version of the installed ``pulumi`` Python SDK: the
Automation API speaks to it over flags and event formats that move between
releases. No registry reachable from here ships the binary, so ``./setup.sh``
builds it from Go modules (``tools/build-pulumi.sh``) into::

    <engine dir>/v<version>/bin/pulumi
    <engine dir>/v<version>/bin/pulumi-resource-pulumi-python   (dynamic-provider shim)

where the engine dir is ``skyplan.home.engine_dir()`` (``SKYPLAN_ENGINE_DIR``,
else ``$SKYPLAN_HOME/engine``, else the platform's user data dir). The build is
therefore shared by every checkout on the machine.

``find_engine()`` looks, in order, at ``$SKYPLAN_PULUMI_BIN`` (a directory or
the binary itself), the engine dir, then ``PATH``, and takes the first binary
whose ``pulumi version`` matches. Asking a 115 MB Go binary its version costs
~0.2 s, so the answer is cached in ``<engine dir>/version-cache.json`` keyed by
the binary's path, mtime and size.

Command line (the only place in this module that prints)::

    python -m skyplan.provision.engine install [--force]   build + install (tools/build-pulumi.sh)
    python -m skyplan.provision.engine path                print the bin dir to install into
    python -m skyplan.provision.engine info                print doctor_info() as JSON (exit 1 if not usable)
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skyplan import errors, home

PULUMI_VERSION: str = importlib.metadata.version("pulumi")
"""The pulumi SDK version installed with skyplan; the CLI must match it."""

SHIM_NAME = "pulumi-resource-pulumi-python"
#: A command that works as printed: this interpreter, whatever is on PATH.
INSTALL_HINT = f"run `{shlex.quote(sys.executable)} -m skyplan.provision.engine install` (as ./setup.sh does)"
_CACHE_NAME = "version-cache.json"


@dataclass(frozen=True)
class Engine:
    """A usable pulumi CLI. ``bin_dir`` goes first on the CLI's PATH so that the
    dynamic-provider shim next to the binary is the one the engine runs."""

    bin_dir: Path
    pulumi_path: Path
    version: str  # without the leading "v", e.g. "3.259.0"

    @property
    def shim_path(self) -> Path | None:
        shim = self.bin_dir / SHIM_NAME
        if shim.exists():
            return shim
        found = shutil.which(SHIM_NAME)
        return Path(found) if found else None


def install_bin_dir(version: str = PULUMI_VERSION) -> Path:
    """Where setup installs the CLI for ``version``: ``<engine dir>/v<version>/bin``."""
    return home.engine_dir() / f"v{version}" / "bin"


def find_engine(version: str = PULUMI_VERSION) -> Engine:
    """Return the first pulumi CLI of ``version``; raise EngineError if there is none.

    The error names every binary that was looked at and why it was refused.
    """
    refused: list[str] = []
    for candidate in _candidates(version):
        if not (candidate.is_file() and os.access(candidate, os.X_OK)):
            continue
        got = _version_of(candidate)
        if got == version:
            return Engine(bin_dir=candidate.parent, pulumi_path=candidate, version=version)
        refused.append(f"{candidate} is {'v' + got if got else 'unusable (pulumi version failed)'}")
    detail = f" ({'; '.join(refused)})" if refused else ""
    raise errors.EngineError(
        f"the pulumi CLI v{version} is not installed{detail}",
        hint=INSTALL_HINT,
    )


def doctor_info() -> dict[str, Any]:
    """What ``skyplan doctor`` shows about the engine. Never raises, never writes.

    Keys: ok, version (wanted), path, bin_dir, shim, shim_python, backend,
    pulumi_home, passphrase (``{"source": "env"|"file"|"absent", "file": path}``),
    error and hint when ``ok`` is false.
    """
    from skyplan.provision import settings

    info: dict[str, Any] = {
        "ok": False,
        "version": PULUMI_VERSION,
        "path": None,
        "bin_dir": None,
        "shim": None,
        "shim_python": None,
        "error": None,
        "hint": None,
    }
    try:
        engine = find_engine()
    except errors.EngineError as exc:
        info["error"] = exc.message
        info["hint"] = exc.hint
    else:
        shim = engine.shim_path
        info.update(ok=shim is not None, path=str(engine.pulumi_path), bin_dir=str(engine.bin_dir))
        info["shim"] = str(shim) if shim else None
        info["shim_python"] = _shim_default_python(shim) if shim else None
        if shim is None:
            info["error"] = f"the dynamic-provider plugin {SHIM_NAME} is missing (the local and sim clouds need it)"
            info["hint"] = INSTALL_HINT
    try:
        info["backend"] = settings.resolve_backend_url(None, create=False)
        info["pulumi_home"] = str(settings.pulumi_home_dir(create=False))
        info["passphrase"] = settings.passphrase_info()
    except errors.SkyplanError as exc:  # a bad SKYPLAN_BACKEND is worth showing, not crashing on
        info["backend"] = None
        info["error"] = info["error"] or exc.message
    return info


def install(*, force: bool = False, python: str | None = None) -> Engine:
    """Build and install the CLI with tools/build-pulumi.sh (streams its output).

    Needs a source checkout (the script and the Go tools module live in tools/).
    """
    script = Path(__file__).resolve().parents[2] / "tools" / "build-pulumi.sh"
    if not script.is_file():
        raise errors.EngineError(
            f"cannot build the pulumi CLI: {script} is missing (not a source checkout)",
            hint="install a pulumi CLI v" + PULUMI_VERSION + " and put it on PATH, or set SKYPLAN_PULUMI_BIN",
        )
    cmd = ["bash", str(script), "--bin", str(install_bin_dir()), "--python", python or sys.executable]
    if force:
        cmd.append("--force")
    rc = subprocess.call(cmd)
    if rc != 0:
        raise errors.EngineError(f"building the pulumi CLI failed (exit {rc})", hint="see the log named above")
    return find_engine()


# --- internals -----------------------------------------------------------------


def _candidates(version: str) -> list[Path]:
    out: list[Path] = []
    env = os.environ.get("SKYPLAN_PULUMI_BIN")
    if env:
        p = Path(env).expanduser()
        out.append(p / "pulumi" if p.is_dir() else p)
    out.append(install_bin_dir(version) / "pulumi")
    on_path = shutil.which("pulumi")
    if on_path:
        out.append(Path(on_path))
    return out


def _version_of(binary: Path) -> str | None:
    """``pulumi version`` without the "v", cached by (path, mtime, size)."""
    try:
        st = binary.stat()
    except OSError:
        return None
    key = str(binary.resolve())
    stamp = [st.st_mtime_ns, st.st_size]
    cache_path = home.engine_dir() / _CACHE_NAME
    cache = _read_cache(cache_path)
    hit = cache.get(key)
    if isinstance(hit, dict) and hit.get("stamp") == stamp and isinstance(hit.get("version"), str):
        return hit["version"]
    try:
        out = subprocess.run(
            [str(binary), "version"],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    version = out.stdout.strip().removeprefix("v")
    cache[key] = {"stamp": stamp, "version": version}
    _write_cache(cache_path, cache)
    return version


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, cache: dict[str, Any]) -> None:
    # Best effort: a read-only engine dir only costs us the 0.2 s next time.
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")  # one per thread
        tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        pass


def _shim_default_python(shim: Path) -> str | None:
    try:
        text = shim.read_text(errors="replace")
    except OSError:
        return None
    marker = "${SKYPLAN_PYTHON:-"
    start = text.find(marker)
    if start < 0:
        return None
    end = text.find("}", start)
    return text[start + len(marker) : end] if end > 0 else None


def _main(argv: list[str]) -> int:
    usage = "usage: python -m skyplan.provision.engine {install [--force] | path | info}"
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    try:
        if cmd == "path" and not rest:
            print(install_bin_dir())
            return 0
        if cmd == "install" and rest in ([], ["--force"]):
            engine = install(force=bool(rest))
            print(f"pulumi CLI v{engine.version} ready: {engine.pulumi_path}")
            return 0
        if cmd == "info" and not rest:
            info = doctor_info()
            print(json.dumps(info, indent=2))
            return 0 if info["ok"] else 1
    except errors.SkyplanError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 1
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
