"""The README's tour runs as written.

Every command of the ```bash block under "## Tour", and the skyplan commands of
the README's opening line, run in order in a fresh skyplan home through the real
console script and engine, from a directory holding a copy of ``examples/``
(plus ``.venv``, for the opening line's ``.venv/bin/skyplan``). Each command's
line says what it must end with: a trailing ``# exit N`` (continued on the
comment-only lines under it), and, in double quotes, text it prints (stdout or
stderr). The machine has no cloud credentials: ``HOME`` is a fresh directory and
the cloud variables are unset, so nothing can reach a real cloud.

What it covers: the embedded catalog (validate, plan, show-gpus), ``local``
(hello, secrets) and ``--simulate`` (the plan file rehearsed, seeds 000 and 001).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
VENV_BIN = Path(sys.executable).parent
EXIT = re.compile(r"#\s*exit\s+(\d+)\b(.*)$")
CLOUD_VARS = re.compile(r"^(AWS_|AZURE_|ARM_|GOOGLE_|CLOUDSDK_|GCLOUD_|SKYPLAN_(?!ENGINE_DIR)|PULUMI_)")


@dataclass
class Step:
    command: str
    exit_code: int
    says: list[str] = field(default_factory=list)
    line: int = 0

    def __str__(self) -> str:
        return f"README.md:{self.line}: {self.command}"


def _bash_blocks(text: str) -> list[tuple[int, list[str]]]:
    """(first line number, lines) of each ```bash block."""
    out, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            start, body = i + 2, []
            i += 1
            while lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            out.append((start, body))
        i += 1
    return out


def _steps(start: int, body: list[str]) -> list[Step]:
    """Commands with the exit code and the quoted texts of their comments; a
    comment-only line continues the comment of the command above it."""
    steps: list[Step] = []
    comments: list[str] = []
    for n, raw in enumerate(body, start):
        text = raw.strip()
        if not text:
            continue
        if text.startswith("#"):
            assert steps, f"README.md:{n}: a comment before any command"
            comments[-1] += " " + text
            continue
        command, sep, comment = raw.partition("  #")
        steps.append(Step(command.strip(), -1, line=n))
        comments.append("#" + comment if sep else "")
    for step, comment in zip(steps, comments):
        m = EXIT.search(comment.replace("\n", " "))
        assert m, f"{step}: no `# exit N` beside it"
        step.exit_code = int(m.group(1))
        step.says = re.findall(r'"([^"]+)"', comment[m.start():])
    return steps


def tour() -> tuple[list[Step], list[Step]]:
    """(the opening line's skyplan commands, the tour's commands)."""
    text = README.read_text()
    blocks = _bash_blocks(text)
    (start, opening), rest = blocks[0], text[text.index("\n## Tour\n"):]
    tour_start = text[: text.index("\n## Tour\n")].count("\n") + 1
    (t_start, t_body) = [(s, b) for s, b in blocks if s > tour_start][0]
    assert rest  # the section exists
    (line,) = [s for s in _steps(start, opening)]
    parts = [p.strip() for p in line.command.split("&&") if "skyplan" in p]
    first = [Step(p, line.exit_code, line.says if i == len(parts) - 1 else [], line.line)
             for i, p in enumerate(parts)]  # the line's texts, checked once the whole line has run
    return first, _steps(t_start, t_body)


def test_the_tour_is_annotated_and_found():
    first, steps = tour()
    assert [s.command for s in first] == [".venv/bin/skyplan plan examples/gpu-set.yaml",
                                          ".venv/bin/skyplan apply examples/hello.yaml --yes"]
    commands = [s.command for s in steps]
    assert "skyplan validate examples/*.yaml" in commands and "skyplan doctor" in commands
    assert {s.exit_code for s in steps} == {0, 4}
    assert all(s.says or s.exit_code == 0 for s in steps)
    # every line is a command as typed: no placeholders such as NAME or [--json]
    assert not [c for c in commands if re.search(r"\[|\bNAME\b|\.\.\.", c)]


@pytest.fixture
def tour_dir(engine, tmp_path: Path) -> Path:  # noqa: ANN001 - the real engine must be there
    """A directory like the checkout's root: examples/ copied, .venv linked."""
    work = tmp_path / "checkout"
    shutil.copytree(ROOT / "examples", work / "examples")
    (work / ".venv").symlink_to(VENV_BIN.parent)
    return work


def _env(tmp_path: Path) -> dict[str, str]:
    from skyplan.home import engine_dir

    env = {k: v for k, v in os.environ.items() if not CLOUD_VARS.match(k)}
    (tmp_path / "user").mkdir()
    env.update(HOME=str(tmp_path / "user"), SKYPLAN_HOME=str(tmp_path / "skyplan-home"),
               SKYPLAN_ENGINE_DIR=str(engine_dir()), PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
               COLUMNS="120")
    return env


def _run(steps: list[Step], cwd: Path, env: dict[str, str], *, chain: bool = False) -> list[str]:
    """Run ``steps`` in order; what went otherwise than the README says. With
    ``chain`` the steps are one ``&&`` line: the quoted texts may come from any."""
    failures, seen = [], ""
    try:
        for step in steps:
            proc = subprocess.run(["bash", "-c", step.command], cwd=cwd, env=env, capture_output=True,
                                  text=True, timeout=600, stdin=subprocess.DEVNULL)
            seen = (seen if chain else "") + proc.stdout + proc.stderr
            missing = [s for s in step.says if s not in seen]
            if proc.returncode != step.exit_code or missing:
                failures.append(f"{step}\n  exit {proc.returncode} (README: {step.exit_code}); "
                                f"not printed: {missing}\n  stdout: {proc.stdout[-1500:]}\n"
                                f"  stderr: {proc.stderr[-1500:]}")
    finally:
        _down_everything(cwd, env)
    return failures


def test_the_opening_line_ends_as_the_readme_says(tour_dir: Path, tmp_path: Path):
    first, _ = tour()
    assert _run(first, tour_dir, _env(tmp_path), chain=True) == []


def test_every_tour_command_ends_as_the_readme_says(tour_dir: Path, tmp_path: Path):
    _, steps = tour()
    failures = _run(steps, tour_dir, _env(tmp_path))
    assert not failures, "\n".join(failures)


def _down_everything(cwd: Path, env: dict[str, str]) -> None:
    import json

    r = subprocess.run(["skyplan", "status", "--json"], cwd=cwd, env=env, capture_output=True, text=True)
    doc = json.loads(r.stdout) if r.returncode == 0 else {}
    rows = doc.get("clusters", doc) if isinstance(doc, dict) else doc
    for row in rows or []:
        subprocess.run(["skyplan", "down", row["name"], "--yes"], cwd=cwd, env=env, capture_output=True,
                       timeout=300)
