"""The AWS, GCP and Azure Cloud classes: protocol, samples for the sim, preflight, lazy imports."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from skyplan.clouds.aws.cloud import AWS
from skyplan.clouds.azure.cloud import Azure
from skyplan.clouds.base import Cloud, ProvisionRequest
from skyplan.clouds.classify import sample_from
from skyplan.clouds.gcp.cloud import GCP
from skyplan.errors import Kind

CLOUDS = {"aws": AWS(), "gcp": GCP(), "azure": Azure()}
OUTCOMES = {"capacity": Kind.CAPACITY, "quota": Kind.QUOTA, "auth": Kind.AUTH, "invalid": Kind.INVALID,
            "transient": Kind.TRANSIENT}
CORPUS_DIR = Path(__file__).parent / "corpus"
REPO = Path(__file__).resolve().parents[3]


def req(cloud: str, **kw) -> ProvisionRequest:
    base = dict(cluster="c1", stack="c1-x", cloud=cloud, use_spot=False,
                region={"aws": "eu-west-3", "gcp": "europe-west4", "azure": "westeurope"}[cloud],
                zone={"aws": "eu-west-3b", "gcp": "europe-west4-c", "azure": None}[cloud],
                instance_type={"aws": "g5.xlarge", "gcp": "g2-standard-4", "azure": "Standard_NC4as_T4_v3"}[cloud])
    base.update(kw)
    return ProvisionRequest(**base)


# --- protocol ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "display", "zones"), [("aws", "AWS", True), ("gcp", "GCP", True),
                                                        ("azure", "Azure", False)])
def test_identity_and_protocol(name: str, display: str, zones: bool) -> None:
    cloud = CLOUDS[name]
    assert isinstance(cloud, Cloud)
    assert (cloud.name, cloud.display, cloud.capabilities.has_zones) == (name, display, zones)


def test_registry_serves_these_classes() -> None:
    from skyplan.clouds import registry

    for name, cloud in CLOUDS.items():
        assert type(registry.get(name)) is type(cloud)


def test_nothing_imports_pulumi_until_the_program_runs() -> None:
    code = (
        "import sys\n"
        "from skyplan.clouds import registry\n"
        "from skyplan.clouds.base import ProvisionRequest\n"
        "for n in ('aws', 'gcp', 'azure'):\n"
        "    c = registry.get(n)\n"
        "    r = ProvisionRequest(cluster='c', stack='s', cloud=n, region='r', zone=None, instance_type='t', use_spot=False)\n"
        "    prog = c.program(r); c.preflight(); c.classify('x'); c.sample_error('capacity', r)\n"
        "    assert callable(prog)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0].startswith('pulumi') or m.startswith('skyplan._programs.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- samples for the sim --------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CLOUDS))
@pytest.mark.parametrize("outcome", list(OUTCOMES))
def test_sample_classifies_as_its_outcome(name: str, outcome: str) -> None:
    cloud = CLOUDS[name]
    for spot in (False, True):
        text = cloud.sample_error(outcome, req(name, use_spot=spot))
        assert cloud.classify(text).kind is OUTCOMES[outcome]


@pytest.mark.parametrize("name", list(CLOUDS))
def test_samples_are_cut_from_corpus_texts(name: str) -> None:
    """Each sample template, filled as its corpus entry says, is part of that real message."""
    module = __import__(f"skyplan.clouds.{name}.classify", fromlist=["SAMPLES"])
    corpus = {e["id"]: e for e in yaml.safe_load((CORPUS_DIR / f"{name}.yaml").read_text())}
    assert set(module.SAMPLES) == set(OUTCOMES)
    for outcome, (entry_id, template) in module.SAMPLES.items():
        entry = corpus[entry_id]
        assert "fill" in entry, entry_id
        assert sample_from(template, **entry["fill"]) in entry["message"], outcome
        assert entry["kind"] == outcome


def test_samples_name_the_placement() -> None:
    r = req("aws", zone="use1-az6", instance_type="p4d.24xlarge")
    assert "sufficient p4d.24xlarge capacity" in AWS().sample_error("capacity", r)
    assert "(use1-az6)" in AWS().sample_error("capacity", r)
    g = req("gcp", zone="us-west1-b", region="us-west1", accelerators={"V100": 8.0})
    assert "zones/us-west1-b'" in GCP().sample_error("capacity", g)
    assert GCP().sample_error("quota", g) == "Quota 'NVIDIA_V100_GPUS' exceeded.  Limit: 1.0 in region us-west1."
    assert "PREEMPTIBLE_NVIDIA_V100_GPUS" in GCP().sample_error("quota", req("gcp", accelerators={"V100": 1.0},
                                                                             use_spot=True))
    a = req("azure", region="japaneast", instance_type="Standard_D8s_v5")
    text = Azure().sample_error("capacity", a)
    assert "Capacity Restrictions: Standard_D8s_v5'" in text and "location 'japaneast'" in text


@pytest.mark.parametrize("name", list(CLOUDS))
def test_unknown_outcome_is_refused(name: str) -> None:
    with pytest.raises(ValueError):
        CLOUDS[name].sample_error("hang", req(name))


# --- preflight ------------------------------------------------------------------------------

CRED_VARS = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
             "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CREDENTIALS",
             "GOOGLE_OAUTH_ACCESS_TOKEN", "CLOUDSDK_CONFIG", "ARM_CLIENT_ID", "ARM_CLIENT_SECRET", "ARM_TENANT_ID",
             "ARM_USE_MSI", "ARM_USE_OIDC", "ARM_CLIENT_CERTIFICATE_PATH", "AZURE_CONFIG_DIR"]
PLUGINS = {"aws": ("aws", "pulumi-aws"), "gcp": ("gcp", "pulumi-gcp"), "azure": ("azure-native", "pulumi-azure-native")}


@pytest.fixture
def bare_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No credentials, no plugins, nothing on PATH: a fresh machine under tmp_path."""
    for var in CRED_VARS:
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path / "pulumi"))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    return tmp_path


def install_plugin(root: Path, cloud: str, version: str | None = None) -> Path:
    import importlib.metadata

    provider, package = PLUGINS[cloud]
    version = version or importlib.metadata.version(package)
    d = root / "pulumi" / "plugins" / f"resource-{provider}-v{version}"
    d.mkdir(parents=True)
    (d / f"pulumi-resource-{provider}").write_text("#!/bin/sh\n")
    return d


def add_credentials(root: Path, cloud: str) -> None:
    home = root / "home"
    if cloud == "aws":
        (home / ".aws").mkdir()
        (home / ".aws" / "credentials").write_text("[default]\naws_access_key_id = x\n")
    elif cloud == "gcp":
        (home / ".config" / "gcloud").mkdir(parents=True)
        (home / ".config" / "gcloud" / "application_default_credentials.json").write_text("{}")
    else:
        (home / ".azure").mkdir()
        profile = {"subscriptions": [{"id": "sub", "isDefault": True}]}
        (home / ".azure" / "azureProfile.json").write_text("\ufeff" + json.dumps(profile), encoding="utf-8")


@pytest.mark.parametrize("name", list(CLOUDS))
def test_preflight_without_plugin_says_how_to_install_it(name: str, bare_machine: Path) -> None:
    add_credentials(bare_machine, name)
    res = CLOUDS[name].preflight()
    assert not res.ok
    assert "plugin" in res.reason and "\n" not in res.reason
    # a command that works as printed: skyplan's engine is not on PATH (tests/cli/test_hints_run.py)
    assert res.fix == f"run `skyplan plugins install {name}`"


@pytest.mark.parametrize("name", list(CLOUDS))
def test_preflight_names_a_plugin_of_the_wrong_version(name: str, bare_machine: Path) -> None:
    add_credentials(bare_machine, name)
    install_plugin(bare_machine, name, version="0.0.1")
    res = CLOUDS[name].preflight()
    assert not res.ok and "v0.0.1" in res.reason


@pytest.mark.parametrize("name", list(CLOUDS))
def test_preflight_without_credentials_says_how_to_log_in(name: str, bare_machine: Path) -> None:
    install_plugin(bare_machine, name)
    res = CLOUDS[name].preflight()
    assert not res.ok
    assert "no credentials" in res.reason
    assert {"aws": "aws configure", "gcp": "gcloud auth", "azure": "az login"}[name] in res.fix


@pytest.mark.parametrize("name", list(CLOUDS))
def test_preflight_ok_with_plugin_and_credential_files(name: str, bare_machine: Path) -> None:
    plugin = install_plugin(bare_machine, name)
    add_credentials(bare_machine, name)
    res = CLOUDS[name].preflight()
    assert res.ok, res.reason
    assert res.details["plugin"] == str(plugin)


def test_plugin_binary_on_path_counts(bare_machine: Path) -> None:
    add_credentials(bare_machine, "aws")
    binary = bare_machine / "bin" / "pulumi-resource-aws"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    res = AWS().preflight()
    assert res.ok and res.details["plugin"] == str(binary)


def test_missing_python_package_says_pip_install(bare_machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    res = GCP().preflight()
    # this interpreter's pip, as printed: `pip` on PATH may be another Python's
    assert not res.ok and "pulumi-gcp" in res.reason
    assert res.fix == f"run `{shlex.quote(sys.executable)} -m pip install pulumi-gcp`"


@pytest.mark.parametrize(
    ("env", "found"),
    [
        ({"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s"}, True),
        ({"AWS_ACCESS_KEY_ID": "AKIA"}, False),  # a key id alone cannot sign
        ({"AWS_PROFILE": "dev"}, True),
    ],
)
def test_aws_credentials_from_env(env: dict, found: bool, tmp_path: Path) -> None:
    from skyplan.clouds.aws.cloud import find_credentials

    assert (find_credentials(env, tmp_path) is not None) is found


def test_gcp_credentials_file_must_exist(tmp_path: Path) -> None:
    from skyplan.clouds.gcp.cloud import find_credentials

    key = tmp_path / "key.json"
    assert find_credentials({"GOOGLE_APPLICATION_CREDENTIALS": str(key)}, tmp_path) is None
    key.write_text("{}")
    assert find_credentials({"GOOGLE_APPLICATION_CREDENTIALS": str(key)}, tmp_path) is not None
    assert find_credentials({"GOOGLE_CREDENTIALS": "{...}"}, tmp_path) is not None


@pytest.mark.parametrize(
    ("env", "found"),
    [
        ({"ARM_CLIENT_ID": "i", "ARM_CLIENT_SECRET": "s", "ARM_TENANT_ID": "t"}, True),
        ({"ARM_CLIENT_ID": "i", "ARM_CLIENT_SECRET": "s"}, False),  # no tenant
        ({"ARM_CLIENT_ID": "i", "ARM_TENANT_ID": "t", "ARM_USE_OIDC": "true"}, True),
        ({"ARM_USE_MSI": "true"}, True),
        ({"ARM_CLIENT_ID": "i", "ARM_TENANT_ID": "t"}, False),  # no secret of any kind
    ],
)
def test_azure_service_principal_env(env: dict, found: bool, tmp_path: Path) -> None:
    from skyplan.clouds.azure.cloud import find_credentials

    assert (find_credentials(env, tmp_path) is not None) is found


def test_azure_profile_needs_a_subscription(tmp_path: Path) -> None:
    from skyplan.clouds.azure.cloud import find_credentials

    (tmp_path / ".azure").mkdir()
    profile = tmp_path / ".azure" / "azureProfile.json"
    profile.write_text('{"installationId": "x", "subscriptions": []}')
    assert find_credentials({}, tmp_path) is None
    profile.write_text("not json")
    assert find_credentials({}, tmp_path) is None
