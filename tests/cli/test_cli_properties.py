"""Property: whatever task document a user writes, `skyplan plan` answers with
exit 0, 2 or 3 and never a traceback."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from skyplan.cli.main import app

runner = CliRunner()

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 100), st.floats(-1, 1e4, allow_nan=False),
    st.sampled_from(["A100", "A100:8", "V100:1", "L4:x", "4+", "8", "aws", "gcp", "azure", "local", "us-east-1",
                     "us-central1-a", "use1-az1", "g5.xlarge", "n1-highmem-8", "", "MOUNT", "COPY", "8081"]),
    st.text(max_size=8),
)
RES_KEYS = ["cloud", "region", "zone", "instance_type", "cpus", "memory", "accelerators", "use_spot",
            "max_hourly_cost", "disk_size", "ports", "labels", "job_recovery", "any_of", "ordered", "acelerators"]
TASK_KEYS = ["name", "workdir", "num_nodes", "resources", "envs", "file_mounts", "setup", "run", "service", "runn"]

values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(RES_KEYS + ["A10", "L4:1"]), inner, max_size=3)),
    max_leaves=8)
resources = st.dictionaries(st.sampled_from(RES_KEYS), values, max_size=5)
tasks = st.dictionaries(
    st.sampled_from(TASK_KEYS),
    st.one_of(values, resources),
    max_size=6,
).map(lambda d: {**d, "resources": d["resources"]} if isinstance(d.get("resources"), dict) else d)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=tasks)
def test_random_documents_exit_0_2_or_3(tmp_path_factory, doc):
    f = tmp_path_factory.mktemp("p") / "t.yaml"
    f.write_text(yaml.safe_dump(doc))
    r = runner.invoke(app, ["plan", str(f), "--json"])
    assert r.exit_code in (0, 2, 3), (doc, r.output)
    assert "Traceback" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)


@settings(max_examples=60, deadline=None)
@given(raw=st.binary(max_size=64))
def test_random_bytes_exit_2_or_plan(tmp_path_factory, raw):
    f = tmp_path_factory.mktemp("b") / "t.yaml"
    f.write_bytes(raw)
    r = runner.invoke(app, ["plan", str(f)])
    assert r.exit_code in (0, 2, 3), (raw, r.output)
    assert r.exception is None or isinstance(r.exception, SystemExit)
