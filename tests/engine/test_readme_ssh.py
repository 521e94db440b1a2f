"""The README's try-out of the ssh cloud runs as written: the two blocks of "## The ssh
cloud" (start a throwaway sshd as the pool `try`, apply examples/ssh/hello.yaml; then
exec, status, down and stop), in a fresh skyplan home, from a directory like a fresh
clone's root, each command ending with the exit code and the text its line says. The
one change: the sshd's directory (`/tmp/skyplan-lab` in the README) is a directory of the
test's own, so a try-out of yours running there is left alone."""

from __future__ import annotations

from pathlib import Path

from test_readme_tour import README, _bash_blocks, _env, _run, _steps, tour_dir  # noqa: F401 - a fixture


def ssh_steps() -> list:
    text = README.read_text()
    at = text.index("\n## The ssh cloud\n")
    start = text[:at].count("\n") + 1
    end = text[: text.index("\n## ", at + 1)].count("\n") + 1  # the section ends at the next one
    blocks = [(s, b) for s, b in _bash_blocks(text) if start < s < end]
    assert len(blocks) == 2, "the try-out, then the commands that follow it"
    return [step for s, b in blocks for step in _steps(s, b)]


def test_the_try_out_is_two_commands_on_a_fresh_clone():
    steps = ssh_steps()
    assert [s.command.split()[0] for s in steps[:2]] == [".venv/bin/python", ".venv/bin/skyplan"]
    assert "examples/ssh/hello.yaml" in steps[1].command and all(s.exit_code == 0 for s in steps)


def test_the_ssh_cloud_try_out_runs_as_the_readme_says(tour_dir: Path, tmp_path: Path, sshd):  # noqa: ANN001
    # (``sshd``: skips where there is no sshd, as the README's first command would fail)
    from skyplan.testing.sshd import Sshd

    steps = ssh_steps()
    written = steps[0].command.split("--dir ")[1].split()[0]
    lab = tmp_path / "lab"
    for step in steps:
        step.command = step.command.replace(written, str(lab))
    try:
        failures = _run(steps, tour_dir, _env(tmp_path))
    finally:
        if (lab / "sshd.json").exists():
            Sshd.load(lab).stop()
    assert not failures, "\n".join(failures)
