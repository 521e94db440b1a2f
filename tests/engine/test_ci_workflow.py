"""examples/ci/skyplan.yml runs as written: its own `run:` steps, extracted from the
YAML, as shell scripts with the real console script, the real engine and the sim
cloud, on a file:// backend standing in for S3.

Each job starts as GitHub starts one: a fresh runner (an empty skyplan home) in the
repository's checkout, the workflow's env (the backend and the passphrase
substituted), GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files, `${{ steps.ID.outputs.X }}`
from earlier steps. Steps that only make sense on GitHub are skipped, by id
(installing skyplan, posting the comment, downloading the artifact); the plan file
travels from the plan job to the apply job as the artifact would. Every other
`run:` step runs, so a step added to the workflow is tested without a change here.

The story: a first pull request plans a cluster that does not exist (exit 2 from
--detailed-exitcode, a markdown comment) and its merge applies the saved plan; a
second changes what the task runs (the plan says "re-run in place", the apply
re-runs it on the same stack); a third changes nothing (exit 0: "No changes");
then the down job runs twice (the second time there is nothing: exit 0).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "examples" / "ci" / "skyplan.yml"
TASK = ROOT / "examples" / "ci" / "train.yaml"
GITHUB_ONLY = {"install", "comment", "fetch-plan"}
PASSPHRASE = "ci-workflow-test"
SCENARIO = "default: ok\nlatency_s: 0\n"

pytestmark = pytest.mark.engine


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def run_steps(job: dict) -> list[dict]:
    return [s for s in job["steps"] if "run" in s]


class Runner:
    """One GitHub-hosted runner per job: a fresh home, the shared repository checkout."""

    def __init__(self, tmp: Path, repo: Path, backend: str, scenario: Path) -> None:
        self.tmp, self.repo, self.backend, self.scenario = tmp, repo, backend, scenario
        self.jobs = 0
        self.log: list[tuple[str, str, int, str, str]] = []
        self.outputs: dict[str, dict[str, str]] = {}  # the last job's steps' outputs

    def env(self, wf: dict, job: dict, step: dict, home: Path, outputs: dict) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SKYPLAN_", "PULUMI_")) or k == "SKYPLAN_ENGINE_DIR"}
        for scope in (wf.get("env"), job.get("env"), step.get("env")):
            for k, v in (scope or {}).items():
                env[k] = self.expand(str(v), outputs, secret_ok=True)
        assert env["SKYPLAN_BACKEND"].startswith("s3://"), "the example keeps its state on S3"
        env.update(
            SKYPLAN_BACKEND=self.backend,  # S3 -> a file:// backend
            SKYPLAN_SIMULATE=str(self.scenario),  # the sim cloud stands in for AWS/GCP
            SKYPLAN_HOME=str(home),
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",  # `skyplan` on PATH
            GITHUB_OUTPUT=str(home / "github_output"),
            GITHUB_STEP_SUMMARY=str(home / "step_summary.md"),
        )
        return env

    @staticmethod
    def expand(text: str, outputs: dict, *, secret_ok: bool = False) -> str:
        def sub(m: re.Match) -> str:
            expr = m.group(1).strip()
            if expr.startswith("secrets."):
                assert secret_ok, f"a secret in a run script: {expr}"
                return PASSPHRASE if expr == "secrets.PULUMI_CONFIG_PASSPHRASE" else ""
            got = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expr)
            if got:
                return outputs.get(got.group(1), {}).get(got.group(2), "")
            raise AssertionError(f"an expression only GitHub can fill in, in a step that runs here: {expr}")

        return re.sub(r"\$\{\{(.*?)\}\}", sub, text)

    def job(self, name: str) -> dict[str, subprocess.CompletedProcess]:
        """Run job ``name``'s steps on a fresh runner; returns each step's process by id."""
        wf = workflow()
        job = wf["jobs"][name]
        self.jobs += 1
        home = self.tmp / f"runner-{self.jobs}-{name}"
        home.mkdir()
        outputs: dict[str, dict[str, str]] = {}
        done = {}
        for step in run_steps(job):
            sid = step.get("id") or step.get("name")
            if sid in GITHUB_ONLY:
                continue
            script = self.expand(step["run"], outputs)
            out_file = home / "github_output"
            out_file.write_text("")
            # GitHub's `shell: bash`: bash --noprofile --norc -eo pipefail {0}
            proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                                  cwd=self.repo, env=self.env(wf, job, step, home, outputs), capture_output=True,
                                  text=True, timeout=600, stdin=subprocess.DEVNULL)
            self.log.append((name, sid, proc.returncode, proc.stdout, proc.stderr))
            assert proc.returncode == 0, f"{name}/{sid} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            outputs[sid] = dict(line.split("=", 1) for line in out_file.read_text().splitlines() if "=" in line)
            done[sid] = proc
        self.outputs = outputs
        return done


@pytest.fixture
def ci(engine, tmp_path):  # noqa: ANN001
    repo = tmp_path / "repo"
    (repo / "tasks").mkdir(parents=True)
    shutil.copy(TASK, repo / "tasks" / "train.yaml")
    backend = tmp_path / "backend"
    backend.mkdir()
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO)
    r = Runner(tmp_path, repo, f"file://{backend}", scenario)
    yield r
    # Whatever happened, nothing may be left: the down job destroys the cluster.
    env = dict(os.environ, SKYPLAN_HOME=str(tmp_path / "cleanup"), SKYPLAN_BACKEND=r.backend,
               PULUMI_CONFIG_PASSPHRASE=PASSPHRASE)
    subprocess.run([sys.executable, "-m", "skyplan", "down", "train", "--yes"], env=env, capture_output=True,
                   timeout=600)
    stacks = backend / ".pulumi" / "stacks" / "skyplan"
    assert not stacks.is_dir() or os.listdir(stacks) == []


def pull_request(ci: Runner) -> tuple[dict, str]:
    """The plan job, then what its artifact would carry to the apply job."""
    steps = ci.job("plan")
    md = (ci.repo / "plan.md").read_text()
    return steps, md


def test_the_example_workflow_runs_its_own_steps_on_the_sim_cloud(ci):
    wf = workflow()
    # What is skipped is exactly what only GitHub can do; everything else runs.
    skipped = {s.get("id") for job in wf["jobs"].values() for s in run_steps(job) if s.get("id") in GITHUB_ONLY}
    assert skipped == GITHUB_ONLY
    assert set(wf["jobs"]) == {"plan", "apply", "down"}

    # PR 1: a new cluster. --detailed-exitcode says 2 (apply would create it).
    steps, md = pull_request(ci)
    assert ci.outputs["plan"] == {"changes": "true"}
    assert md.startswith("### skyplan plan: `train`") and "| # | Cloud | Instance" in md
    assert "Cluster 'train' does not exist: apply would create it" in md
    assert "| 1 | GCP | g2-standard-4 | 4 | 16 | L4:1 |" in md and "…and" in md
    assert (ci.tmp / "runner-1-plan" / "step_summary.md").read_text() == md
    # Merged: the apply job applies exactly that plan, on a fresh runner.
    applied = ci.job("apply")["apply"]
    assert "Cluster 'train' is UP" in applied.stderr and "train" in applied.stdout  # `skyplan status train`

    # PR 2: what the task runs changes. A fresh runner finds the cluster through its stack's record.
    task = ci.repo / "tasks" / "train.yaml"
    task.write_text(task.read_text().replace("EPOCHS: 3", "EPOCHS: 5"))
    steps, md = pull_request(ci)
    assert "apply would re-run the task in place" in md and '\n~ envs.EPOCHS: "3" -> "5"\n' in md
    first_stack = re.search(r"train\.a\d{3}\.\S+", applied.stdout).group(0)
    rerun = ci.job("apply")["apply"]
    assert "the task re-runs in place" in rerun.stderr and first_stack in rerun.stderr

    # PR 3: nothing changes: exit 0 from --detailed-exitcode, and the comment says so.
    steps, md = pull_request(ci)
    assert ci.outputs["plan"] == {"changes": "false"}
    assert "matches the task: no changes" in md and md.rstrip().endswith(
        "No changes: the cluster already runs this task.")

    # Teardown, twice: the second finds nothing and still exits 0.
    first = ci.job("down")["down"]
    assert "Cluster 'train' is down" in first.stdout
    second = ci.job("down")["down"]
    assert "No cluster named 'train'" in second.stderr
