"""The registry is the one table of clouds; everything else asks it about capabilities.

The last tests add a cloud with one registry line (and a class) and check that
the planner, the catalog builder and the simulator pick it up without any other
change: the test of "one folder, one program, one registry line".
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import types
from pathlib import Path

import pytest

from skyplan.catalog.model import Offer
from skyplan.clouds import registry
from skyplan.clouds.base import Capabilities, Cloud, CloudBase, PreflightResult
from skyplan.errors import Classification, InputError, Kind, Scope

REPO = Path(__file__).resolve().parents[3]


def test_every_row_is_a_cloud_named_as_its_row() -> None:
    for name in registry.names():
        cloud = registry.get(name)
        assert isinstance(cloud, Cloud)
        assert cloud.name == name
        assert isinstance(cloud.capabilities, Capabilities)
        assert dataclasses.is_dataclass(cloud.capabilities)
        with pytest.raises(dataclasses.FrozenInstanceError):
            cloud.capabilities.runs_here = True  # type: ignore[misc]


def test_capability_queries() -> None:
    assert registry.catalog_clouds() == ("aws", "gcp", "azure")
    assert registry.default_clouds() == ("aws", "gcp", "azure")
    assert registry.simulatable() == ("aws", "gcp", "azure")
    assert registry.simulator().name == "sim"
    assert registry.with_capability(runs_here=True) == ("local", "sim")
    assert registry.with_capability(proves_interrupted=True) == ("local", "sim", "ssh")
    # Every cloud's task output is readable here: VMs' through the node runtime over SSH.
    assert registry.with_capability(has_log_source=True) == ("aws", "gcp", "azure", "local", "sim", "ssh", "kubernetes")
    assert registry.with_capability(nodes_over_ssh=True) == ("aws", "gcp", "azure")
    assert registry.with_capability(has_zones=False) == ("azure", "local", "kubernetes")
    assert registry.with_capability(offers_spot=False) == ("local", "ssh")
    assert registry.with_capability(runs_here=False, simulatable=True) == ("aws", "gcp", "azure")
    with pytest.raises(TypeError):
        registry.with_capability(flies=True)


def test_display_and_lookup() -> None:
    assert [registry.display(n) for n in registry.names()] == ["AWS", "GCP", "Azure", "Local", "Sim", "SSH", "Kubernetes"]
    assert registry.display("oci") == "oci"  # a custom catalog may name a cloud we do not know
    assert registry.find("oci") is None and registry.find(None) is None
    with pytest.raises(InputError, match="known: aws, gcp, azure, local, sim, ssh, kubernetes"):
        registry.get("oci")


def test_runner_is_the_simulator_only_for_simulatable_clouds() -> None:
    assert registry.runner("gcp", simulate=True) is registry.simulator()
    assert registry.runner("gcp", simulate=False) is registry.get("gcp")
    assert registry.runner("local", simulate=True) is registry.get("local")
    assert registry.is_simulatable("aws") and not registry.is_simulatable("local")
    assert not registry.is_simulatable(None) and not registry.is_simulatable("oci")


def test_hooks_have_safe_defaults_and_local_sim_override_them() -> None:
    aws, local, sim = registry.get("aws"), registry.get("local"), registry.get("sim")
    assert aws.own_offers() is None and aws.log_source({"sandbox": "/x"}) is None
    assert aws.resolve_interrupted(types.SimpleNamespace(type="x:LocalNode", inputs={})) is False
    (offer,) = local.own_offers()
    assert (offer.cloud, offer.price) == ("local", 0.0)
    assert sim.own_offers() == ()
    assert local.log_source({}) is None and local.log_source({"sandbox": "/x"}) is not None
    assert sim.log_source({"sandbox": "/x"}) is not None


def test_asking_capabilities_imports_no_classifier_program_or_pulumi() -> None:
    """The plan path asks the registry; that must stay cheap (<0.25 s start-up budget)."""
    code = (
        "import sys\n"
        "from skyplan.clouds import registry\n"
        "registry.default_clouds(); registry.simulator(); registry.display('gcp')\n"
        "print(sorted(m for m in sys.modules if m.startswith('pulumi') or m.endswith(('.classify', '.program'))\n"
        "             or m.startswith(('skyplan.provision', 'skyplan.clouds.sim.ledger', 'skyplan.clouds.base'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- a new cloud is one registry line ------------------------------------------------------


class Toy(CloudBase):
    """A cloud outside the catalog that is a default candidate and can be simulated."""

    name = "toy"
    display = "Toy"
    capabilities = Capabilities(has_zones=False, from_catalog=False, simulatable=True)

    def own_offers(self) -> tuple[Offer, ...]:
        return (Offer("toy", "toy.small", "toy-1", None, 4, 16, None, 0, 0.01, None),)

    def classify(self, message: str) -> Classification:
        return Classification(Kind.CAPACITY if "ToyFull" in message else Kind.UNKNOWN, Scope.ZONE, "toy", message)

    def program(self, request):  # noqa: ANN001, ANN201
        return lambda: None

    def preflight(self) -> PreflightResult:
        return PreflightResult(True)

    def sample_error(self, outcome: str, request) -> str:  # noqa: ANN001
        return f"ToyFull: {outcome} in {request.region}"


@pytest.fixture
def toy_registered(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    mod = types.ModuleType("toy_cloud_for_tests")
    mod.Toy = Toy
    monkeypatch.setitem(sys.modules, "toy_cloud_for_tests", mod)
    monkeypatch.setitem(registry.CLOUDS, "toy", "toy_cloud_for_tests:Toy")
    registry.get.cache_clear()
    yield
    registry.get.cache_clear()


def test_a_registered_cloud_is_planned_for_and_simulated_without_other_changes(toy_registered) -> None:
    from skyplan.planner.candidates import enumerate_candidates
    from skyplan.spec.models import ResourceRequest, Resources, Task
    from skyplan.testing.fakes import FakeCatalog, offer

    assert "toy" in registry.default_clouds() and "toy" in registry.simulatable()
    cat = FakeCatalog([offer("aws", "m6i.xlarge", "us-east-1", "use1-az1", vcpus=4, mem=16, price=0.19)])
    cands = enumerate_candidates(Task(resources=Resources(candidates=(ResourceRequest(),))), cat)
    assert [(c.cloud, c.instance_type) for c in cands] == [("toy", "toy.small"), ("aws", "m6i.xlarge")]
    # The sim's scenario validation and its classifier see the new cloud too.
    from skyplan.clouds.sim.scenario import parse

    assert parse("rules:\n  - {cloud: toy, outcome: capacity}\n", "s.yaml").rules[0].cloud == "toy"
    assert registry.simulator().classify("ToyFull: capacity in toy-1").kind is Kind.CAPACITY


def test_quota_families_are_each_clouds_own() -> None:
    assert registry.get("aws").quota_families("g4dn.xlarge") == {"G_VT"}
    assert registry.get("azure").quota_families("Standard_F8s_v2") == {"fsv2"}
    assert registry.get("local").quota_families("local") == frozenset()
    assert registry.get("sim").quota_families("n1-standard-8", {"V100": 1}) == frozenset()
