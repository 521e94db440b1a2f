"""Properties over tasks, scenarios and plan files read from disk through the
bounded loader: whatever the bytes (random, YAML-ish, or a valid file mutated),
the loader returns a value or raises an InputError subclass, never anything
else; and an edited plan file is accepted only if what apply would execute
(the task and the candidates) is unchanged."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skyplan.clouds.sim import scenario
from skyplan.errors import InputError
from skyplan.planner import make_plan, read_plan, write_plan
from skyplan.spec import load, load_task

ROOT = Path(__file__).resolve().parents[3]
TASKS = sorted((ROOT / "examples").glob("*.yaml"))
SCENARIOS = sorted((ROOT / "examples" / "scenarios").glob("*.yaml"))
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces of YAML that reach the corners: anchors and aliases (and merges of
# them), tags (python ones included), flow brackets, escapes of control
# characters, multi-document markers, odd scalars.
YAML_TOKENS = [
    "name: ", "run: ", "setup: ", "envs:\n", "resources:\n", "workdir: ", "file_mounts:\n", "rules:\n",
    "default: ", "outcome: ", "  ", "    ", "- ", ": ", ", ", "\n", "&a ", "&b ", "*a", "*b", "<<: *a\n",
    "[", "]", "{", "}", "[*a, *a, *a, *a]", "!!python/object/apply:os.system ['true'] ", "!!python/name:os.system ",
    "!!str ", "!!binary ", "!local ", '"\\0"', '"\\x85"', '"\\e[2J"', '"a\\tb"', "'", '"', "---\n", "...\n", "? ",
    "|\n", ">-\n", "# c\n", "1e400", "0x1F", ".inf", ".nan", "~", "null", "yes", "2001-12-14", "9" * 40, "A100:8",
    "capacity", "gcp", "ok", "\t", "\ufeff", "%YAML 1.1\n",
]
yamlish = st.lists(st.one_of(st.sampled_from(YAML_TOKENS), st.text(max_size=4)), max_size=80).map("".join)

# Byte-level edits, some of them hostile snippets.
SNIPPETS = [b"&a ", b"*a", b"<<: *a\n", b"!!python/object/apply:os.system [x]", b"[[[[", b"]]", b"{", b"}", b"\x00",
            b"\\0", b'"\\0"', b"\n  ", b": ", b"- ", b"---\n", b"\t", b"\xe9", b"\xef\xbb\xbf", b"\xc2\x85",
            b"&b [*a, *a, *a]", b'"', b"'", b",", b"1e999", b"NaN", b'"format_version": 2, ']
edit = st.tuples(st.sampled_from(["insert", "delete", "replace", "repeat"]), st.integers(0, 1 << 20),
                 st.integers(1, 64), st.one_of(st.binary(max_size=8), st.sampled_from(SNIPPETS)))


def mutate(data: bytes, edits: list[tuple[str, int, int, bytes]]) -> bytes:
    for how, pos, length, payload in edits:
        i = pos % (len(data) + 1)
        if how == "insert":
            data = data[:i] + payload + data[i:]
        elif how == "delete":
            data = data[:i] + data[i + length:]
        elif how == "replace":
            data = data[:i] + payload + data[i + len(payload):]
        else:
            data = data[:i] + data[i:i + length] * 3 + data[i:]
    return data


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile-props")


_names = itertools.count()


def loads_or_input_error(fn, path: Path, data: bytes) -> Any:  # noqa: ANN001
    """``fn(path)`` for a file holding ``data``: its value, or None for an InputError."""
    path.write_bytes(data)
    try:
        return fn(path)
    except InputError:
        return None


# --- tasks --------------------------------------------------------------------------


@SETTINGS
@given(data=st.binary(max_size=300))
def test_task_random_bytes(scratch: Path, data: bytes) -> None:
    loads_or_input_error(load, scratch / f"t{next(_names)}.yaml", data)


@SETTINGS
@given(text=yamlish)
def test_task_yamlish_text(scratch: Path, text: str) -> None:
    loads_or_input_error(load, scratch / f"t{next(_names)}.yaml", text.encode("utf-8", "surrogatepass"))


@SETTINGS
@given(source=st.sampled_from(TASKS), edits=st.lists(edit, min_size=1, max_size=6))
def test_task_mutated_examples(scratch: Path, source: Path, edits: list) -> None:
    loads_or_input_error(load, scratch / f"t{next(_names)}.yaml", mutate(source.read_bytes(), edits))


# --- scenarios ------------------------------------------------------------------------


@SETTINGS
@given(data=st.one_of(st.binary(max_size=300), yamlish.map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_scenario_random_bytes_and_yamlish_text(scratch: Path, data: bytes) -> None:
    loads_or_input_error(scenario.load, scratch / f"s{next(_names)}.yaml", data)


@SETTINGS
@given(source=st.sampled_from(SCENARIOS), edits=st.lists(edit, min_size=1, max_size=6))
def test_scenario_mutated_shipped_scenarios(scratch: Path, source: Path, edits: list) -> None:
    loads_or_input_error(scenario.load, scratch / f"s{next(_names)}.yaml", mutate(source.read_bytes(), edits))


# --- plan files ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plan_bytes(scratch: Path) -> bytes:
    """A real plan, cut to its first 6 candidates (small files keep the examples fast)."""
    import dataclasses

    from skyplan.catalog import load_catalog

    plan = make_plan(load_task(ROOT / "examples" / "v100.yaml"), load_catalog(None))
    path = scratch / "real-plan.json"
    write_plan(dataclasses.replace(plan, candidates=plan.candidates[:6]), path)
    return path.read_bytes()


@pytest.fixture(scope="module")
def original(scratch: Path, plan_bytes: bytes):  # noqa: ANN201
    path = scratch / "original.json"
    path.write_bytes(plan_bytes)
    return read_plan(path)


@SETTINGS
@given(data=st.binary(max_size=300))
def test_plan_random_bytes(scratch: Path, data: bytes) -> None:
    loads_or_input_error(read_plan, scratch / f"p{next(_names)}.json", data)


@SETTINGS
@given(edits=st.lists(edit, min_size=1, max_size=6))
def test_plan_mutated_bytes(scratch: Path, plan_bytes: bytes, original, edits: list) -> None:  # noqa: ANN001
    plan = loads_or_input_error(read_plan, scratch / f"p{next(_names)}.json", mutate(plan_bytes, edits))
    if plan is not None:
        assert_executes_the_same(plan, original)


def assert_executes_the_same(plan, original) -> None:  # noqa: ANN001
    """An accepted file may differ only where apply does not look."""
    assert plan.task == original.task
    assert [c.to_json() for c in plan.candidates] == [c.to_json() for c in original.candidates]


JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2, 10**6), st.floats(allow_nan=False),
                        st.text(max_size=6), st.just({}), st.just([]), st.just("0" * 64))


@st.composite
def json_edit(draw: st.DrawFn, doc: Any) -> tuple[list[Any], str, Any]:
    """A path to a node of ``doc``, and what to do there."""
    path: list[Any] = []
    node = doc
    while isinstance(node, (dict, list)) and node and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(node)) if isinstance(node, dict) else st.integers(0, len(node) - 1))
        path.append(key)
        node = node[key]
    return path, draw(st.sampled_from(["set", "delete", "null"])), draw(JSON_VALUES)


@SETTINGS
@given(data=st.data())
def test_plan_structural_edits_are_refused_unless_harmless(
    scratch: Path, plan_bytes: bytes, original, data: st.DataObject  # noqa: ANN001
) -> None:
    doc = json.loads(plan_bytes)
    edited = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 3))):
        path, how, value = data.draw(json_edit(edited))
        if not path:
            continue
        parent = edited
        for key in path[:-1]:
            parent = parent[key]
        if how == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = None if how == "null" else value
    plan = loads_or_input_error(read_plan, scratch / f"p{next(_names)}.json", json.dumps(edited).encode())
    if plan is not None:
        assert_executes_the_same(plan, original)
