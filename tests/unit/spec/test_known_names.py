"""Validation that knows the catalog: names that do not exist, counts that are
not sold, files that are not there, and task names that are not cluster names."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from skyplan.catalog import load_catalog
from skyplan.catalog.build import encode
from skyplan.catalog.loader import Catalog
from skyplan.errors import InputError, SpecError
from skyplan.planner import make_plan
from skyplan.provision.apply import default_cluster_name
from skyplan.spec import load, load_text
from skyplan.spec.models import Task


def findings(yaml_text: str, catalog: Catalog | None = None, filename: str = "t.yaml") -> list:
    """(path, message, suggestion) of each finding, in file order."""
    try:
        load_text(textwrap.dedent(yaml_text), filename, catalog=catalog or load_catalog())
    except SpecError as exc:
        return [(d.path, d.message, d.suggestion) for d in exc.diagnostics]
    return []


def one(yaml_text: str, catalog: Catalog | None = None) -> tuple:
    found = findings(yaml_text, catalog)
    assert len(found) == 1, found
    return found[0]


# -- accelerators --------------------------------------------------------------------


def test_an_unknown_accelerator_is_an_error_with_a_suggestion():
    path, message, suggestion = one("resources: {accelerators: A1000:8}")
    assert path == "$.resources.accelerators" and "unknown accelerator 'A1000'" in message
    assert suggestion == "A100"


def test_a_count_nobody_sells_is_an_error_naming_the_counts_and_the_next_one():
    path, message, suggestion = one("resources: {accelerators: A100:3}")
    assert "not sold in a count of 3" in message and "1, 2, 4, 8, 16" in message
    assert suggestion == "A100:4"


def test_counts_are_those_of_the_pinned_cloud():
    _, message, suggestion = one("resources: {cloud: azure, accelerators: A100:1}")
    assert "on Azure" in message and suggestion == "A100:8"  # Azure sells A100s eight at a time
    assert findings("resources: {cloud: gcp, accelerators: A100:1}") == []


def test_each_alternative_of_a_set_and_a_list_is_located_on_its_own():
    found = findings("""
        resources:
          accelerators: {L4: 1, V100: 3, T4: 1}
          any_of: [{region: us-east-1}, {accelerators: [A10g:1, H1000:1]}]
    """)
    assert [p for p, _, _ in found] == ["$.resources.accelerators.V100", "$.resources.any_of[1].accelerators[1]"]


def test_an_accelerator_a_pinned_cloud_lacks_is_fine_in_a_set():
    # AWS sells no L4 in this catalog: that alternative adds no candidates, like a region without it.
    assert findings("resources: {cloud: aws, accelerators: {A10g: 1, L4: 1}}") == []


def test_accelerator_names_are_case_insensitive():
    assert findings("resources: {accelerators: a10G:1}") == []


# -- clouds, regions, zones, instance types ------------------------------------------------


def test_a_misspelt_region_suggests_the_right_one():
    path, message, suggestion = one("resources: {region: us-centrl1}")
    assert path == "$.resources.region" and "unknown region 'us-centrl1'" in message
    assert suggestion == "us-central1"


def test_a_region_of_another_cloud_says_whose_it_is():
    _, message, _ = one("resources: {cloud: gcp, region: eastus}")
    assert message == "'eastus' is a region of Azure, not of GCP"


def test_an_impossible_aws_zone_name_is_refused_and_real_names_and_ids_pass():
    path, message, suggestion = one("resources: {cloud: aws, zone: us-east-1z}")
    assert path == "$.resources.zone" and "unknown zone 'us-east-1z' on AWS in us-east-1" in message
    assert "us-east-1a" in message and suggestion is None  # a..f are all equally near: none is guessed
    for zone in ("us-east-1a", "us-east-1f", "use1-az4", "us-west-2-lax-1a", "usw2-lax1-az1"):
        assert findings(f"resources: {{cloud: aws, zone: {zone}}}") == [], zone
    assert findings("resources: {zone: us-east-1z}")  # also when the cloud is not pinned


def test_a_zone_outside_the_pinned_region():
    _, message, _ = one("resources: {region: us-west-2, zone: use1-az1}")
    assert message == "zone 'use1-az1' is in region us-east-1, not in us-west-2"


def test_a_misspelt_gcp_zone_lists_its_regions_zones():
    _, message, suggestion = one("resources: {zone: us-central1-q}")
    assert "in us-central1" in message and "us-central1-a" in message and suggestion is None
    assert one("resources: {zone: us-centrl1-a}")[2] == "us-central1-a"


def test_zones_on_clouds_without_zones():
    assert "has no zones in the catalog in use" in one("resources: {cloud: azure, zone: eastus-1}")[1]
    assert one("resources: {cloud: local, zone: a}")[1] == "Local has no zones"


def test_an_instance_type_of_another_cloud_and_a_typo():
    assert one("resources: {cloud: gcp, instance_type: g5.xlarge}")[1] == \
        "'g5.xlarge' is an instance type of AWS, not of GCP"
    assert one("resources: {instance_type: g5.xlarg}")[2] == "g5.xlarge"


def test_any_of_entries_are_checked_merged_over_the_base_and_located_where_written():
    found = findings("""
        resources:
          cloud: gcp
          any_of:
            - region: us-central1
            - region: us-east-1
    """)
    assert found == [("$.resources.any_of[1].region", "'us-east-1' is a region of AWS, not of GCP", None)]


def test_the_local_cloud_is_known_to_the_registry_not_the_catalog():
    assert findings("resources: {cloud: local, region: local, instance_type: local}") == []
    assert "unknown region 'here'" in one("resources: {cloud: local, region: here}")[1]


# -- the catalog in use --------------------------------------------------------------------


@pytest.fixture
def gcp_only(tmp_path: Path) -> Catalog:
    """A catalog with GCP's us-central1 offers only, as --catalog FILE could name."""
    offers = [o for o in load_catalog().offers(clouds=["gcp"], region="us-central1")]
    path = tmp_path / "gcp-only.json"
    path.write_bytes(encode(offers))
    return load_catalog(path)


def test_names_are_checked_against_the_catalog_in_use(gcp_only: Catalog):
    assert "has no offers on AWS" in one("resources: {cloud: aws}", gcp_only)[1]
    assert "unknown region 'us-east1'" in one("resources: {region: us-east1}", gcp_only)[1]
    assert findings("resources: {region: us-east1}") == []  # the embedded catalog has it
    assert findings("resources: {cloud: gcp, zone: us-central1-a}", gcp_only) == []
    assert findings("resources: {cloud: local}", gcp_only) == []  # not a catalog cloud


def test_a_task_that_names_no_place_never_builds_the_location_index(tmp_path: Path):
    # Validation runs on every plan: it must cost set lookups, not a pass over the offers.
    path = tmp_path / "c.json"
    path.write_bytes(encode(load_catalog().offers(clouds=["gcp"], accelerator="L4")))
    cat = load_catalog(path)
    assert findings("resources: {accelerators: {L4: 1, l4: 2}}", cat) == []
    assert cat._locations is None
    findings("resources: {region: us-central1}", cat)
    assert cat._locations is not None


def test_without_a_catalog_the_loader_checks_no_names():
    task = load_text("resources: {accelerators: A1000:3, region: nowhere}\nworkdir: /no/such/dir\n")
    assert isinstance(task, Task)


# -- files ---------------------------------------------------------------------------


def test_workdir_and_file_mount_sources_must_exist_relative_to_the_task_file(tmp_path: Path, monkeypatch):
    (tmp_path / "code").mkdir()
    (tmp_path / "data.txt").write_text("x")
    task = tmp_path / "task.yaml"
    task.write_text("workdir: code\nfile_mounts:\n  /d: data.txt\n  /e: {source: ./code, mode: COPY}\n"
                    "  /b: s3://bucket/x\n  /c: {name: my-bucket, mode: MOUNT}\n")
    monkeypatch.chdir("/")
    assert isinstance(load(task, catalog=load_catalog()), Task)
    task.write_text("workdir: nope\nfile_mounts:\n  /d: missing.txt\n  /e: {source: gone, mode: COPY}\n")
    with pytest.raises(SpecError) as info:
        load(task, catalog=load_catalog())
    found = [(d.path, d.line, d.column, d.message) for d in info.value.diagnostics]
    assert [f[:3] for f in found] == [("$.workdir", 1, 1), ("$.file_mounts['/d']", 3, 3),
                                      ("$.file_mounts['/e'].source", 4, 8)]
    assert f"the workdir 'nope' does not exist (looked for {tmp_path / 'nope'})" == found[0][3]
    assert "the file mount source 'gone' does not exist" in found[2][3]


def test_a_file_as_workdir_is_refused(tmp_path: Path):
    (tmp_path / "f").write_text("")
    assert "is not a directory" in one_file(tmp_path, "workdir: f\n")


def one_file(tmp_path: Path, text: str) -> str:
    task = tmp_path / "task.yaml"
    task.write_text(text)
    with pytest.raises(SpecError) as info:
        load(task, catalog=load_catalog())
    (d,) = info.value.diagnostics
    return d.message


# -- names ---------------------------------------------------------------------------


@pytest.mark.parametrize("name,better", [("My Task!", "my-task"), ("train_v2", "train-v2"), ("-x-", "x"),
                                         ("a" * 70, "a" * 63), ("!!!", None)])
def test_a_name_that_is_not_a_cluster_name_is_an_error_with_a_suggestion(name: str, better: str | None):
    with pytest.raises(SpecError) as info:
        load_text(f"name: '{name}'\n", "t.yaml")
    (d,) = info.value.diagnostics
    assert (d.path, d.line, d.column) == ("$.name", 1, 1)
    assert "is not a valid cluster name" in d.message and d.suggestion == better


def test_a_valid_name_is_the_cluster_name_unchanged():
    task = load_text("name: train-v2\nresources: {cloud: local}\n")
    assert default_cluster_name(make_plan(task, load_catalog())) == "train-v2"


def test_the_default_cluster_name_is_never_a_rewrite():
    # A task built in code skips the loader: its bad name is refused, not rewritten.
    plan = make_plan(load_text("resources: {cloud: local}\n"), load_catalog())
    import dataclasses

    bad = dataclasses.replace(plan, task=dataclasses.replace(plan.task, name="My Task!"))
    with pytest.raises(InputError) as info:
        default_cluster_name(bad)
    assert "'my-task'" in (info.value.hint or "")
