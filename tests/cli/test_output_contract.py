"""The JSON output contract (issue 10 §1): every command takes --json and has a
schema; the schemas are sound; one error object everywhere; apply --json ends
with exactly one summary however it ends; the checker that tests/conftest.py
runs on every --json output catches what breaks the contract."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from skyplan.cli.main import app
from skyplan.spec.schemas import load_schema, output_schema_names
from skyplan.testing import json_contract

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples"
UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
runner = CliRunner()


def invoke(*args):  # noqa: ANN201
    return runner.invoke(app, [str(a) for a in args])


def _commands(cmd=None, path=()):  # noqa: ANN001, ANN202
    cmd = cmd or get_command(app)
    subs = getattr(cmd, "commands", None)
    if not subs:
        yield path, cmd
        return
    for name, sub in subs.items():
        yield from _commands(sub, path + (name,))


def test_every_command_takes_json_and_has_a_schema():
    commands = list(_commands())
    assert len(commands) >= 12
    for path, cmd in commands:
        opts = {o for p in cmd.params for o in getattr(p, "opts", [])}
        assert "--json" in opts, f"`skyplan {' '.join(path)}` has no --json"
        assert json_contract.schema_name(path) in output_schema_names(), f"no schema for `skyplan {' '.join(path)}`"


@pytest.mark.parametrize("name", output_schema_names())
def test_every_schema_is_draft_2020_12_with_its_id_and_resolvable_refs(name):
    from jsonschema import Draft202012Validator

    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://skyplan.dev/schemas/{name}.schema.json"
    resolver = json_contract.registry().resolver(base_uri=schema["$id"])

    def refs(node):  # noqa: ANN001, ANN202
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for v in node.values():
                yield from refs(v)
        elif isinstance(node, list):
            for v in node:
                yield from refs(v)

    for ref in refs(schema):
        resolver.lookup(ref)  # raises when a $ref points nowhere


def test_every_output_document_must_carry_the_one_schema_version():
    from skyplan.contract import SCHEMA_VERSION

    assert load_schema("common")["$defs"]["schema_version"]["const"] == SCHEMA_VERSION

    def messages(errors):  # noqa: ANN001, ANN202
        for e in errors:
            yield e.message
            yield from messages(e.context or ())

    for name in output_schema_names():
        if name in ("task", "pipeline", "plan", "show", "common", "debug-failpoints", "jobs-queue", "jobs-launch",
                    "serve-up", "serve-status"):
            continue  # input files, plan documents (format_version), the bare lists of issues 8 and 11,
            # `jobs launch --json`, whose two keys issue 11's Contract fixes, and `serve up` / `serve status`,
            # whose shapes issue 12's Contract fixes
        found = list(messages(json_contract.validator(name).iter_errors({})))
        assert any("'schema_version' is a required property" in m for m in found), (name, found)


# --- the checker conftest runs on every --json output catches what breaks the contract


def _plan_doc() -> dict:
    r = invoke("plan", EX / "hello.yaml", "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_checker_refuses_a_whole_count_written_as_a_float():
    doc = _plan_doc()
    assert json_contract.check(["plan", "x", "--json"], json.dumps(doc), 0) == []
    doc["candidates"][0]["vcpus"] = float(doc["candidates"][0]["vcpus"])
    problems = json_contract.check(["plan", "x", "--json"], json.dumps(doc), 0)
    assert any("whole count" in p for p in problems), problems


def test_checker_refuses_epoch_times_and_missing_fields():
    ok = {"schema_version": 1, "clusters": []}
    assert json_contract.check(["status", "--json"], json.dumps(ok), 0) == []
    row = {"name": "a", "status": "UP", "cloud": "local", "region": "local", "zone": None, "instance_type": "local",
           "use_spot": False, "hourly_cost": 0.0, "stack": "s", "backend": "file:///b", "simulate": None,
           "outputs": {}, "created_at": 1733070000.5, "updated_at": "2024-12-01T16:20:00Z", "task_phase": None,
           "task": {"status": None, "exit_code": None, "node": None}}
    problems = json_contract.check(["status", "--json"], json.dumps({**ok, "clusters": [row]}), 0)
    assert any("created_at" in p for p in problems), problems
    assert json_contract.check(["status", "--json"], json.dumps([row]), 0)  # a bare list is not the document


def test_checker_requires_exactly_one_summary_last_and_the_exit_code_it_states():
    summary = {"event": "summary", "status": "FAILED", "cluster": "c", "placement": None, "stack": None,
               "attempts": [], "task": {"status": None, "exit_code": None, "node": None},
               "error": {"code": "LockedError", "message": "m", "hint": None, "exit_code": 6, "file": None,
                         "line": None, "path": None},
               "exit_code": 6, "action": None, "schema_version": 1}
    pre = {"event": "preflight", "cloud": "aws", "ok": True, "reason": "", "fix": "", "schema_version": 1}
    line = json.dumps
    assert json_contract.check(["apply", "t.yaml", "--json"], f"{line(pre)}\n{line(summary)}\n", 6) == []
    assert json_contract.check(["apply", "t.yaml", "--json"], f"{line(pre)}\n", 130)  # no summary
    assert json_contract.check(["apply", "t.yaml", "--json"], f"{line(summary)}\n{line(summary)}\n", 6)
    assert json_contract.check(["apply", "t.yaml", "--json"], f"{line(summary)}\n{line(pre)}\n", 6)
    assert json_contract.check(["apply", "t.yaml", "--json"], f"{line(summary)}\n", 0)  # says 6, exited 0
    assert json_contract.check(["apply", "t.yaml", "--json"], f"Launching...\n{line(summary)}\n", 6)  # not JSON
    failed_task = {**summary, "status": "UP", "error": None, "exit_code": 0, "action": "create",
                   "task": {"status": "failed", "exit_code": 3, "node": 0}}
    problems = json_contract.check(["apply", "t.yaml", "--json"], line(failed_task) + "\n", 0)
    assert problems  # a failed task is exit 7 (and UP needs a placement)
    undocumented = {"event": "error", "error": summary["error"], "schema_version": 1}
    assert json_contract.check(["apply", "t.yaml", "--json"], f"{line(undocumented)}\n{line(summary)}\n", 6)


def test_checker_holds_serve_output_to_issue_12s_contract():
    replica = {"id": 1, "version": 1, "status": "READY", "use_spot": True, "cloud": "sim", "region": "us-east1",
               "zone": "us-east1-b", "cluster": "serve-web-1", "endpoint": "http://127.0.0.1:5001",
               "launched_at": "2026-12-02T03:00:00Z"}
    svc = {"name": "web", "version": 1, "status": "READY", "endpoint": "http://127.0.0.1:4000", "replicas": [replica]}
    status = ["serve", "status", "web", "--json"]
    assert json_contract.check(status, json.dumps(svc), 0) == []
    assert json_contract.check(["serve", "status", "--json"], json.dumps([svc]), 0) == []
    assert json_contract.check(status, json.dumps({**svc, "replicas": [{**replica, "status": "GONE"}]}), 0)
    assert json_contract.check(status, json.dumps({**svc, "replicas": [{**replica, "launched_at": 1.5e9}]}), 0)
    no_zone = {k: v for k, v in replica.items() if k != "zone"}
    assert json_contract.check(status, json.dumps({**svc, "replicas": [no_zone]}), 0)
    up = ["serve", "up", "s.yaml", "-n", "web", "--yes", "--detach", "--json"]
    assert json_contract.check(up, '{"service": "web", "endpoint": "http://127.0.0.1:4000"}', 0) == []
    assert json_contract.check(up, '{"service": "web", "endpoint": "http://127.0.0.1:4000", "x": 1}', 0)
    down = {"schema_version": 1, "service": "web", "existed": True, "replicas_torn_down": 2}
    assert json_contract.check(["serve", "down", "web", "--json"], json.dumps(down), 0) == []
    assert json_contract.check(["serve", "down", "web", "--json"], json.dumps({**down, "schema_version": 2}), 0)


def test_checker_fails_a_json_command_without_a_schema(monkeypatch):
    names = [n for n in output_schema_names() if n != "status"]
    monkeypatch.setattr("skyplan.spec.schemas.output_schema_names", lambda: names)
    problems = json_contract.check(["status", "--json"], '{"schema_version": 1, "clusters": []}', 0)
    assert problems and "schemas/status.schema.json does not exist" in problems[0]


# --- one error object -----------------------------------------------------------


def _error(r) -> dict:  # noqa: ANN001
    doc = json.loads(r.stdout)
    assert set(doc) == {"schema_version", "error"}, doc
    err = doc["error"]
    assert err["exit_code"] == r.exit_code
    return err


def test_a_spec_error_is_the_one_error_object_with_file_line_and_path(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: ok\nresources:\n  cloud: local\n  cpus: lots\n")
    for command in (["plan"], ["validate"]):
        r = invoke(*command, bad, "--json")
        assert r.exit_code == 2
        if command == ["validate"]:  # validate's document is the report itself
            assert json.loads(r.stdout)["diagnostics"][0]["line"] == 4
            continue
        err = _error(r)
        assert err["code"] == "SpecError" and err["file"] == str(bad) and err["line"] == 4
        assert err["path"] == "$.resources.cpus" and err["diagnostics"][0]["path"] == "$.resources.cpus"


def test_usage_not_found_and_no_candidate_errors_are_the_same_object(tmp_path):
    assert _error(invoke("show-gpus", "A100:x", "--json"))["code"] == "InputError"
    assert _error(invoke("show-gpus", "Z9000", "--json"))["code"] == "NoCandidatesError"
    assert _error(invoke("logs", "nope", "--json"))["code"] == "NotFoundError"
    err = _error(invoke("gc", "--json"))
    assert err["code"] == "UsageError" and err["exit_code"] == 2 and err["hint"]


def test_an_internal_error_is_the_same_object_and_exit_1(monkeypatch):
    def boom(*a, **k):  # noqa: ANN001, ANN202
        raise RuntimeError("kaboom")

    monkeypatch.setattr("skyplan.cli.main._catalog", boom)
    err = _error(invoke("show-gpus", "--json"))
    assert err["code"] == "InternalError" and err["exit_code"] == 1 and "kaboom" in err["message"]
    assert "this is a bug" in err["hint"]


# --- apply --json: exactly one summary, however it ends ----------------------------


def _stream(r) -> list[dict]:  # noqa: ANN001
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["event"] for x in lines].count("summary") == 1 and lines[-1]["event"] == "summary", r.stdout
    assert lines[-1]["exit_code"] == r.exit_code
    return lines


def test_apply_json_of_an_invalid_task_ends_with_a_failed_summary(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: ok\nresources: {cloud: local, cpus: lots}\n")
    (s,) = _stream(invoke("apply", bad, "--yes", "--json"))
    assert s["status"] == "FAILED" and s["error"]["code"] == "SpecError" and s["exit_code"] == 2
    assert s["task"] == {"status": None, "exit_code": None, "node": None} and s["attempts"] == []


def test_apply_json_without_yes_ends_with_a_summary():
    (s,) = _stream(invoke("apply", EX / "hello.yaml", "--json"))
    assert s["status"] == "FAILED" and s["error"]["code"] == "UsageError" and s["cluster"] == "hello"


@pytest.mark.parametrize("raised, status, code", [(KeyboardInterrupt(), "INTERRUPTED", 130),
                                                   (RuntimeError("kaboom"), "FAILED", 1)])
def test_apply_json_interrupted_or_crashed_ends_with_one_summary(monkeypatch, raised, status, code):
    from skyplan.provision.events import Preflight

    def launch(request):  # noqa: ANN001, ANN202
        request.options.on_event(Preflight("aws", False, "AWS: no credentials", "aws configure"))
        raise raised

    monkeypatch.setattr("skyplan.provision.launch.launch", launch)
    r = invoke("apply", EX / "hello.yaml", "--yes", "--json")
    assert r.exit_code == code
    first, s = _stream(r)
    assert first["event"] == "preflight"
    assert s["status"] == status and s["error"]["exit_code"] == code and s["cluster"] == "hello"
    assert ("interrupted" if code == 130 else "internal error") in r.stderr


# --- integers for counts, ISO-8601 UTC times ---------------------------------------


def test_counts_are_integers_in_plan_and_show_gpus_json():
    doc = _plan_doc()
    assert all(type(c["vcpus"]) is int for c in doc["candidates"] if float(c["vcpus"]).is_integer())
    r = invoke("plan", EX / "gpu-set.yaml", "--json")
    accels = [n for c in json.loads(r.stdout)["candidates"] for n in c["accelerators"].values()]
    assert accels and all(type(n) is int for n in accels)
    assert UTC.match(json.loads(r.stdout)["created_at"])


def test_status_times_are_iso_utc_and_rows_carry_the_task_outcome():
    from skyplan.state import StateDB

    StateDB().upsert_cluster("c1", status="FAILED", cloud="local", region="local")
    r = invoke("status", "--json")
    assert r.exit_code == 0
    (row,) = json.loads(r.stdout)["clusters"]
    assert UTC.match(row["created_at"]) and UTC.match(row["updated_at"])
    assert row["task"] == {"status": None, "exit_code": None, "node": None}


def test_the_checker_recognises_skyplan_runs_however_they_are_started():
    assert json_contract.skyplan_args(["/venv/bin/skyplan", "status", "--json"]) == ["status", "--json"]
    assert json_contract.skyplan_args(["python3", "-m", "skyplan", "plan", "t"]) == ["plan", "t"]
    # The README tour's steps: `bash -c` of one plain command, environment assignments first.
    assert json_contract.skyplan_args(["bash", "-c", "A=1 skyplan apply t.yaml --json  # note"]) == [
        "apply", "t.yaml", "--json"]
    assert json_contract.skyplan_args(["bash", "-c", "skyplan plan t --json > p.json"]) is None  # stdout elsewhere
    assert json_contract.skyplan_args(["pulumi", "up"]) is None
    assert json_contract.command_path(["--version"]) == ()
    assert json_contract.command_path(["sim", "ledger", "--json"]) == ("sim", "ledger")


def test_the_task_output_that_apply_json_follows_is_log_events():
    import io

    from skyplan.cli.json_streams import LogLines

    out = io.StringIO()
    lines = LogLines(out)
    lines.write("setting up\n(node-1) hello from node 1\n")
    lines.write("no newline at the end")
    lines.flush()
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(e["event"], e["node"], e["line"]) for e in events] == [
        ("log", 0, "setting up"), ("log", 1, "hello from node 1"), ("log", 0, "no newline at the end")]
    assert all(json_contract.validator("apply").is_valid(e) for e in events)


@pytest.mark.parametrize("code, status, error", [(0, "FAILED", "Cancelled"), (130, "INTERRUPTED", "Interrupted"),
                                                 (5, "FAILED", "Exited")])
def test_a_path_that_exits_without_a_summary_still_gets_one(code, status, error):
    import io

    import typer

    from skyplan.cli.json_streams import JsonApplyStream

    out = io.StringIO()
    with pytest.raises(typer.Exit) as ended:
        with JsonApplyStream(out) as stream:
            stream.cluster = "c"
            raise typer.Exit(code)
    assert ended.value.exit_code == code
    (s,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert (s["status"], s["error"]["code"], s["exit_code"]) == (status, error, code)
    assert json_contract.check(["apply", "t", "--json"], out.getvalue(), code) == []
