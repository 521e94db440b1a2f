"""CLI behaviour through Typer's CliRunner: exit codes, JSON shapes, plan files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skyplan.cli.main import app
from skyplan.planner import read_plan

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples"
runner = CliRunner()


def invoke(*args, **kw):
    return runner.invoke(app, [str(a) for a in args], **kw)


def test_plan_json_shape_and_order():
    r = invoke("plan", EX / "gpu-set.yaml", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["format_version"] == 2
    assert set(doc) >= {"format_version", "created_at", "task", "task_sha256", "catalog", "candidates"}
    assert doc["catalog"]["fetched_at"] == "2026-11-23"
    cands = doc["candidates"]
    assert [c["rank"] for c in cands] == list(range(1, len(cands) + 1))
    costs = [c["hourly_cost"] for c in cands]
    assert costs == sorted(costs)
    assert {next(iter(c["accelerators"])) for c in cands} <= {"A10", "A10G", "L4"}
    assert cands[0]["cloud"] == "gcp" and cands[0]["instance_type"] == "g2-standard-4"


def test_plan_human_table_has_header_and_footer():
    r = invoke("plan", EX / "gpu-set.yaml", "--top", "3")
    assert r.exit_code == 0
    assert "Catalog: 2026-11-23" in r.stdout
    assert "REGION/ZONE" in r.stdout and "✔" in r.stdout
    assert "Shown 3 of " in r.stdout


def test_spot_is_marked_in_the_table():
    r = invoke("plan", EX / "spot-fallback.yaml", "--top", "200")
    assert r.exit_code == 0
    assert "[Spot]" in r.stdout


def test_plan_file_round_trips(tmp_path):
    out = tmp_path / "plan.json"
    r = invoke("plan", EX / "any-of-regions.yaml", "--out", out, "--json")
    assert r.exit_code == 0
    plan = read_plan(out)
    assert json.loads(r.stdout)["candidates"] == [c.to_json() for c in plan.candidates]
    again = tmp_path / "again.json"
    from skyplan.planner import write_plan

    write_plan(plan, again)
    assert read_plan(again) == plan
    assert json.loads(again.read_text()) == json.loads(out.read_text())


def test_invalid_task_exits_2_with_every_error_located(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nresources:\n  acelerators: V100\n  cpus: lots\nrun: 3\nbogus: 1\n")
    r = invoke("plan", bad)
    assert r.exit_code == 2
    err = r.stderr
    assert f"{bad}:3" in err and "did you mean 'accelerators'" in err
    assert f"{bad}:4" in err and f"{bad}:6" in err
    assert "Traceback" not in r.output


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02\xff\xfe", b"- a\n- b\n", b"name: [unclosed\n"])
def test_garbage_input_exits_2(tmp_path, content):
    f = tmp_path / "t.yaml"
    f.write_bytes(content)
    r = invoke("plan", f)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output


def test_missing_file_exits_2(tmp_path):
    assert invoke("plan", tmp_path / "nope.yaml").exit_code == 2


def test_no_candidate_exits_3_and_names_constraint(tmp_path):
    t = tmp_path / "t.yaml"
    t.write_text("resources:\n  cloud: aws\n  region: eu-south-1\n  accelerators: H100:8\n")
    r = invoke("plan", t)
    assert r.exit_code == 3
    assert "no AWS offer has H100:8 in eu-south-1" in r.stderr


def test_explain_json_lists_constraints(tmp_path):
    r = invoke("plan", EX / "v100.yaml", "--json", "--explain")
    assert r.exit_code == 0
    steps = json.loads(r.stdout)["explain"][0]["steps"]
    acc = next(s for s in steps if s["constraint"].startswith("accelerators"))
    assert acc["removed"] > 0 and acc["remaining"] > 0


def test_validate_reports_all_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("resources:\n  any_of: [{cloud: aws}]\n  ordered: [{cloud: gcp}]\n")
    r = invoke("validate", EX / "hello.yaml", bad, "--json")
    assert r.exit_code == 2
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["diagnostics"]
    assert all(d["file"] == str(bad) for d in doc["diagnostics"])
    ok = invoke("validate", *sorted(EX.glob("*.yaml")))
    assert ok.exit_code == 0, ok.output


def test_show_gpus_list_and_detail():
    r = invoke("show-gpus", "--json")
    assert r.exit_code == 0
    data = json.loads(r.stdout)["accelerators"]
    assert 8 in data["A100"] and "V100" in data
    assert all(type(c) is int for c in data["A100"])  # whole counts are integers, not 8.0
    r = invoke("show-gpus", "A100:8", "--cloud", "gcp", "--json")
    assert r.exit_code == 0
    rows = json.loads(r.stdout)["offers"]
    assert rows and all(x["cloud"] == "gcp" and x["count"] == 8 and type(x["count"]) is int for x in rows)
    assert {"device_memory_gib", "vcpus", "memory_gib", "price", "spot_price", "cheapest_region"} <= set(rows[0])
    assert invoke("show-gpus", "Z9000").exit_code == 3
    assert invoke("show-gpus", "A100:x").exit_code == 2


def test_apply_refuses_without_yes_when_no_terminal():
    r = invoke("apply", EX / "hello.yaml")
    assert r.exit_code == 2
    assert "--yes" in r.stderr


def test_apply_refuses_stale_plan(tmp_path):
    task = tmp_path / "t.yaml"
    task.write_text((EX / "hello.yaml").read_text())
    plan = tmp_path / "plan.json"
    assert invoke("plan", task, "--out", plan).exit_code == 0
    task.write_text((EX / "hello.yaml").read_text().replace("REPEAT: 3", "REPEAT: 4"))
    r = invoke("apply", plan, "--yes")
    assert r.exit_code == 2
    assert "stale plan" in r.stderr and "has changed" in r.stderr


def test_apply_refuses_plan_from_another_catalog(tmp_path):
    plan = tmp_path / "plan.json"
    assert invoke("plan", EX / "gpu-set.yaml", "--out", plan).exit_code == 0
    doc = json.loads(plan.read_text())
    doc["catalog"]["sha256"] = "0" * 64
    plan.write_text(json.dumps(doc))
    r = invoke("apply", plan, "--yes")
    assert r.exit_code == 2 and "stale plan" in r.stderr


def test_plan_file_wrong_version_or_tampered(tmp_path):
    plan = tmp_path / "plan.json"
    assert invoke("plan", EX / "gpu-set.yaml", "--out", plan).exit_code == 0
    doc = json.loads(plan.read_text())
    doc["format_version"] = 99
    plan.write_text(json.dumps(doc))
    r = invoke("apply", plan, "--yes")
    assert r.exit_code == 2 and "format_version" in r.stderr
    doc["format_version"] = 2
    doc["task"]["num_nodes"] = 7
    plan.write_text(json.dumps(doc))
    assert invoke("apply", plan, "--yes").exit_code == 2


def test_internal_error_exits_1_and_points_at_log(monkeypatch, tmp_path):
    import skyplan.planner as planner

    def boom(*a, **k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(planner, "make_plan", boom)
    r = invoke("plan", EX / "gpu-set.yaml")
    assert r.exit_code == 1
    assert "internal error" in r.stderr and "skyplan.log" in r.stderr
    log = Path(tmp_path / "home" / "logs" / "skyplan.log")
    assert "kaboom" in log.read_text()


def test_status_and_down_unknown():
    r = invoke("status", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout) == {"schema_version": 1, "clusters": []}
    assert invoke("down", "nope", "--yes").exit_code == 0  # teardown is idempotent (test_terraform_habits.py)
    assert invoke("logs", "nope").exit_code == 2


def test_pipeline_is_refused_by_apply_with_a_clear_message():
    # plan plans each task of a pipeline (tests/cli/test_pipeline_plan.py); apply takes one task
    r = invoke("apply", EX / "pipeline.yaml", "--yes")
    assert r.exit_code == 2 and "pipeline" in r.stderr


def test_sim_reset_forgets_times_counters(tmp_path):
    from skyplan.clouds.sim import ledger
    from skyplan.clouds.sim.scenario import load_scenario

    sc = ROOT / "examples" / "scenarios" / "hang.yaml"
    digest = load_scenario(str(sc)).sha256
    assert ledger.take_hit(None, digest, 0, 1) is True
    assert ledger.hits(None, digest, 0) == 1
    r = invoke("sim", "reset", sc, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout) == {"schema_version": 1, "reset": 1, "switches": 0}
    assert ledger.hits(None, digest, 0) == 0


def test_sim_reset_puts_switches_back_at_the_scenarios_start():
    from skyplan.clouds.sim import ledger

    sc = ROOT / "examples" / "scenarios" / "spot-out.yaml"  # spot-out starts on
    assert invoke("sim", "switch", "spot-out", "off").exit_code == 0
    assert invoke("sim", "switch", "other", "on").exit_code == 0
    assert ledger.switch(None, "spot-out") is False
    r = invoke("sim", "reset", sc, "--json")  # only this scenario's switches
    assert r.exit_code == 0 and json.loads(r.stdout)["switches"] == 1, r.output
    assert ledger.switch(None, "spot-out") is None and ledger.switch(None, "other") is True
    r = invoke("sim", "reset")
    assert r.exit_code == 0 and "1 switch." in r.stdout, r.output
    assert ledger.switch(None, "other") is None


def test_plan_path_imports_no_pulumi_module():
    import subprocess
    import sys

    code = ("import sys, io, contextlib\n"
            "from skyplan.cli.main import app\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n"
            f"        app(['plan', {str(EX / 'gpu-set.yaml')!r}, '--json'])\n"
            "    except SystemExit as e:\n"
            "        assert e.code in (0, None), e.code\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pulumi' or 'pulumi' in m or m.startswith('skyplan._programs')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_plan_file_without_json_suffix_is_recognised(tmp_path):
    plan = tmp_path / "plan.out"
    r = invoke("plan", EX / "gpu-set.yaml", "--json")
    plan.write_text(r.stdout)
    doc = json.loads(plan.read_text())
    doc["catalog"]["sha256"] = "1" * 64
    plan.write_text(json.dumps(doc))
    r = invoke("apply", plan, "--yes")
    assert r.exit_code == 2 and "stale plan" in r.stderr  # read as a plan, not as a task


def test_edited_candidates_are_refused(tmp_path):
    plan = tmp_path / "plan.json"
    assert invoke("plan", EX / "gpu-set.yaml", "--out", plan).exit_code == 0
    doc = json.loads(plan.read_text())
    doc["candidates"][0]["instance_type"] = "evil"
    plan.write_text(json.dumps(doc))
    r = invoke("apply", plan, "--yes")
    assert r.exit_code == 2 and "candidates_sha256" in r.stderr


def test_no_candidate_with_instance_type_and_accelerator_names_both(tmp_path):
    t = tmp_path / "t.yaml"
    t.write_text("resources:\n  instance_type: p3.2xlarge\n  accelerators: T4\n")
    r = invoke("plan", t)
    assert r.exit_code == 3 and "p3.2xlarge with T4:1" in r.stderr
