"""Every command skyplan suggests works as printed.

Messages and hints quote commands in backticks (`skyplan down NAME --yes`). This
collects every backticked span of every string in the package that is not a
docstring (hints, messages, doctor's lines), and the spans `skyplan doctor`
prints in a fresh home, and checks each one:

* `skyplan ...`: its subcommands exist, every flag is one that command takes,
  and `skyplan <subcommand> --help` exits 0;
* an interpreter path (`/.../python -m MODULE ...`): the module runs (`--help`);
* `pulumi ...` fails the test: the engine setup builds is not on PATH (the
  doctor used to print `pulumi plugin install ...`, which did not work);
* the clouds' own CLIs (`aws configure`, `gcloud auth ...`, `az login`) are
  allowed: skyplan cannot install them, and the hint names them as such.
Other spans (YAML such as `cloud: local`, a flag alone, a file name) are
checked as far as they name skyplan commands or flags.
"""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from skyplan.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
#: The clouds' own command-line tools, named in credential hints; skyplan cannot install them.
CLOUD_CLIS = {"aws", "gcloud", "az"}
#: f-string expressions that stand for this interpreter in a hint.
INTERPRETER = {"{shlex.quote(sys.executable)}", "{sys.executable}"}
runner = CliRunner()
CLI = get_command(app)


def _strings(tree: ast.AST):
    """(line, text) of every string that is not a docstring; an f-string as one text,
    its expressions as ``{expr}``."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skip.add(id(first.value))
        if isinstance(node, ast.JoinedStr):
            skip.update(id(v) for v in node.values)
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            yield node.lineno, "".join(v.value if isinstance(v, ast.Constant) else "{" + ast.unparse(v.value) + "}"
                                       for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield node.lineno, node.value


def source_spans() -> list[tuple[str, str]]:
    out = []
    for path in sorted((ROOT / "skyplan").rglob("*.py")):
        if "testing" in path.relative_to(ROOT).parts:
            continue  # the test helpers' own messages, for developers
        for line, text in _strings(ast.parse(path.read_text())):
            out += [(f"{path.relative_to(ROOT)}:{line}", m.group(1)) for m in SPAN.finditer(text)]
    return sorted(set(out))


def _leaf(tokens: list[str]):
    """The click command ``tokens`` name, and the tokens after its name."""
    cmd, rest = CLI, list(tokens)
    path = []
    while rest and hasattr(cmd, "commands") and rest[0] in cmd.commands:
        path.append(rest[0])
        cmd = cmd.commands[rest.pop(0)]
    return cmd, path, rest


def _options(cmd) -> set[str]:
    return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help", "-h"}


def problems_with(span: str) -> list[str]:
    """Why ``span`` would not work as printed (empty: it works, or is not a command)."""
    text = span
    for expr in INTERPRETER:
        text = text.replace(expr, shlex.quote(sys.executable))
    text = re.sub(r"\{[^{}]*\}", "x", text).replace("...", " ")
    try:
        tokens = shlex.split(text)
    except ValueError:
        return [f"`{span}` does not parse as a shell command"]
    while tokens and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", tokens[0]):
        tokens = tokens[1:]  # VAR=value before the command
    if not tokens or ": " in span:
        return []  # YAML (`cloud: local`), not a command
    head = tokens[0]
    if head == "pulumi":
        return [f"`{span}`: pulumi is not on PATH (skyplan runs its own engine); suggest a skyplan command"]
    if head in CLOUD_CLIS:
        return []
    if head == sys.executable:
        if tokens[1:2] != ["-m"] or len(tokens) < 3:
            return [f"`{span}`: an interpreter without -m MODULE"]
        r = subprocess.run([sys.executable, "-m", tokens[2], "--help"], capture_output=True, text=True, timeout=60)
        return [] if r.returncode == 0 else [f"`{span}`: `python -m {tokens[2]} --help` exited {r.returncode}"]
    if head == "skyplan":
        tokens = tokens[1:]
    elif head.startswith("-"):
        known = set().union(*(_options(c) for c in _all_commands()))
        return [] if head.split("=")[0] in known else [f"`{span}`: no skyplan command takes {head}"]
    elif head not in CLI.commands:
        return []  # a file name, a value: not a command
    cmd, path, rest = _leaf(tokens)
    if not path:
        return [f"`{span}`: no skyplan subcommand {tokens[:1]}"]
    if hasattr(cmd, "commands"):
        return [f"`{span}`: `skyplan {' '.join(path)}` needs a subcommand ({', '.join(cmd.commands)})"]
    bad = [t for t in rest if t.startswith("-") and t.split("=")[0] not in _options(cmd)]
    out = [f"`{span}`: `skyplan {' '.join(path)}` takes no {t}" for t in bad]
    r = runner.invoke(app, [*path, "--help"])
    if r.exit_code != 0:
        out.append(f"`skyplan {' '.join(path)} --help` exited {r.exit_code}")
    return out


def _all_commands():
    stack = [CLI]
    while stack:
        c = stack.pop()
        if hasattr(c, "commands"):
            stack.extend(c.commands.values())
        else:
            yield c


def test_the_scan_finds_the_hints():
    spans = {s for _, s in source_spans()}
    assert "skyplan down {name} --yes" in spans and "skyplan gc --dry-run" in spans
    assert any(s.endswith("-m skyplan.provision.engine install") for s in spans)


def test_every_command_in_a_message_or_hint_works_as_printed():
    found = [f"{where}: {p}" for where, span in source_spans() for p in problems_with(span)]
    assert found == []


def test_the_checker_catches_what_does_not_work():
    assert problems_with("pulumi plugin install resource aws v7.51.1")
    assert problems_with("PULUMI_HOME=/x/pulumi-home pulumi plugin install resource aws v7.51.1")
    assert problems_with("skyplan destroy NAME")
    assert problems_with("skyplan down NAME --force")
    assert problems_with("skyplan sim")
    assert problems_with(f"{sys.executable} -m skyplan.no_such_module install")
    assert problems_with("skyplan down {name} --yes") == []
    assert problems_with("cloud: local") == []


def test_what_doctor_suggests_works_as_printed():
    r = runner.invoke(app, ["doctor"])
    assert r.exit_code == 0, r.output
    spans = SPAN.findall(r.output)
    assert "skyplan plugins install aws" in spans  # the fresh home has no plugin
    assert [p for s in spans for p in problems_with(s)] == []


def test_plugins_install_runs_the_engine_as_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The suggested `skyplan plugins install aws`, run as printed against a stand-in
    engine (no network here): it runs skyplan's engine with skyplan's PULUMI_HOME,
    and afterwards the doctor finds the plugin."""
    from skyplan.provision.engine import PULUMI_VERSION

    engine_bin = tmp_path / "engine" / f"v{PULUMI_VERSION}" / "bin"
    engine_bin.mkdir(parents=True)
    log = tmp_path / "calls.txt"
    fake = engine_bin / "pulumi"
    fake.write_text(f"""#!/bin/sh
if [ "$1" = version ]; then echo v{PULUMI_VERSION}; exit 0; fi
echo "$PULUMI_HOME $*" >> {log}
dir="$PULUMI_HOME/plugins/resource-$4-$5"; mkdir -p "$dir" && touch "$dir/pulumi-resource-$4"
""")
    fake.chmod(0o755)
    monkeypatch.setenv("SKYPLAN_ENGINE_DIR", str(tmp_path / "engine"))
    monkeypatch.delenv("PULUMI_HOME", raising=False)
    home = Path(__import__("os").environ["SKYPLAN_HOME"])
    doctor = runner.invoke(app, ["doctor"]).output
    (command,) = [s for s in SPAN.findall(doctor) if s.endswith(" aws")]
    r = runner.invoke(app, shlex.split(command)[1:])
    assert r.exit_code == 0, r.output
    from skyplan.clouds.plugins import plugin_status

    version = plugin_status("aws", "pulumi-aws").version
    assert log.read_text().split() == [str(home / "pulumi-home"), "plugin", "install", "resource", "aws",
                                       f"v{version}"]
    assert "aws    ok" in runner.invoke(app, ["doctor"]).output or "AWS: no credentials" in \
        runner.invoke(app, ["doctor"]).output  # the plugin is found; credentials are another matter
    again = runner.invoke(app, ["plugins", "install", "aws", "--json"])
    assert again.exit_code == 0 and '"already installed"' in again.stdout
