"""The bounded loader: special files, sizes, depth, alias expansion, duplicate
keys, the 50-error cap; and what rides on it (control characters in tasks,
scenarios, the config file)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skyplan.errors import MAX_ERRORS, Diagnostic, InputError, SpecError
from skyplan.spec import bounded, load, load_text
from skyplan.spec.bounded import Limits

TINY = Limits("task", 64, 4, 20)


def refused(fn, *args) -> Diagnostic:  # noqa: ANN001
    with pytest.raises(SpecError) as info:
        fn(*args)
    assert info.value.exit_code == 2
    return info.value.diagnostics[0]


# --- files ------------------------------------------------------------------------


def test_a_fifo_is_refused_without_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "task.yaml"
    os.mkfifo(fifo)
    result: list[object] = []
    # Opening a FIFO for reading blocks until a writer comes: run in a thread
    # so that a regression fails the test instead of hanging it.
    t = threading.Thread(target=lambda: result.append(_try(bounded.read_bytes, fifo, bounded.TASK)), daemon=True)
    t.start()
    t.join(20)
    assert result, "read_bytes blocked on a FIFO"
    assert isinstance(result[0], SpecError) and "FIFO" in result[0].diagnostics[0].message


def _try(fn, *args):  # noqa: ANN001, ANN202
    try:
        return fn(*args)
    except SpecError as exc:
        return exc


@pytest.mark.parametrize("dev, word", [("/dev/zero", "character device"), ("/dev/urandom", "character device")])
def test_devices_are_refused(dev: str, word: str) -> None:
    if not os.path.exists(dev):
        pytest.skip(f"no {dev} here")
    assert word in refused(bounded.read_bytes, dev, bounded.TASK).message


def test_directory_missing_and_symlink_to_a_device(tmp_path: Path) -> None:
    assert "directory" in refused(bounded.read_bytes, tmp_path, bounded.TASK).message
    assert "not found" in refused(bounded.read_bytes, tmp_path / "nope.yaml", bounded.TASK).message
    link = tmp_path / "plan.json"
    link.symlink_to("/dev/zero")
    assert "character device" in refused(bounded.read_bytes, link, bounded.PLAN).message
    regular = tmp_path / "ok.yaml"
    regular.write_text("name: x\n")
    (tmp_path / "link.yaml").symlink_to(regular)
    assert bounded.read_bytes(tmp_path / "link.yaml", bounded.TASK) == b"name: x\n"


def test_size_is_checked_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"a" * (bounded.TASK.max_bytes + 1))
    reads: list[int] = []
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: reads.append(n) or real_read(fd, n))
    d = refused(bounded.read_bytes, big, bounded.TASK)
    assert "too large for a task: over 1 MiB" in d.message
    assert reads == []  # refused from its size alone
    assert bounded.read_bytes(big, Limits("task", len(big.read_bytes()), 4, 4)) == big.read_bytes()


def test_a_size_that_lies_reads_at_most_one_byte_past_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    grows = tmp_path / "grows.yaml"
    grows.write_bytes(b"x" * 10_000)
    real_stat = os.stat

    class Small:
        def __init__(self, st: os.stat_result) -> None:
            self.st_mode, self.st_size = st.st_mode, 10

    real_fstat = os.fstat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: Small(real_stat(p, *a, **k)))
    monkeypatch.setattr(os, "fstat", lambda fd: Small(real_fstat(fd)))
    real_read = os.read
    got: list[int] = []

    def read(fd: int, n: int) -> bytes:
        data = real_read(fd, n)
        got.append(len(data))
        return data

    monkeypatch.setattr(os, "read", read)
    d = refused(bounded.read_bytes, grows, TINY)
    assert "too large" in d.message
    assert sum(got) == TINY.max_bytes + 1



def test_text_must_be_utf8_without_nul(tmp_path: Path) -> None:
    assert "binary" in refused(bounded.decode_text, b"a: 1\n\x00", "t.yaml").message
    d = refused(bounded.decode_text, b"a: 1\nb: caf\xe9\n", "t.yaml")
    assert d.line == 2 and "not UTF-8" in d.message
    assert bounded.decode_text("\ufeffa: 1\n".encode(), "t.yaml") == "a: 1\n"


def test_read_head_never_opens_a_special_file(tmp_path: Path) -> None:
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    assert bounded.read_head(fifo) == b""
    assert bounded.read_head(tmp_path) == b""
    (tmp_path / "p.json").write_text('{"format_version": 2}')
    assert bounded.read_head(tmp_path / "p.json", 5) == b'{"for'


# --- YAML -------------------------------------------------------------------------


def laughs(levels: int) -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_the_alias_that_crosses_the_limit() -> None:
    d = refused(bounded.compose_yaml, laughs(9), "bomb.yaml", bounded.TASK)
    assert "too large" in d.message and "100,000" in d.message
    # 9 + 81 + 729 + 6,561 + 59,049 values by line 5; line 6's aliases push it past 100,000
    assert d.line == 6


def test_aliases_count_at_their_expanded_size() -> None:
    text = "a: &a [1, 2]\nb: *a\n"  # root 1 + key a 1 + list 3 + key b 1 + alias 3 = 9
    assert bounded.compose_yaml(text, "t", Limits("task", 1000, 8, 9))
    assert "too large" in refused(bounded.compose_yaml, text, "t", Limits("task", 1000, 8, 8)).message


def test_the_value_count_is_for_the_whole_file() -> None:
    text = "---\na: 1\n" * 10  # 10 documents of 3 values
    assert len(bounded.compose_yaml(text, "t", Limits("task", 1000, 8, 30))) == 10
    assert "too large" in refused(bounded.compose_yaml, text, "t", Limits("task", 1000, 8, 29)).message


def test_depth_is_refused_while_composing() -> None:
    ok = "a: " + "[" * 3 + "]" * 3 + "\n"
    assert bounded.compose_yaml(ok, "t", TINY)
    d = refused(bounded.compose_yaml, "a: " + "[" * 4 + "]" * 4 + "\n", "t", TINY)
    assert "nesting is deeper than 4 levels" in d.message and (d.line, d.column) == (1, 7)


@pytest.mark.parametrize("text", ["a: &a [*a]\n", "a: &a {b: *a}\n", "a: &a\n  - 1\n  - {c: *a}\n"])
def test_an_alias_inside_what_it_names_is_refused(text: str) -> None:
    assert "refers to a node that contains it" in refused(bounded.compose_yaml, text, "t", bounded.TASK).message


def test_undefined_alias_is_a_message() -> None:
    d = refused(bounded.compose_yaml, "a: *nope\n", "t", bounded.TASK)
    assert "nope" in d.message


def test_a_merge_chain_stays_within_the_depth_limit() -> None:
    links = ["m0: &m0 {a: 1}"] + [f"m{i}: &m{i} {{<<: *m{i - 1}, k{i}: {i}}}" for i in range(1, 120)]
    with pytest.raises(SpecError) as info:
        load_text("name: x\nrun: echo\nx:\n" + "".join(f"  {x}\n" for x in links))
    assert any("nesting is deeper" in d.message for d in info.value.diagnostics)


def test_python_tags_are_reported_never_constructed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f'name: !!python/object/apply:os.system ["touch {marker}"]\nrun: echo\n'
    with pytest.raises(SpecError) as info:
        load_text(text)
    assert "unsupported YAML tag" in info.value.diagnostics[0].message
    assert not marker.exists()


# --- JSON -------------------------------------------------------------------------


def test_json_depth_is_checked_before_parsing() -> None:
    for text in ("[" * 10_000 + "]" * 10_000, '{"a":' * 10_000 + "1" + "}" * 10_000):
        assert "nesting is deeper than 32" in refused(bounded.load_json, text, "p.json", bounded.PLAN).message
    assert bounded.load_json("[" * 32 + "]" * 32, "p.json", bounded.PLAN)
    assert "balance" in refused(bounded.load_json, "[" * 100_000, "p.json", bounded.PLAN).message


def test_brackets_and_commas_inside_strings_do_not_count() -> None:
    text = json.dumps({"a": "[" * 100 + "," * 100, "b": ["]]}}", 'q"[', "\\[", "x"]})
    assert bounded.load_json(text, "p.json", Limits("plan", 10_000, 3, 12))["a"].startswith("[[")


def test_json_value_count() -> None:
    assert "too large" in refused(bounded.load_json, "[" + "0," * 30 + "0]", "p.json", TINY).message


def test_duplicate_json_keys_are_located() -> None:
    text = '{\n  "a": {"x": 1},\n  "b": {"x": 2, "y": {"x": 3}},\n  "c": [{"k": 1, "k": 2}]\n}\n'
    d = refused(bounded.load_json, text, "p.json", bounded.PLAN)
    assert d.message == 'duplicate key "k"' and (d.line, d.column) == (4, 18)


@pytest.mark.parametrize("text, word", [
    ('{"a": NaN}', "NaN"), ('{"a": -Infinity}', "Infinity"), ('{"a": 1e400}', "too large"),
    ('{"a": ' + "9" * 400 + ".5}", "too large"), ('{"a": ' + "9" * 5000 + "}", "not valid JSON"),
    ('{"a": 1,}', "not valid JSON"),
])
def test_numbers_json_does_not_allow(text: str, word: str) -> None:
    assert word in refused(bounded.load_json, text, "p.json", bounded.PLAN).message


# --- the 50-error cap ---------------------------------------------------------------


def test_spec_error_keeps_50_and_counts_the_rest() -> None:
    diags = [Diagnostic("t.yaml", i, 1, "$", f"problem {i}") for i in range(1, 1001)]
    exc = SpecError(diags)
    assert len(exc.diagnostics) == MAX_ERRORS == 50 and exc.omitted == 950
    assert "1,000 errors" in exc.message and "950 more not shown" in exc.message
    assert exc.to_json()["omitted"] == 950


def test_validate_prints_50_errors_then_a_count(tmp_path: Path) -> None:
    from skyplan.cli.main import app

    task = tmp_path / "t.yaml"
    task.write_text("name: x\nrun: echo\nenvs:\n" + "".join(f"  {i}bad: v\n" for i in range(3000)))
    r = CliRunner().invoke(app, ["validate", str(task)])
    lines = r.stderr.splitlines()
    assert r.exit_code == 2
    assert len(lines) == 51 and lines[-1] == "... and 2,950 more errors not shown"
    j = CliRunner().invoke(app, ["validate", str(task), "--json"])
    doc = json.loads(j.stdout)
    assert len(doc["diagnostics"]) == 50 and doc["omitted"] == 2950


# --- control characters in tasks ------------------------------------------------------


def test_control_characters_are_located_validation_errors(tmp_path: Path) -> None:
    task = tmp_path / "t.yaml"
    task.write_text(
        'name: "a\\eb"\n'
        "envs:\n"
        '  GOOD: "x\\0y"\n'
        '  "BAD\\0": v\n'
        '  FINE: "tab\\there\\nnew line\\r"\n'
        'setup: "\\x7f"\n'
        'run: "echo \\x85"\n'
        'workdir: "/tmp/\\x01"\n'
        "file_mounts:\n"
        '  "/remote\\x9b": /tmp\n'
    )
    with pytest.raises(SpecError) as info:
        load(task)
    found = {(d.path, d.line, d.column) for d in info.value.diagnostics if "control character" in d.message}
    assert found == {
        ("$.name", 1, 1), ("$.envs.GOOD", 3, 3), ("$.envs['BAD\\x00']", 4, 3), ("$.setup", 6, 1),
        ("$.run", 7, 1), ("$.workdir", 8, 1), ("$.file_mounts['/remote\\x9b']", 10, 3),
    }
    text = "\n".join(d.format() for d in info.value.diagnostics)
    assert "\x00" not in text and "\x1b" not in text  # escaped for the terminal


def test_tab_newline_and_carriage_return_are_fine() -> None:
    task = load_text('name: ok\nenvs:\n  A: "1\\t2\\n3\\r"\nrun: "echo a\\tb"\n')
    assert dict(task.envs)["A"] == "1\t2\n3\r"


# --- scenarios and the config file ------------------------------------------------------


def test_scenarios_report_duplicate_keys_and_refuse_bombs(tmp_path: Path) -> None:
    from skyplan.clouds.sim import scenario

    with pytest.raises(scenario.ScenarioError) as info:
        scenario.parse("default: ok\nrules:\n  - {outcome: capacity, outcome: ok}\ndefault: capacity\n", "s.yaml")
    messages = {(d.path, d.line, d.message.split(" (")[0]) for d in info.value.diagnostics}
    assert ("$.rules[0].outcome", 3, "duplicate key 'outcome'") in messages
    assert ("$.default", 4, "duplicate key 'default'") in messages
    with pytest.raises(scenario.ScenarioError, match="too large"):
        scenario.parse("default: ok\n" + laughs(9), "s.yaml")
    with pytest.raises(scenario.ScenarioError, match="FIFO"):
        fifo = tmp_path / "s.yaml"
        os.mkfifo(fifo)
        scenario.load(fifo)


def test_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from skyplan.config import ConfigError, config_path, load_config

    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path))
    assert config_path() == tmp_path / "config.yaml" and load_config() == {}
    config_path().write_text("# nothing yet\n")
    assert load_config() == {}
    config_path().write_text("backend: file:///x\nlimits: {retries: 3}\n")
    assert load_config() == {"backend": "file:///x", "limits": {"retries": 3}}
    for text, word in [("a: 1\na: 2\n", "duplicate key"), ("- 1\n", "mapping"), ("a: !!python/name:os.system\n", "tag"),
                       ("a: 1\n---\nb: 2\n", "one YAML document"), (laughs(9), "too large")]:
        config_path().write_text(text)
        with pytest.raises(ConfigError, match=None) as info:
            load_config()
        assert isinstance(info.value, InputError) and word in info.value.diagnostics[0].message
    config_path().unlink()
    config_path().write_bytes(b"x" * (bounded.CONFIG.max_bytes + 1))
    with pytest.raises(ConfigError):
        load_config()
