"""Is the Pulumi resource plugin a cloud's program needs installed? (for ``preflight``)

No network, no Pulumi import: the engine looks for plugins in
``$PULUMI_HOME/plugins`` (the PULUMI_HOME skyplan runs it with) and on PATH.
"""

from __future__ import annotations

import importlib.metadata
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PluginStatus:
    """Whether a Pulumi resource plugin is installed where the engine looks for it."""

    provider: str  # "aws", "gcp", "azure-native"
    package: str  # "pulumi-aws"
    version: str | None  # the Python SDK's version, which names the plugin it needs
    path: str | None  # the plugin's directory or binary, when found
    reason: str = ""  # why not, when not found

    @property
    def installed(self) -> bool:
        return self.path is not None

    def install_hint(self, cloud: str) -> str:
        """A command that installs what is missing, as printed: the SDK with this
        interpreter's pip, or the plugin with ``skyplan plugins install`` (skyplan's
        engine is not on PATH, and the plugin belongs in skyplan's PULUMI_HOME)."""
        if self.version is None:
            return f"{shlex.quote(sys.executable)} -m pip install {self.package}"
        return f"skyplan plugins install {cloud}"


def pulumi_home() -> Path:
    """Where the engine looks for plugins: the same rule as the stack driver."""
    from skyplan.home import pulumi_home as _pulumi_home

    return _pulumi_home()


def plugin_status(provider: str, package: str) -> PluginStatus:
    """Find the resource plugin ``provider`` at the version the installed ``package`` needs.

    The engine looks in ``$PULUMI_HOME/plugins/resource-<provider>-v<version>/``
    and for ``pulumi-resource-<provider>`` on PATH. No network.
    """
    try:
        version: str | None = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return PluginStatus(provider, package, None, None, f"the Python package {package} is not installed")
    binary = f"pulumi-resource-{provider}"
    plugin_dir = pulumi_home() / "plugins" / f"resource-{provider}-v{version}"
    if (plugin_dir / binary).is_file() or ((plugin_dir.is_dir()) and any(plugin_dir.glob(binary + "*"))):
        return PluginStatus(provider, package, version, str(plugin_dir))
    on_path = shutil.which(binary)
    if on_path:
        return PluginStatus(provider, package, version, on_path)
    others = sorted(p.name for p in (pulumi_home() / "plugins").glob(f"resource-{provider}-v*")
                    if p.is_dir() and not p.name.endswith(".partial"))
    found = f" (found {', '.join(others)})" if others else ""
    return PluginStatus(provider, package, version, None,
                        f"the Pulumi resource plugin {provider} v{version} is not installed{found}")
