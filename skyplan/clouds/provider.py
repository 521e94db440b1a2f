"""The shared shape of clouds reached through a Pulumi provider plugin (AWS, GCP, Azure).

Each such cloud states its facts as class attributes and supplies three
functions; this base turns them into the Cloud protocol. Nothing here imports
Pulumi: the program module is imported only when a program runs.
"""

from __future__ import annotations

import importlib
from typing import Callable

from skyplan.clouds.base import PreflightResult, ProvisionRequest
from skyplan.errors import Classification


class ProviderCloud:
    name: str
    display: str
    has_zones: bool
    plugin: str  # resource plugin name, e.g. "azure-native"
    package: str  # Python SDK distribution, e.g. "pulumi-azure-native"
    program_module: str  # e.g. "stacks.aws.program"
    credentials_where: str  # where credentials are looked for, for the message
    credentials_fix: str  # how to provide them

    # Supplied per cloud (plain functions, so they stay testable on their own).
    _classify: Callable[[str], Classification]
    _sample_error: Callable[[str, ProvisionRequest], str]
    _find_credentials: Callable[[], str | None]

    def classify(self, message: str) -> Classification:
        return type(self)._classify(message)

    def sample_error(self, outcome: str, request: ProvisionRequest) -> str:
        return type(self)._sample_error(outcome, request)

    def program(self, request: ProvisionRequest) -> Callable[[], None]:
        module = self.program_module

        def run() -> None:
            importlib.import_module(module).build(request)

        return run

    def preflight(self) -> PreflightResult:
        from stacks import plugin_status

        plugin = plugin_status(self.plugin, self.package)
        cred = type(self)._find_credentials()
        if not plugin.installed:
            # Credentials are still reported, so `skyplan doctor` shows both gaps at once.
            return PreflightResult(False, f"{self.display}: {plugin.reason}", f"run `{plugin.install_hint}`",
                                   {"plugin": None, "package_version": plugin.version, "credentials": cred})
        details = {"plugin": plugin.path, "package_version": plugin.version}
        if cred is None:
            return PreflightResult(False, f"{self.display}: no credentials found ({self.credentials_where})",
                                   self.credentials_fix, details)
        return PreflightResult(True, "", "", {**details, "credentials": cred})
