"""The canary test: operator credentials never leave the operator's
environment, and a task's secrets appear only in the task's own output.

Fake credentials with unique values sit in the environment skyplan runs in
(AWS_SECRET_ACCESS_KEY, AZURE_CLIENT_SECRET, ARM_CLIENT_SECRET,
GOOGLE_CREDENTIALS), and the tasks carry secrets with unique values: one in the
task file, one given with ``--secret NAME`` from the environment. The tasks
print their secrets and ``$AWS_SECRET_ACCESS_KEY``. Then, through the real
console script and engine: validate, plan (--out, --json), apply on the local
cloud (from the plan file) and on the sim cloud (--simulate, a failover hop
first), status, logs, an internal error (a failpoint that raises: exit 1, a
traceback in the log), a kill -9 inside ``up`` and the re-run that recovers
it, and down. Every file under the skyplan home (state.db and
its WAL, the file:// backend with its history and .bak files, logs, sandboxes),
every plan file, the engine's temp dir and every captured stdout and stderr is
searched (gzip files decompressed):

* a credential appears nowhere (the task printed an empty ``$AWS_SECRET_ACCESS_KEY``);
* a secret appears only in the task's own output: its sandbox log files while the
  cluster is up, and the task's lines of ``apply`` (which streams them) and
  ``skyplan logs``; after ``down``, nowhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import zlib
from pathlib import Path

import pytest

pytestmark = pytest.mark.engine

SKYPLAN = str(Path(sys.executable).parent / "skyplan")
_TAG = uuid.uuid4().hex[:10]
CREDENTIALS = {
    "AWS_SECRET_ACCESS_KEY": f"canary-aws-{_TAG}",
    "AZURE_CLIENT_SECRET": f"canary-azure-{_TAG}",
    "ARM_CLIENT_SECRET": f"canary-arm-{_TAG}",
    "GOOGLE_CREDENTIALS": f"canary-gcp-{_TAG}",
}
IN_FILE = f"canary-secret-file-{_TAG}"  # a secret's value written in the task file
FROM_ENV = f"canary-secret-env-{_TAG}"  # a secret's value given with --secret FROM_ENV_TOKEN
SECRETS = (IN_FILE, FROM_ENV)
#: What the tasks print: their secrets, and the operator's credential (empty: not inherited).
RUN = 'echo "task-output file=$FILE_TOKEN env=$FROM_ENV_TOKEN aws=[${AWS_SECRET_ACCESS_KEY:-}]"'
TASK_LINE = f"task-output file={IN_FILE} env={FROM_ENV} aws=[]"
#: Files a task's output goes to (sandboxes/<stack>/node-<rank>/logs/).
TASK_LOGS = ("setup.log", "run.log", "combined.log")
FAILPOINT = "attempt.after-journal"
#: A kill -9 while the engine creates the node: the re-run recovers the stack it left
#: (reading the stack's state back, secrets decrypted in memory only).
KILLPOINT = "attempt.up.created"


class Run:
    """Every console-script run of the test, with what it printed."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd, self.outputs = env, cwd, []

    def __call__(self, *args: str, expect: int = 0, env: dict[str, str] | None = None) -> str:
        proc = subprocess.run([SKYPLAN, *args], capture_output=True, text=True, timeout=300, cwd=self.cwd,
                              env={**self.env, **(env or {})})
        self.outputs.append((" ".join(args), proc.stdout, proc.stderr))
        assert proc.returncode == expect, f"skyplan {' '.join(args)}: exit {proc.returncode}\n{proc.stderr}"
        return proc.stdout


def _task_line(line: str) -> str:
    """A line of output as the task wrote it: ``apply --json`` carries the task's lines
    as ``log`` events (``{"event": "log", "node", "line"}``)."""
    if line.startswith("{"):
        doc = json.loads(line)
        if doc.get("event") == "log":
            return doc["line"]
    return line


def _files(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in root.rglob("*") if p.is_file() and not p.is_symlink()]


def _content(path: Path) -> bytes:
    """A file's bytes, and, for gzip data (the engine's per-command logs under
    ``pulumi-home/logs``), what it decompresses to, as far as it goes. (The
    engine's per-stack logs are encrypted with the stack's passphrase: ``PLOG``.)"""
    data = path.read_bytes()
    out, rest = b"", data
    while rest[:2] == b"\x1f\x8b":
        member = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += member.decompress(rest)
        except zlib.error:
            break
        rest = member.unused_data
    return data + out


def _holding(files: list[Path], needles: tuple[str, ...]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in files:
        data = _content(path)
        for needle in needles:
            if needle.encode() in data:
                found.setdefault(needle, []).append(str(path))
    return found


def _is_task_log(path: str, home: Path) -> bool:
    rel = Path(path).relative_to(home).parts
    return rel[0] == "sandboxes" and rel[-2] == "logs" and rel[-1] in TASK_LOGS


def test_credentials_appear_nowhere_and_secrets_only_in_task_output(engine, skyplan_home: Path,  # noqa: ANN001
                                                                    tmp_path: Path) -> None:
    from skyplan import failpoints

    assert FAILPOINT in failpoints.NAMES and KILLPOINT in failpoints.NAMES
    work = tmp_path / "work"
    (work / "wd").mkdir(parents=True)
    (work / "wd" / "data.txt").write_text("payload\n")
    engine_tmp = tmp_path / "engine-tmp"  # the engine's and the driver's temp files, searched too
    engine_tmp.mkdir()
    secrets = "secrets:\n  FILE_TOKEN: " + IN_FILE + "\n  FROM_ENV_TOKEN: null\n"
    (work / "local.yaml").write_text(
        "name: canary\nresources: {cloud: local}\nworkdir: wd\n"
        "envs: {PLAIN: not-secret}\n" + secrets + f"setup: cat data.txt\nrun: '{RUN}'\n")
    (work / "sim.yaml").write_text(
        "name: simc\nresources: {cloud: gcp, cpus: 2, memory: 8}\n" + secrets + f"run: '{RUN}'\n")
    (work / "scenario.yaml").write_text(
        "default: ok\nrules:\n  - {cloud: gcp, outcome: capacity, times: 1}\n")
    env = {**os.environ, **CREDENTIALS, "FROM_ENV_TOKEN": FROM_ENV, "TMPDIR": str(engine_tmp)}
    env.pop("SKYPLAN_FAILPOINTS", None)
    run = Run(env, work)

    run("validate", "local.yaml", "sim.yaml")
    run("plan", "local.yaml", "--out", "plan-local.json")
    run("plan", "sim.yaml", "--json", "--out", "plan-sim.json", "--secret", "FROM_ENV_TOKEN")
    run("apply", "plan-local.json", "--yes", expect=2)  # FROM_ENV_TOKEN has no value: refused
    streamed = run("apply", "plan-local.json", "--yes", "--secret", "FROM_ENV_TOKEN")
    assert TASK_LINE in streamed.splitlines()  # the task got its secrets, not the credential
    summary = run("apply", "sim.yaml", "--yes", "--json", "--simulate", "scenario.yaml", "--secret", "FROM_ENV_TOKEN")
    assert '"outcome":"failed"' in summary.replace(" ", "") and '"status":"UP"' in summary.replace(" ", "")
    run("status")
    run("status", "--json")
    for cluster in ("canary", "simc"):
        assert TASK_LINE in run("logs", cluster, "--follow").splitlines()
    run("apply", "local.yaml", "--yes", "-c", "crash", "--secret", "FROM_ENV_TOKEN", expect=1,
        env={"SKYPLAN_FAILPOINTS": f"{FAILPOINT}:raise"})
    assert "internal error" in run.outputs[-1][2]
    run("apply", "local.yaml", "--yes", "--detach", "-c", "killed", "--secret", "FROM_ENV_TOKEN", expect=-9,
        env={"SKYPLAN_FAILPOINTS": f"{KILLPOINT}:kill"})
    run("apply", "local.yaml", "--yes", "--detach", "-c", "killed", "--secret", "FROM_ENV_TOKEN")

    # While the clusters are up: the secrets are in the tasks' log files only.
    files = _files(skyplan_home, engine_tmp) + [work / "plan-local.json", work / "plan-sim.json"]
    found = _holding(files, tuple(CREDENTIALS.values()) + SECRETS)
    assert not any(found.get(v) for v in CREDENTIALS.values()), found
    for value in SECRETS:
        assert found.get(value), f"the task's own log holds {value}"
        assert [p for p in found[value] if not _is_task_log(p, skyplan_home)] == []

    for cluster in ("canary", "simc", "crash", "killed"):
        run("down", cluster, "--yes")
    run("sim", "ledger", "--json")

    # After down: neither a credential nor a secret anywhere under the home.
    files = _files(skyplan_home, engine_tmp) + [work / "plan-local.json", work / "plan-sim.json"]
    assert _holding(files, tuple(CREDENTIALS.values()) + SECRETS) == {}
    assert any((skyplan_home / "logs").glob("*.log")), "the internal error's traceback was logged"

    # Every output: no credential; a secret only on the task's own lines.
    for command, out, err in run.outputs:
        for value in CREDENTIALS.values():
            assert value not in out and value not in err, command
        for value in SECRETS:
            assert value not in err, command
            assert [line for line in out.splitlines() if value in line and _task_line(line) != TASK_LINE] == [], command
