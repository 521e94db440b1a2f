from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from skyplan.clouds.base import ProvisionRequest
from skyplan.clouds.sim import scenario
from skyplan.clouds.sim.scenario import Decision, ScenarioError
from skyplan.errors import InputError

REPO = Path(__file__).resolve().parents[3]
SCENARIOS = REPO / "examples" / "scenarios"

ISSUE_EXAMPLE = """\
default: ok                 # outcome when no rule matches
latency_s: 0                # per create, default 0
rules:                      # first match wins; omitted keys match anything
  - {cloud: gcp, region: us-central1, zone: us-central1-a, instance_type: n1-highmem-8, use_spot: false,
     outcome: capacity,     # ok | capacity | quota | auth | invalid | transient | hang
     message: "…",          # optional: the exact provider text; default: that cloud's usual text for the outcome
     times: 2}              # optional: applies to the first N matching attempts only
preemptions:                # used by jobs/serve later
  - {cloud: gcp, zone: us-west1-a, after_s: 30}
"""


def place(cloud="gcp", region="us-central1", zone="us-central1-a", instance_type="n1-highmem-8", use_spot=False):
    return {"cloud": cloud, "region": region, "zone": zone, "instance_type": instance_type, "use_spot": use_spot}


def test_the_issue_example_parses() -> None:
    s = scenario.parse(ISSUE_EXAMPLE, "example.yaml")
    assert (s.default, s.latency_s, len(s.rules), len(s.preemptions)) == ("ok", 0.0, 1, 1)
    r = s.rules[0]
    assert (r.cloud, r.region, r.zone, r.instance_type, r.use_spot) == (
        "gcp",
        "us-central1",
        "us-central1-a",
        "n1-highmem-8",
        False,
    )
    assert (r.outcome, r.message, r.times) == ("capacity", "…", 2)
    p = s.preemptions[0]
    assert (p.cloud, p.zone, p.region, p.after_s) == ("gcp", "us-west1-a", None, 30.0)
    assert len(s.sha256) == 64


def test_first_match_wins_and_omitted_keys_match_anything(home) -> None:
    s = scenario.parse(
        """
default: auth
rules:
  - {zone: us-central1-a, outcome: capacity, message: first}
  - {cloud: gcp, outcome: quota, message: second}
  - {use_spot: true, outcome: transient}
"""
    )
    assert scenario.match(s, place()) == ("capacity", "first")
    assert scenario.match(s, place(zone="us-central1-b")) == ("quota", "second")
    assert scenario.match(s, place(cloud="aws", zone="use1-az1", use_spot=True)) == ("transient", None)
    assert scenario.match(s, place(cloud="aws", zone="use1-az1")) == ("auth", None)


def test_match_reads_a_provision_request(home) -> None:
    s = scenario.parse("rules: [{cloud: aws, region: us-west-2, use_spot: true, outcome: quota}]")
    req = ProvisionRequest(
        cluster="c", stack="s", cloud="aws", region="us-west-2", zone="usw2-az1", instance_type="p3.2xlarge", use_spot=True
    )
    assert scenario.match(s, req) == ("quota", None)
    assert scenario.match(s, {**place(cloud="aws", region="us-west-2"), "use_spot": False}) == ("ok", None)


def test_times_spends_a_rule_then_the_next_rule_decides(home) -> None:
    s = scenario.parse(
        """
default: ok
rules:
  - {zone: us-central1-a, outcome: transient, times: 2}
  - {zone: us-central1-a, outcome: capacity}
"""
    )
    got = [scenario.decide(s, place()) for _ in range(4)]
    assert got == [
        Decision("transient", None, 0),
        Decision("transient", None, 0),
        Decision("capacity", None, 1),
        Decision("capacity", None, 1),
    ]
    # a placement the rule does not match never spends it
    s2 = scenario.parse("rules: [{zone: z1, outcome: transient, times: 1}]")
    assert scenario.match(s2, place(zone="z2")) == ("ok", None)
    assert scenario.match(s2, place(zone="z1")) == ("transient", None)
    assert scenario.match(s2, place(zone="z1")) == ("ok", None)


def test_looking_without_counting(home) -> None:
    s = scenario.parse("rules: [{outcome: transient, times: 1}]")
    assert scenario.decide(s, place(), count=False).outcome == "transient"
    assert scenario.decide(s, place(), count=False).outcome == "transient"
    assert scenario.decide(s, place()).outcome == "transient"
    assert scenario.decide(s, place(), count=False).outcome == "ok"


_CHILD = """
import sys
from skyplan.clouds.sim import scenario
s = scenario.load(sys.argv[1])
print(scenario.match(s, {"cloud": "gcp", "region": "r", "zone": "z", "instance_type": "t", "use_spot": False}, db=sys.argv[2])[0])
"""


def test_times_counter_holds_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "flaky.yaml"
    path.write_text("rules: [{outcome: transient, times: 2}]\n")
    db = tmp_path / "ledger.db"

    def one(path: Path) -> str:
        out = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(db)], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    # sequential: each create is a fresh process, like the engine's provider
    assert [one(path) for _ in range(3)] == ["transient", "transient", "ok"]

    # concurrent: exactly `times` of them get the rule
    path3 = tmp_path / "flaky3.yaml"
    path3.write_text("rules: [{outcome: transient, times: 3}]\n")
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: one(path3), range(8)))
    assert sorted(results) == ["ok"] * 5 + ["transient"] * 3


def test_counters_are_per_scenario_content(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    a = scenario.parse("rules: [{outcome: capacity, times: 1}]\n")
    b = scenario.parse("rules: [{outcome: capacity, times: 1}]\n# edited\n")
    assert a.sha256 != b.sha256
    assert scenario.match(a, place(), db=db)[0] == "capacity"
    assert scenario.match(b, place(), db=db)[0] == "capacity"
    assert scenario.match(a, place(), db=db)[0] == "ok"


def test_preempt_after_first_match() -> None:
    s = scenario.parse(
        """
preemptions:
  - {zone: us-west1-a, after_s: 30}
  - {use_spot: true, after_s: 5.5}
"""
    )
    assert scenario.preempt_after(s, place(zone="us-west1-a", use_spot=True)) == 30.0
    assert scenario.preempt_after(s, place(use_spot=True)) == 5.5
    assert scenario.preempt_after(s, place()) is None


def test_empty_file_is_all_ok() -> None:
    s = scenario.parse("")
    assert (s.default, s.rules, s.preemptions) == ("ok", (), ())


# --- validation ---------------------------------------------------------------


def _errors(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as exc:
        scenario.parse(text, "bad.yaml")
    return exc.value


def test_every_finding_is_reported_with_location_and_suggestion() -> None:
    e = _errors(
        """\
default: fine
latency_s: -1
rule: []
rules:
  - {cloud: gpc, outcome: capcity}
  - {zone: z, outcome: ok, message: "not for ok"}
  - {zone: z, times: 0, outcome: quota}
  - {zone: z}
  - {zone: z, use_spot: "yes", outcome: auth, colud: aws}
  - just-a-string
preemptions:
  - {zone: z}
  - {zone: z, after_s: soon}
"""
    )
    assert isinstance(e, InputError) and e.exit_code == 2
    by_path = {d.path: d for d in e.diagnostics}
    assert by_path["$.default"].line == 1 and "one of ok, capacity" in by_path["$.default"].message
    assert by_path["$.latency_s"].line == 2
    assert by_path["$.rule"].suggestion == "rules" and by_path["$.rule"].line == 3
    assert by_path["$.rules[0].cloud"].suggestion == "gcp"
    assert by_path["$.rules[0].outcome"].suggestion == "capacity" and by_path["$.rules[0].outcome"].line == 5
    assert "only used by failure outcomes" in by_path["$.rules[1].message"].message
    assert "times" in by_path["$.rules[2].times"].message
    assert "needs an outcome" in by_path["$.rules[3]"].message
    assert "true or false" in by_path["$.rules[4].use_spot"].message
    assert by_path["$.rules[4].colud"].suggestion == "cloud"
    assert "must be a mapping" in by_path["$.rules[5]"].message
    assert "needs after_s" in by_path["$.preemptions[0]"].message
    assert "number" in by_path["$.preemptions[1].after_s"].message
    assert len(e.diagnostics) == 13
    # the text alone (what a provider's exception carries) names the problems
    assert "bad.yaml:5" in str(e) and "capcity" in str(e)


def test_not_a_mapping_and_bad_yaml() -> None:
    assert "mapping" in _errors("- a\n- b\n").diagnostics[0].message
    e = _errors("rules: [\n")
    assert "invalid YAML" in e.diagnostics[0].message and e.diagnostics[0].line is not None


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="file not found"):
        scenario.load(tmp_path / "missing.yaml")


# --- the shipped scenarios ----------------------------------------------------


def test_every_shipped_scenario_loads() -> None:
    files = sorted(SCENARIOS.glob("*.yaml"))
    assert {f.name for f in files} >= {
        "seed-000.yaml",
        "seed-001.yaml",
        "all-capacity.yaml",
        "auth-gcp.yaml",
        "invalid.yaml",
        "hang.yaml",
        "flaky-transient.yaml",
        "preempt.yaml",
    }
    for f in files:
        assert f.read_text().startswith("#"), f"{f.name} needs its explaining header"
        scenario.load(f)


def _walk(s, zones, home_db):
    return [(z, *scenario.match(s, place(cloud=c, region=r, zone=z), db=home_db)) for c, r, z in zones]


def test_seed_000_fails_us_central1_and_us_east1_then_lands_in_us_west1_a(tmp_path: Path) -> None:
    s = scenario.load(SCENARIOS / "seed-000.yaml")
    order = [("gcp", "us-central1", f"us-central1-{z}") for z in "abcf"]
    order += [("gcp", "us-east1", "us-east1-b"), ("gcp", "us-east1", "us-east1-c"), ("gcp", "us-west1", "us-west1-a")]
    got = _walk(s, order, tmp_path / "l.db")
    for zone, outcome, message in got[:-1]:
        assert outcome == "capacity"
        assert message == (
            f"The zone 'projects/intercloud-320520/zones/{zone}' does not have "
            "enough resources available to fulfill the request.  Try a different zone, or try again later."
        )
    assert got[-1] == ("us-west1-a", "ok", None)


def test_seed_001_exhausts_gcp_then_aws_east_and_lands_in_us_west_2(tmp_path: Path) -> None:
    s = scenario.load(SCENARIOS / "seed-001.yaml")
    db = tmp_path / "l.db"
    gcp = {z: scenario.match(s, place(region=z[:-2], zone=z), db=db) for z in (
        "us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f",
        "us-east1-b", "us-east1-c", "us-west1-a", "us-west1-b", "asia-east1-c", "europe-west4-a",
    )}  # fmt: skip
    assert gcp["us-central1-f"] == ("quota", "Quota 'NVIDIA_V100_GPUS' exceeded.  Limit: 1.0 in region us-central1.")
    assert gcp["us-west1-a"] == ("quota", "Quota 'NVIDIA_V100_GPUS' exceeded.  Limit: 1.0 in region us-west1.")
    assert all(o != "ok" for o, _ in gcp.values())
    assert "zones/us-east1-c' does not have enough resources" in gcp["us-east1-c"][1]
    assert gcp["asia-east1-c"] == ("capacity", None)  # GCP's usual text

    def aws(region: str, zone: str):
        return scenario.match(s, place("aws", region, zone, "p3.16xlarge"), db=db)

    east1 = [aws("us-east-1", f"use1-az{i}") for i in range(1, 7)]
    codes = ["Unsupported" if "(Unsupported)" in m else "InsufficientInstanceCapacity" for _, m in east1]
    assert codes == ["InsufficientInstanceCapacity"] * 2 + ["Unsupported", "InsufficientInstanceCapacity"] * 2
    assert all("(InsufficientInstanceCapacity)" in aws("us-east-2", z)[1] for z in ("use2-az1", "use2-az2"))
    assert aws("us-west-2", "usw2-az1") == ("ok", None)


def test_failure_scenarios(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    load = lambda name: scenario.load(SCENARIOS / name)  # noqa: E731
    assert scenario.match(load("all-capacity.yaml"), place("azure", "eastus", None), db=db) == ("capacity", None)
    auth = load("auth-gcp.yaml")
    assert scenario.match(auth, place(), db=db) == ("auth", None)
    assert scenario.match(auth, place("aws", "us-east-1", "use1-az1"), db=db) == ("ok", None)
    assert scenario.match(load("invalid.yaml"), place(), db=db) == ("invalid", None)
    hang = load("hang.yaml")
    assert [scenario.match(hang, place(), db=db)[0] for _ in range(2)] == ["hang", "ok"]
    flaky = load("flaky-transient.yaml")
    assert [scenario.match(flaky, place(), db=db)[0] for _ in range(3)] == ["transient", "transient", "ok"]
    pre = load("preempt.yaml")
    assert scenario.preempt_after(pre, place(use_spot=True)) == 20.0
    assert scenario.preempt_after(pre, place()) is None
