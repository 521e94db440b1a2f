"""Test helpers (imported as ``stackmocks``): run a cloud program under ``pulumi.runtime.set_mocks`` and record what it declares.

Each test gets fresh mocks; :func:`run_program` returns them once every resource
registration and invoke of the program has completed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

import pulumi

from skyplan.clouds.base import ProvisionRequest

#: Canned invoke results, by token.
CALL_RESULTS: dict[str, dict[str, Any]] = {
    "aws:ec2/getSubnet:getSubnet": {"id": "subnet-0feed", "vpcId": "vpc-0cafe", "availabilityZoneId": "use1-az1",
                                    "availabilityZone": "us-east-1b", "defaultForAz": True},
    "aws:ec2/getAmi:getAmi": {"id": "ami-0123456789abcdef0", "architecture": "x86_64", "name": "canned"},
}


@dataclass
class Declared:
    typ: str
    name: str
    inputs: dict[str, Any]
    provider: str | None


@dataclass
class RecordingMocks(pulumi.runtime.Mocks):
    resources: list[Declared] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: The program's stack outputs (``pulumi.export``), resolved.
    exports: dict[str, Any] = field(default_factory=dict)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(Declared(args.typ, args.name, dict(args.inputs), args.provider))
        outputs = dict(args.inputs)
        # What the real providers would compute and the programs read back.
        if args.typ.startswith("azure-native:"):
            # azure-native's `name` output is the value of the resource's `<type>Name` input.
            wanted = args.typ.rsplit(":", 1)[-1].lower() + "name"
            outputs["name"] = next((v for k, v in args.inputs.items() if k.lower() == wanted), args.name)
        outputs.setdefault("name", args.name)
        # Addresses differ per node (the rank ends the name: <stack>-<rank>[-ip|-nic]).
        rank = next((int(p) for p in reversed(args.name.split("-")) if p.isdigit()), 0)
        if args.typ == "aws:ec2/instance:Instance":
            outputs.update(publicIp=f"203.0.113.{10 + rank}", privateIp=f"10.0.0.{10 + rank}")
        if args.typ == "gcp:compute/instance:Instance":
            outputs["instanceId"] = f"id-{args.name}"
            outputs["networkInterfaces"] = [{**nic, "networkIp": f"10.128.0.{10 + rank}",
                                             "accessConfigs": [{"natIp": f"34.1.2.{10 + rank}"}]}
                                            for nic in args.inputs.get("networkInterfaces", [])]
        if args.typ == "azure-native:network:PublicIPAddress":
            outputs["ipAddress"] = f"198.51.100.{7 + rank}"
        if args.typ == "azure-native:network:NetworkInterface":
            outputs["ipConfigurations"] = [{**c, "privateIPAddress": f"10.0.0.{4 + rank}"}
                                           for c in args.inputs.get("ipConfigurations", [])]
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        self.calls.append((args.token, dict(args.args)))
        return dict(CALL_RESULTS.get(args.token, {}))

    # --- queries for tests ---------------------------------------------------------------

    def of_type(self, typ: str) -> list[Declared]:
        """Resources of ``typ`` sorted by name (registrations complete in any order)."""
        return sorted((r for r in self.resources if r.typ == typ), key=lambda r: r.name)

    def one(self, typ: str) -> Declared:
        found = self.of_type(typ)
        assert len(found) == 1, f"{len(found)} resources of type {typ}"
        return found[0]

    def calls_to(self, token: str) -> list[dict[str, Any]]:
        return [a for t, a in self.calls if t == token]


_SECRET_SIG = "4dabf18193072939515e22adb298388d"


def plain(value: Any) -> Any:
    """``value`` with Pulumi's secret wrappers removed (the mocks see them serialized)."""
    if isinstance(value, dict):
        if _SECRET_SIG in value:
            return plain(value.get("value"))
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and _SECRET_SIG in value


def run_program(build: Callable[[ProvisionRequest], None], request: ProvisionRequest,
                mocks: RecordingMocks | None = None) -> RecordingMocks:
    """``mocks``: a RecordingMocks (subclass) of the test's own, e.g. with canned invoke results."""
    mocks = mocks if mocks is not None else RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="skyplan-test", stack=request.stack, preview=False)

    @pulumi.runtime.test
    def program() -> Any:
        recorded: dict[str, Any] = {}
        export = pulumi.export
        pulumi.export = lambda name, value=None: recorded.__setitem__(name, value)  # type: ignore[assignment]
        try:
            build(request)
        finally:
            pulumi.export = export  # type: ignore[assignment]
        # The test runner waits for this Output: the exports are resolved when run_program returns.
        return pulumi.Output.from_input(recorded).apply(mocks.exports.update)

    program()
    return mocks


#: A cluster's public key as the launch hands it to a program (``skyplan.runtime.keys``).
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsyNa2pRUBRkCvnRqLgvqvtRhzmMHQ3iE3f9zY7ZmXo skyplan-demo"


def make_request(cloud: str, **overrides: Any) -> ProvisionRequest:
    base = ProvisionRequest(
        cluster="demo",
        stack="demo-a1b2",
        cloud=cloud,
        region={"aws": "us-east-1", "gcp": "us-central1", "azure": "eastus"}[cloud],
        zone={"aws": "use1-az1", "gcp": "us-central1-a", "azure": None}[cloud],
        instance_type={"aws": "m6i.large", "gcp": "n2-standard-4", "azure": "Standard_D2s_v5"}[cloud],
        use_spot=False,
        labels={"team": "ml"},
        envs={"GREETING": "hello world"},
        setup="echo setting up",
        run="echo running",
        ssh_public_key=PUBLIC_KEY,
    )
    return replace(base, **overrides)
