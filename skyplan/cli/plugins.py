"""`skyplan plugins install [CLOUD...]`: install the Pulumi resource plugins the
clouds' programs need, with skyplan's own engine, where skyplan's engine looks.

`skyplan doctor` and apply's preflight suggest this command when a plugin is
missing. A printed `pulumi plugin install ...` would not work as printed: the
engine setup builds is not on PATH, and the plugin must land in the
PULUMI_HOME skyplan runs the engine with (``skyplan.home.pulumi_home``).
Installing downloads the plugin (from get.pulumi.com or GitHub).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, List, Optional

import typer

from skyplan.cli.errors import handle_errors

plugins_app = typer.Typer(help="The Pulumi resource plugins the clouds' programs need.", no_args_is_help=True)


def _plugin_clouds() -> dict[str, Any]:
    """Clouds reached through a Pulumi provider plugin (they name it: ``plugin``, ``package``)."""
    from skyplan.clouds import registry

    clouds = {name: registry.get(name) for name in registry.names()}
    return {name: c for name, c in clouds.items() if getattr(c, "plugin", None) and getattr(c, "package", None)}


@plugins_app.command("install")
@handle_errors
def install(
    clouds: Optional[List[str]] = typer.Argument(None, help="Clouds whose plugin to install (default: every one)."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Install the resource plugin of each cloud at the version its Python SDK needs (skips installed ones)."""
    from skyplan.cli import views
    from skyplan.clouds.plugins import plugin_status
    from skyplan.contract import document
    from skyplan.errors import InputError, PreflightError, UsageError

    known = _plugin_clouds()
    wanted = list(dict.fromkeys(clouds or known))
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise UsageError(f"no plugin to install for {', '.join(unknown)}",
                         hint=f"name one of {', '.join(known)}, or none for all")
    done = []
    for name in wanted:
        cloud = known[name]
        st = plugin_status(cloud.plugin, cloud.package)
        if st.version is None:
            raise InputError(f"{cloud.display}: {st.reason}", hint=f"run `{st.install_hint(name)}`")
        row = {"cloud": name, "plugin": st.provider, "version": st.version, "path": st.path,
               "status": "already installed" if st.installed else "installed"}
        if not st.installed:
            _install(st.provider, st.version, cloud.display)
            after = plugin_status(cloud.plugin, cloud.package)
            if not after.installed:
                raise PreflightError(f"{cloud.display}: the engine reported success, but {after.reason}",
                                     hint="see `skyplan doctor`")
            row["path"] = after.path
        done.append(row)
        if not as_json:
            typer.echo(f"{name}: resource plugin {st.provider} v{st.version} {row['status']} ({row['path']})")
    if as_json:
        views.write_json(document(plugins=done))


def _install(provider: str, version: str, display: str) -> None:
    """Run the engine's ``pulumi plugin install`` into skyplan's PULUMI_HOME; its
    output goes to stderr (stdout stays for ``--json``)."""
    from skyplan.errors import PreflightError
    from skyplan.provision import settings
    from skyplan.provision.engine import find_engine

    engine = find_engine()
    cmd = [str(engine.pulumi_path), "plugin", "install", "resource", provider, f"v{version}"]
    env = {**os.environ, "PULUMI_HOME": str(settings.pulumi_home_dir()), "PULUMI_SKIP_UPDATE_CHECK": "true"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    sys.stderr.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise PreflightError(f"{display}: installing the resource plugin {provider} v{version} failed "
                             f"(the engine exited {proc.returncode}; its output is above)",
                             hint="it downloads from get.pulumi.com or GitHub: check this machine's network, "
                                  "then run the same command again")
