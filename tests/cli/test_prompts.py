"""Confirmation with Terraform's care, on a real terminal (a pty): `apply` asks [y/N] and
Enter does not launch; `down` names the cluster and what it costs; Ctrl-C or Ctrl-D at any
prompt cancels with exit 130 (never "internal error"). Nothing here starts the engine:
every answer is a no."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from skyplan.state import StateDB

PROMPT = "[y/N]: "


class Session:
    """``python -m skyplan ARGS`` with a pty as its stdin (so it asks), stderr read as it comes."""

    def __init__(self, *args: str) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen([sys.executable, "-m", "skyplan", *args], stdin=slave,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
        os.close(slave)
        self.err = ""

    def wait_for(self, text: str, timeout: float = 60) -> str:
        end = time.monotonic() + timeout
        while text not in self.err:
            left = end - time.monotonic()
            assert left > 0 and self.proc.poll() is None, f"no {text!r} on stderr: {self.err!r}"
            ready, _, _ = select.select([self.proc.stderr], [], [], left)
            if ready:
                self.err += os.read(self.proc.stderr.fileno(), 65536).decode()
        return self.err

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def end(self, timeout: float = 60) -> tuple[int, str, str]:
        out, rest = self.proc.communicate(timeout=timeout)
        os.close(self.master)
        return self.proc.returncode, out.decode(), self.err + rest.decode()


def task(tmp_path: Path, cpus: str = "1+") -> Path:
    path = tmp_path / "hello.yaml"
    path.write_text(f"name: hello\nresources:\n  cloud: local\n  cpus: {cpus}\nrun: echo hi\n")
    return path


def gpu_row(name: str = "gpu") -> None:
    StateDB().upsert_cluster(name, status="UP", cloud="gcp", region="us-central1", zone="us-central1-a",
                             instance_type="n1-standard-8", use_spot=False, hourly_cost=2.9, stack=f"{name}.a001.x",
                             backend="file:///nowhere", task_sha256="0" * 64, task={}, outputs={})


def test_apply_asks_y_n_and_enter_does_not_launch(tmp_path):
    s = Session("apply", str(task(tmp_path)))
    err = s.wait_for(PROMPT)
    assert "Launch cluster 'hello' (first trying this machine (Local))? [y/N]: " in err
    assert "CLOUD" in err  # the plan's top rows come first
    s.type("\n")
    code, _, err = s.end()
    assert code == 0 and "Cancelled; nothing was created." in err
    assert StateDB().get_cluster("hello") is None


def test_apply_asks_again_on_an_unclear_answer(tmp_path):
    s = Session("apply", str(task(tmp_path)))
    s.wait_for(PROMPT)
    s.type("maybe\n")
    s.wait_for("Please answer y or n.")
    s.type("no\n")
    code, _, err = s.end()
    assert code == 0 and err.count(PROMPT) == 2


@pytest.mark.parametrize("how", ["ctrl-c", "ctrl-d"])
def test_ctrl_c_or_ctrl_d_at_the_apply_prompt_cancels_with_130(tmp_path, how):
    s = Session("apply", str(task(tmp_path)))
    s.wait_for(PROMPT)
    if how == "ctrl-c":
        s.proc.send_signal(signal.SIGINT)
    else:
        s.type("\x04")  # the terminal's end-of-file
    code, _, err = s.end()
    assert code == 130 and "Cancelled; nothing was created." in err
    assert "internal error" not in err and "Traceback" not in err


def test_apply_shows_a_replacement_as_a_diff_before_asking(tmp_path):
    from skyplan.catalog import load_catalog
    from skyplan.planner import make_plan
    from skyplan.spec import load

    p = make_plan(load(str(task(tmp_path))), load_catalog(None))
    StateDB().upsert_cluster("hello", status="UP", cloud="local", region="local", zone=None, instance_type="local",
                             use_spot=False, hourly_cost=0.0, stack="hello.a001.local.local.local.od",
                             backend="file:///nowhere", task_sha256=p.task_sha256, task=p.to_json()["task"], outputs={})
    s = Session("apply", str(task(tmp_path, cpus="2+")))
    err = s.wait_for(PROMPT)
    assert "apply would REPLACE it (resources changed)" in err
    assert "  - this machine (Local)\n  + this machine (Local) (the same placement, new nodes)" in err
    assert "~ resources.candidates[0].cpus" in err
    assert "Replace cluster 'hello'? [y/N]: " in err
    s.type("\n")
    code, _, err = s.end()
    assert code == 0 and "Cancelled; nothing was changed." in err


def test_down_names_the_cluster_and_its_hourly_cost(tmp_path):
    gpu_row()
    s = Session("down", "gpu")
    err = s.wait_for(PROMPT)
    assert "Destroy cluster 'gpu' (GCP us-central1-a n1-standard-8, $2.90/hr)? [y/N]: " in err
    s.type("\n")
    code, _, err = s.end()
    assert code == 0 and "Cancelled; nothing was destroyed." in err
    assert StateDB().get_cluster("gpu").status == "UP"


@pytest.mark.parametrize("how", ["ctrl-c", "ctrl-d"])
def test_ctrl_c_or_ctrl_d_at_the_down_prompt_cancels_with_130(tmp_path, how):
    gpu_row()
    s = Session("down", "gpu")
    s.wait_for(PROMPT)
    if how == "ctrl-c":
        s.proc.send_signal(signal.SIGINT)
    else:
        s.type("\x04")
    code, _, err = s.end()
    assert code == 130 and "Cancelled; nothing was destroyed." in err and "internal error" not in err


def test_down_all_lists_every_cluster_with_its_cost_and_the_total(tmp_path):
    gpu_row("gpu")
    gpu_row("gpu-two")
    s = Session("down", "--all")
    err = s.wait_for(PROMPT)
    assert "  gpu (GCP us-central1-a n1-standard-8, $2.90/hr)\n" in err
    assert "Destroy these 2 clusters (together $5.80/hr)? [y/N]: " in err
    s.type("n\n")
    code, _, _ = s.end()
    assert code == 0 and len(StateDB().clusters()) == 2


def test_every_prompt_goes_through_prompts_confirm():
    """gc's prompt included: click's confirm turns Ctrl-C into an Abort, which the CLI
    would report as an internal error (exit 1)."""
    root = Path(__file__).resolve().parents[2] / "skyplan"
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if any(call in p.read_text() for call in ("typer.confirm(", "typer.prompt(", "click.confirm("))]
    assert offenders == []


def test_a_long_question_wraps_between_words_at_the_terminal_width(monkeypatch, capsys):
    from skyplan.cli import prompts

    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO("n\n"))
    q = "Launch cluster 'v100x8' (first trying AWS us-east-1a [use1-az1] p3.16xlarge on-demand at $24.48/hr)?"
    assert prompts.confirm(q, nothing_done="nothing was created.") is False
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert all(len(line) <= 40 for line in lines)
    assert err.split() == (q + " [y/N]:").split()  # no word or price split
