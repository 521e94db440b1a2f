"""Every seed YAML and every example validates, builds and round-trips."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from skyplan.spec import (
    Pipeline,
    Preference,
    Task,
    load,
    load_task,
    task_from_dict,
    task_sha256,
    task_to_dict,
    validate_paths,
)
from spec_helpers import EXAMPLES, REPO, SEED_FIXTURES

ALL = SEED_FIXTURES + EXAMPLES
SEEDS = REPO.parent / "shared" / "seeds"
#: Fixtures built from a commented-out seed line, so not a verbatim block.
DERIVED = {"001-accelerators-a100x1.yaml", "001-accelerators-a100x8.yaml", "001-accelerators-a100-80gbx8.yaml"}
EXPECTED_EXAMPLES = {
    "hello", "gpu-set", "gpu-list", "any-of-regions", "ordered", "spot-fallback", "bert_qa", "pipeline",
    "serve-base-ondemand", "serve-dynamic-fallback", "v100", "v100x8",
}


def _tasks(result: Task | Pipeline) -> tuple[Task, ...]:
    return result.tasks if isinstance(result, Pipeline) else (result,)


def test_the_expected_fixture_and_example_files_exist():
    assert {p.stem for p in EXAMPLES} >= EXPECTED_EXAMPLES
    assert len(SEED_FIXTURES) >= 16


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_validates_and_builds(path: Path):
    assert validate_paths([path]) == []
    for task in _tasks(load(path)):
        assert isinstance(task, Task)
        assert task.resources.candidates  # never empty
        assert task.source == str(path)


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_task_dict_round_trips(path: Path):
    for task in _tasks(load(path)):
        data = task_to_dict(task)
        assert task_from_dict(data) == task
        assert task_sha256(task_from_dict(data)) == task_sha256(task)


@pytest.mark.parametrize("path", [p for p in SEED_FIXTURES if p.name not in DERIVED], ids=lambda p: p.name)
def test_seed_fixture_is_verbatim(path: Path):
    """Each fixture's lines appear, in order and contiguously, in the seed it names."""
    if not SEEDS.is_dir():
        pytest.skip("../shared/seeds is not present in this checkout")
    prefix = path.name[:3]
    (seed,) = SEEDS.glob(f"{prefix}_*.txt")
    seed_lines = [line.strip() for line in seed.read_text().splitlines() if line.strip()]
    mine = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    joined = "\n".join(seed_lines)
    assert "\n".join(mine) in joined, f"{path.name} is not a verbatim block of {seed.name}"


def test_examples_hello_runs_locally_without_workdir():
    task = load_task(REPO / "examples" / "hello.yaml")
    assert task.workdir is None
    assert task.num_nodes == 1
    assert [r.cloud for r in task.resources.candidates] == ["local"]
    assert task.setup and "echo" in task.setup and task.run and "echo" in task.run
    assert dict(task.envs) == {"GREETING": "hello", "REPEAT": "3"}


def test_runnable_examples_need_no_missing_workdir():
    for path in EXAMPLES:
        for task in _tasks(load(path)):
            if task.workdir is not None:
                assert (REPO / task.workdir).expanduser().exists(), f"{path.name}: workdir {task.workdir} is missing"


def test_seed_set_and_list_examples():
    gpu_set = load_task(REPO / "examples" / "gpu-set.yaml").resources.candidates[0]
    assert [str(a) for a in gpu_set.accelerators] == ["A10:1", "L4:1", "A10g:1"]
    assert gpu_set.accelerator_preference is Preference.CHEAPEST
    gpu_list = load_task(REPO / "examples" / "gpu-list.yaml").resources.candidates[0]
    assert [str(a) for a in gpu_list.accelerators] == ["A10:1", "A10g:1", "L4:1"]
    assert gpu_list.accelerator_preference is Preference.ORDERED


def test_any_of_regions_seed_gives_one_request_per_region():
    task = load_task(REPO / "tests" / "fixtures" / "seeds" / "001-any-of-regions.yaml")
    regions = [r.region for r in task.resources.candidates]
    assert regions == [
        "us-east-1", "us-east-2", "us-west-1", "us-west-2", "us-central1", "us-east1", "us-east4",
        "us-west1", "us-west2", "us-west3", "us-west4",
    ]
    assert task.resources.preference is Preference.CHEAPEST
    for r in task.resources.candidates:
        assert sorted(str(a) for a in r.accelerators) == ["A100:8", "A10:8", "A10g:8", "L4:8"]


def test_seed_pipeline_is_two_tasks():
    pipe = load(REPO / "tests" / "fixtures" / "seeds" / "003-pipeline.yaml")
    assert isinstance(pipe, Pipeline)
    assert pipe.name == "pipeline"
    assert [t.name for t in pipe.tasks] == ["train", "eval"]
    train, evaluate = pipe.tasks
    assert [r.use_spot for r in train.resources.candidates] == [True, False]
    assert [str(a) for a in evaluate.resources.candidates[0].accelerators] == ["T4:1"]
    assert train.file_mounts[0].name == "train-eval" and train.file_mounts[0].mode == "MOUNT"


def test_seed_serve_policies():
    base = load_task(REPO / "tests" / "fixtures" / "seeds" / "002-base-ondemand-fallback.yaml")
    dyn = load_task(REPO / "tests" / "fixtures" / "seeds" / "002-dynamic-ondemand-fallback.yaml")
    assert base.service is not None and dyn.service is not None
    assert base.service.readiness_probe.path == "/health"
    assert base.service.replica_policy.base_ondemand_fallback_replicas == 1
    assert base.service.replica_policy.dynamic_ondemand_fallback is None
    assert dyn.service.replica_policy.dynamic_ondemand_fallback is True
    req = base.resources.candidates[0]
    assert req.ports == (8081,) and req.use_spot is True and str(req.cpus) == "2+"


def test_seed_bert_qa_checkpoint_mount_has_null_bucket_name():
    task = load_task(REPO / "tests" / "fixtures" / "seeds" / "003-bert_qa-checkpointing.yaml")
    (mount,) = task.file_mounts
    assert (mount.dst, mount.name, mount.mode) == ("/checkpoint", None, "MOUNT")
    assert task.workdir == "~/transformers"
    assert re.search(r"--save_steps 1000", task.run or "")


def test_sha256_is_stable_and_sensitive():
    a = load_task(REPO / "examples" / "v100.yaml")
    b = load_task(REPO / "examples" / "v100x8.yaml")
    assert task_sha256(a) == task_sha256(load_task(REPO / "examples" / "v100.yaml"))
    assert task_sha256(a) != task_sha256(b)
    assert re.fullmatch(r"[0-9a-f]{64}", task_sha256(a))


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_pure_python_yaml_loader_gives_the_same_result(path: Path, monkeypatch: pytest.MonkeyPatch):
    """Without libyaml the loader falls back to yaml.SafeLoader: same data, same positions."""
    import yaml

    from skyplan.spec import source

    fast = load(path)
    monkeypatch.setattr(source, "_Loader", yaml.SafeLoader)
    slow = load(path)
    assert [task_to_dict(t) for t in _tasks(slow)] == [task_to_dict(t) for t in _tasks(fast)]


def test_pure_python_loader_locates_errors_the_same(monkeypatch: pytest.MonkeyPatch):
    import yaml

    from skyplan.errors import SpecError
    from skyplan.spec import load_text, source

    text = "name: x\nresources:\n  acelerators: A100\n  cpus: [1\n"
    bad = "name: x\nresources:\n  acelerators: A100\n"
    results = []
    for loader in (source._Loader, yaml.SafeLoader):
        monkeypatch.setattr(source, "_Loader", loader)
        for t in (text, bad):
            with pytest.raises(SpecError) as info:
                load_text(t)
            results.append([(d.line, d.path) for d in info.value.diagnostics])
    assert results[:2] == results[2:]
    assert results[1] == [(3, "$.resources.acelerators")]
