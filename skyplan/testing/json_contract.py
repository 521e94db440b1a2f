"""Check what a ``skyplan ... --json`` run printed against the output contract.

``check(argv, stdout, exit_code)`` finds the command ``argv`` runs (its path
in the Typer app: ``("sim", "ledger")``), loads ``schemas/<path joined by ->.schema.json``
and returns every way the output breaks the contract (an empty list when it
holds). The test suite calls it for every ``--json`` run it makes (``tests/conftest.py``),
so a new command, or a new field, cannot print JSON that no schema describes.

The contract (``skyplan.contract``):
* stdout holds JSON only: one document, or (schemas marked ``x-stream``) one
  object per line whose last line is the stream's ``last`` event, exactly once
  (or just the error document, when the stream failed before it started and
  its schema does not say ``error_document: false``);
* a document that is ``{"schema_version", "error"}`` follows ``error.schema.json``,
  anything else its command's schema, or ``<command>-<key>.schema.json`` when it
  holds ``key`` at its top and that schema exists (``plan-pipeline``: ``_variant``);
* integers are integers in the JSON text, and ``x-count`` numbers that are whole
  are written as integers (``1``, not ``1.0``);
* an ``exit_code`` in the output (an error object, a summary) is the process's
  exit status.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Iterable, Sequence

#: Exit statuses that may come with an empty stdout: the command line did not
#: parse (click prints its usage on stderr), or a check before any command ran.
_SILENT_EXITS = (2,)


def _strict_integer(checker: Any, instance: Any) -> bool:
    # JSON Schema counts 1.0 as an integer; the JSON text "1.0" is not one.
    return isinstance(instance, int) and not isinstance(instance, bool)


def _x_count(validator: Any, value: Any, instance: Any, schema: Any) -> Iterable[Any]:
    from jsonschema.exceptions import ValidationError

    if value and isinstance(instance, float) and instance.is_integer():
        yield ValidationError(f"{instance!r} is a whole count: it must be written as an integer")


@lru_cache(maxsize=1)
def _validator_class() -> Any:
    from jsonschema import Draft202012Validator, validators

    return validators.extend(Draft202012Validator, validators={"x-count": _x_count},
                             type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer))


@lru_cache(maxsize=1)
def registry() -> Any:
    """Every shipped schema, by its ``$id`` (output schemas ``$ref`` common and plan)."""
    from referencing import Registry, Resource

    from skyplan.spec.schemas import load_schema, output_schema_names

    resources = []
    for name in output_schema_names():
        schema = load_schema(name)
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


@lru_cache(maxsize=None)
def validator(name: str) -> Any:
    from skyplan.spec.schemas import load_schema

    return _validator_class()(load_schema(name), registry=registry())


def schema_name(command: Sequence[str]) -> str:
    return "-".join(command)


def command_path(args: Sequence[str]) -> tuple[str, ...]:
    """The command ``args`` (what follows ``skyplan``) runs, as its path of names."""
    from typer.main import get_command

    from skyplan.cli.main import app

    group: Any = get_command(app)
    path: list[str] = []
    for arg in args:
        if arg.startswith("-"):
            continue
        commands = getattr(group, "commands", None)
        if not commands or arg not in commands:
            break
        path.append(arg)
        group = commands[arg]
    return tuple(path)


def skyplan_args(argv: Sequence[Any]) -> list[str] | None:
    """The arguments after ``skyplan`` when ``argv`` runs skyplan (the console
    script or ``python -m skyplan``), else None."""
    argv = [str(a) for a in argv]
    if not argv:
        return None
    if argv[0].rsplit("/", 1)[-1] in ("bash", "sh") and "-c" in argv[:-1]:
        # ``bash -c "skyplan ..."`` (the README tour's steps): a plain command, whose
        # stdout is skyplan's, once leading VAR=value assignments are set aside.
        import shlex

        script = argv[argv.index("-c") + 1]
        if any(op in script for op in ("|", ">", "<", ";", "&", "$(", "`", "\n")):
            return None
        try:
            words = shlex.split(script, comments=True)
        except ValueError:
            return None
        while words and "=" in words[0] and not words[0].startswith("-"):
            words = words[1:]
        return skyplan_args(words) if words else None
    if argv[0].rsplit("/", 1)[-1] == "skyplan":
        return argv[1:]
    if len(argv) >= 3 and argv[1] == "-m" and argv[2] == "skyplan":
        return argv[3:]
    return None


def documents(stdout: str) -> tuple[list[Any], list[str]]:
    """The JSON documents in ``stdout``: one whole document, else one per line."""
    text = stdout.strip()
    if not text:
        return [], []
    try:
        return [json.loads(text)], []
    except ValueError:
        pass
    docs, problems = [], []
    for i, line in enumerate(stdout.splitlines(), 1):
        if not line.strip():
            continue
        try:
            docs.append(json.loads(line))
        except ValueError:
            problems.append(f"stdout line {i} is not JSON: {line[:120]!r}")
    return docs, problems


def _is_error(doc: Any) -> bool:
    return isinstance(doc, dict) and "error" in doc and "event" not in doc


def _errors(name: str, doc: Any) -> list[str]:
    out = []
    for e in sorted(validator(name).iter_errors(doc), key=lambda e: list(e.absolute_path)):
        where = "$" + "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path)
        out.append(f"{name}.schema.json: {where}: {e.message[:300]}")
    return out


def _variant(name: str, doc: Any) -> str:
    """The schema of one document of command ``name``: ``<name>-<key>`` when the
    document holds ``key`` at its top and that schema exists (``plan`` of a
    pipeline: ``plan-pipeline``, by its ``pipeline`` key), else ``name``'s."""
    from skyplan.spec.schemas import output_schema_names

    if isinstance(doc, dict):
        names = set(output_schema_names())
        for key in doc:
            if f"{name}-{key}" in names:
                return f"{name}-{key}"
    return name


def check(args: Sequence[str], stdout: str, exit_code: int | None) -> list[str]:
    """Every way the output of ``skyplan <args>`` (a ``--json`` run) breaks the contract."""
    from skyplan.spec.schemas import output_schema_names

    if "--json" not in args or "--help" in args or "-h" in args:
        return []
    command = command_path(args)
    name = schema_name(command)
    if not command:
        return []
    if name not in output_schema_names():
        return [f"`skyplan {' '.join(command)} --json` printed JSON, but schemas/{name}.schema.json does not exist"]
    docs, problems = documents(stdout)
    if not docs and not problems:
        if exit_code in _SILENT_EXITS:
            return []
        return [f"`skyplan {' '.join(command)} --json` printed nothing on stdout (exit {exit_code})"]
    from skyplan.spec.schemas import load_schema

    stream = load_schema(name).get("x-stream")
    if stream is None and len(docs) > 1:
        problems.append(f"{len(docs)} JSON documents on stdout, expected one")
    if stream is not None and not (stream.get("error_document", True) and len(docs) == 1 and _is_error(docs[0])):
        # (A stream that failed before it started may be just the error document,
        # unless its schema says errors ride in its last line: apply's summary.)
        last = stream["last"]
        ends = [i for i, d in enumerate(docs) if isinstance(d, dict) and d.get("event") == last]
        if len(ends) != 1 or ends[0] != len(docs) - 1:
            problems.append(f"the stream must end with exactly one `{last}` line; `{last}` at lines "
                            f"{[i + 1 for i in ends]} of {len(docs)}")
    for doc in docs:
        is_error = _is_error(doc)
        problems += _errors("error" if is_error else _variant(name, doc), doc)
        if isinstance(doc, dict):
            code = (doc.get("error") or {}).get("exit_code") if is_error else doc.get("exit_code")
            if code is not None and exit_code is not None and code != exit_code:
                problems.append(f"the output says exit_code {code}, the process exited {exit_code}")
    return problems
