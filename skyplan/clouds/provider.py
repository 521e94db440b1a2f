"""The shared shape of clouds reached through a Pulumi provider plugin (AWS, GCP, Azure).

Each such cloud states its facts as class attributes and keeps its knowledge in
its own folder, under the same file names: ``classify.py`` (``classify``,
``sample_error``), ``catalog.py`` (``SEED_FILE``, ``offers_from_rows``) and
``families.py`` (``quota_families``) and ``cloud.py`` (the class and
``find_credentials``). This base turns them into
the Cloud protocol; its Pulumi program is ``stacks/<cloud>/program.py``
(``skyplan.clouds.programs``). Nothing here imports Pulumi, and the classifier and
catalog modules are imported only when used, so reading a cloud's
capabilities costs no more than importing its ``cloud.py``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from skyplan.clouds.capabilities import Capabilities, CloudBase
from skyplan.errors import Classification

if TYPE_CHECKING:
    from skyplan.catalog.model import Offer
    from skyplan.clouds.base import LogSource, PreflightResult, ProvisionRequest


class ProviderCloud(CloudBase):
    # Their VMs are reached over SSH once up: the task is started, re-run in place,
    # and its output and state read through the node runtime (``skyplan.clouds.vmnodes``).
    capabilities = Capabilities(simulatable=True, nodes_over_ssh=True, has_log_source=True, reruns_in_place=True)
    plugin: str  # resource plugin name, e.g. "azure-native"
    package: str  # Python SDK distribution, e.g. "pulumi-azure-native"
    credentials_where: str  # where credentials are looked for, for the message
    credentials_fix: str  # how to provide them

    def find_credentials(self) -> str | None:
        """Where credentials would come from, or None. Looks, never calls the cloud."""
        raise NotImplementedError

    def _sibling(self, leaf: str) -> ModuleType:
        """``<this cloud's package>.<leaf>``: the cloud's classify or catalog module."""
        return importlib.import_module(f"{type(self).__module__.rpartition('.')[0]}.{leaf}")

    def classify(self, message: str) -> Classification:
        return self._sibling("classify").classify(message)

    def sample_error(self, outcome: str, request: ProvisionRequest) -> str:
        return self._sibling("classify").sample_error(outcome, request)

    def quota_families(self, instance_type: str, accelerators: Mapping[str, float] | None = None) -> frozenset[str]:
        return self._sibling("families").quota_families(instance_type, accelerators)

    def seed_offers(self, seed_dir: Path) -> Iterable[Offer]:
        from skyplan.catalog.rows import read_rows

        mapping = self._sibling("catalog")
        return mapping.offers_from_rows(read_rows(Path(seed_dir) / mapping.SEED_FILE))

    def program(self, request: ProvisionRequest) -> Callable[[], None]:
        name = self.name

        def run() -> None:
            from skyplan.clouds import programs

            programs.load(name).build(request)

        return run

    def release_buckets(self, owner: str, since: float, zones: Any) -> tuple[str, ...]:
        """The buckets its program made for job ``owner``, recorded on this machine,
        adopted into a throwaway stack and destroyed (``skyplan.clouds.buckets``)."""
        from skyplan.clouds.buckets import release_cloud_buckets

        return release_cloud_buckets(self, owner, since)

    def log_source(self, outputs: Mapping[str, Any]) -> LogSource | None:
        if not self.capabilities.nodes_over_ssh:
            return None
        from skyplan.clouds.vmnodes import log_source

        return log_source(outputs)

    def preflight(self) -> PreflightResult:
        from skyplan.clouds.base import PreflightResult
        from skyplan.clouds.plugins import plugin_status

        plugin = plugin_status(self.plugin, self.package)
        cred = self.find_credentials()
        if not plugin.installed:
            # Credentials are still reported, so `skyplan doctor` shows both gaps at once.
            return PreflightResult(False, f"{self.display}: {plugin.reason}", f"run `{plugin.install_hint(self.name)}`",
                                   {"plugin": None, "package_version": plugin.version, "credentials": cred})
        details = {"plugin": plugin.path, "package_version": plugin.version}
        if cred is None:
            return PreflightResult(False, f"{self.display}: no credentials found ({self.credentials_where})",
                                   self.credentials_fix, details)
        return PreflightResult(True, "", "", {**details, "credentials": cred})
