"""``converge.classify``: what applying a task to a cluster that is up would change (pure)."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from skyplan.provision.converge import (
    NO_RERUN_REASON,
    Change,
    InPlace,
    NoChange,
    Placement,
    Replace,
    classify,
    diff_tasks,
    flatten,
    read_record,
    stack_record,
    workdir_digest,
)
from skyplan.spec import load_text, task_to_dict

OLD = Placement("gcp", "us-central1", "us-central1-a", "n1-standard-8", False, 1, 2.9)
NEW = Placement("aws", "us-east-1", "use1-az1", "p3.2xlarge", False, 1, 3.06)
BASE = ("name: t\nworkdir: .\nresources:\n  accelerators: V100:1\nenvs:\n  A: '1'\nsecrets:\n  TOKEN: x\n"
        "setup: pip install x\nrun: python train.py\n")


def task(text: str = BASE) -> dict:
    return task_to_dict(load_text(text))


def test_the_same_task_is_no_change():
    assert classify(task(), task(), OLD, new_placement=NEW) == NoChange()


def test_what_runs_on_the_nodes_is_a_rerun_in_place_with_each_change_named():
    new = task(BASE.replace("run: python train.py", "run: python train.py --epochs 3")
               .replace("A: '1'", "A: '2'\n  B: '3'").replace("TOKEN: x", "TOKEN: x\n  OTHER: y"))
    action = classify(task(), new, OLD)
    assert isinstance(action, InPlace)
    assert {c.path: (c.old, c.new) for c in action.changes} == {
        "run": ("python train.py", "python train.py --epochs 3"),
        "envs.A": ("1", "2"), "envs.B": (None, "3"),
        "secrets.OTHER": (None, "<redacted>"),  # names only: values never reach the record
    }


def test_a_workdir_whose_contents_alone_changed_reruns():
    action = classify(task(), task(), OLD, old_workdir="a" * 64, new_workdir="b" * 64)
    assert isinstance(action, InPlace) and [c.path for c in action.changes] == ["workdir_contents"]
    # An unknown digest (an older record) is not a change by itself.
    assert classify(task(), task(), OLD, old_workdir=None, new_workdir="b" * 64) == NoChange()


def test_resources_or_node_count_changed_is_a_replacement_showing_both_placements():
    more = task(BASE.replace("V100:1", "V100:4").replace("run: python train.py", "run: other"))
    action = classify(task(), more, OLD, new_placement=NEW)
    assert isinstance(action, Replace) and (action.old, action.new) == (OLD, NEW)
    assert action.reason == "resources changed"
    # The rerun fields that changed alongside are in the diff too.
    assert {c.field for c in action.changes} == {"resources", "run"}
    nodes = classify(task(), task(BASE.replace("name: t", "name: t\nnum_nodes: 2")), OLD)
    assert isinstance(nodes, Replace) and nodes.reason == "num_nodes changed"


def test_a_cloud_without_a_node_runtime_replaces_instead_and_says_why():
    new = task(BASE.replace("python train.py", "python eval.py"))
    action = classify(task(), new, OLD, new_placement=NEW, rerun_in_place=False)
    assert isinstance(action, Replace) and action.reason == NO_RERUN_REASON and "replaced instead" in action.reason
    assert classify(task(), task(), OLD, rerun_in_place=False) == NoChange()  # nothing to re-run


def test_simulated_and_real_placements_never_converge_in_place():
    sim_new = Placement("gcp", "us-central1", "us-central1-a", "n1-standard-8", False, 1, 2.9, simulated=True)
    action = classify(task(), task(), OLD, new_placement=sim_new)
    assert isinstance(action, Replace) and action.reason == "the new placement is simulated"


def test_a_field_an_older_record_lacks_compares_as_null():
    old = task()
    old.pop("file_mounts")
    assert classify(old, task(), OLD) == NoChange()
    assert diff_tasks({"x": 1}, {}) == (Change("x", 1, None),)


def test_flatten_names_every_leaf_and_empty_is_null():
    assert flatten({"a": {"b": [1, {"c": 2}], "d": {}}, "e": []}) == {"a.b[0]": 1, "a.b[1].c": 2, "a.d": None,
                                                                     "e": None}


@settings(deadline=None)  # a shared machine: time is not what this checks
@given(st.dictionaries(st.sampled_from(["setup", "run", "envs", "resources", "num_nodes", "workdir"]),
                       st.one_of(st.none(), st.integers(0, 3), st.text(max_size=3),
                                 st.dictionaries(st.sampled_from("XY"), st.integers(0, 2), max_size=2)), max_size=6),
       st.dictionaries(st.sampled_from(["setup", "run", "envs", "resources", "num_nodes", "workdir"]),
                       st.one_of(st.none(), st.integers(0, 3), st.text(max_size=3),
                                 st.dictionaries(st.sampled_from("XY"), st.integers(0, 2), max_size=2)), max_size=6))
def test_classify_is_symmetric_in_kind_and_no_change_exactly_when_equal(a, b):
    one, other = classify(a, b, OLD), classify(b, a, OLD)
    assert one.kind == other.kind
    assert (one == NoChange()) == all(flatten(a.get(k), k) == flatten(b.get(k), k) for k in {*a, *b})
    if isinstance(one, Replace):
        assert any(c.field in ("resources", "num_nodes") for c in one.changes)


def test_workdir_digest_sees_contents_modes_and_links_but_not_times(tmp_path):
    d = tmp_path / "w"
    (d / "sub").mkdir(parents=True)
    (d / "a.py").write_text("print(1)\n")
    (d / "sub" / "b.txt").write_text("b")
    first = workdir_digest(str(d))
    os.utime(d / "a.py", (1, 1))
    assert workdir_digest(str(d)) == first  # a fresh checkout of the same files is no change
    (d / "a.py").write_text("print(2)\n")
    second = workdir_digest(str(d))
    assert second != first
    os.chmod(d / "a.py", 0o755)
    third = workdir_digest(str(d))
    assert third != second
    (d / "link").symlink_to("a.py")
    assert workdir_digest(str(d)) != third
    assert workdir_digest(None) is None and workdir_digest(str(tmp_path / "missing")) is None


def test_the_stack_record_round_trips_and_other_outputs_are_not_one():
    rec = stack_record("c", task(), "f" * 64, None, {"cloud": "gcp"}, 1, None)
    assert read_record({"skyplan_cluster": rec, "sandbox": "/x"}) == rec
    assert read_record({"skyplan_cluster": {**rec, "version": 99}}) is None
    assert read_record({}) is None
