"""Load task and pipeline YAML: parse, validate everything, then build frozen models.

Every problem in a file is collected before anything is raised: YAML-level
findings (duplicate keys...), schema errors and semantic rules, each located
by line, column and JSON path. A file with any finding raises one SpecError
holding all of them, sorted by position.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from skyplan.errors import MAX_ERRORS, Diagnostic, InputError, PlanFileError, SpecError
from skyplan.spec import semantic
from skyplan.spec.build import build_task
from skyplan.spec.models import Pipeline, Task
from skyplan.spec.source import Document, format_path, parse_documents, read_text
from skyplan.spec.validate import plan_diagnostics, schema_diagnostics

if TYPE_CHECKING:
    from skyplan.catalog.loader import Catalog

_TYPE_NAMES = {
    dict: "a mapping", list: "a list", str: "a string", bool: "true/false", int: "a number", float: "a number"
}
_NOT_A_TASK = "expected a task (a mapping of fields)"


def load(path: str | Path, *, catalog: Catalog | None = None) -> Task | Pipeline:
    """Load a task, or a pipeline (several documents, the first holding only ``name``).

    With ``catalog`` (the one the caller plans with), what the task names must
    also exist: clouds, regions, zones, instance types and accelerators at their
    counts in that catalog (``skyplan.spec.known``), and the ``workdir`` and local
    ``file_mounts`` sources on disk, relative to the file. The CLI always passes it.
    """
    return load_text(read_text(path), filename=str(path), catalog=catalog)


def load_task(path: str | Path, *, catalog: Catalog | None = None) -> Task:
    """Load a single task. A pipeline file raises InputError."""
    result = load(path, catalog=catalog)
    if isinstance(result, Pipeline):
        raise InputError(
            f"{path} is a pipeline of {len(result.tasks)} tasks, not a single task",
            hint="plan one task at a time, or split the pipeline into one file per task",
        )
    return result


def load_text(text: str, filename: str = "<string>", *, catalog: Catalog | None = None) -> Task | Pipeline:
    """Like ``load``, from text already in memory. ``filename`` is used in messages,
    and its directory is where relative paths start (with ``catalog``)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    docs, diagnostics = parse_documents(text, filename)
    while len(docs) > 1 and docs[-1].data is None:
        docs.pop()  # a trailing '---' opens an empty document; harmless
    if not docs or (len(docs) == 1 and docs[0].data is None):
        raise SpecError([Diagnostic(filename, None, None, "$", f"the file is empty; {_NOT_A_TASK}")])

    header: Document | None = None
    if len(docs) > 1 and isinstance(docs[0].data, dict) and set(docs[0].data) <= {"name"} and docs[0].data:
        header, docs = docs[0], docs[1:]
        diagnostics = _merge(diagnostics, schema_diagnostics("pipeline", header, filename))
    for doc in docs:
        diagnostics = _merge(diagnostics, _task_diagnostics(doc, filename, catalog))
    if diagnostics:
        raise SpecError(sorted(diagnostics, key=_position))

    tasks = tuple(build_task(doc.data, doc.raw, filename) for doc in docs)
    if header is None and len(tasks) == 1:
        return tasks[0]
    name = header.data.get("name") if header is not None else None
    return Pipeline(name=name, tasks=tasks, source=filename)


def _task_diagnostics(doc: Document, filename: str, catalog: Catalog | None = None) -> list[Diagnostic]:
    if doc.data is None:
        line, col = doc.locate(())
        return [Diagnostic(filename, line, col, "$", f"this document is empty; {_NOT_A_TASK}")]
    if not isinstance(doc.data, dict):
        line, col = doc.locate(())
        got = _TYPE_NAMES.get(type(doc.data), "a value")
        return [Diagnostic(filename, line, col, "$", f"{_NOT_A_TASK} at the top level, got {got}")]
    _normalise_case(doc.data)
    found = schema_diagnostics("task", doc, filename)
    rules = []
    findings = semantic.check_task(doc.data)
    if catalog is not None:
        from skyplan.catalog.names import known_names
        from skyplan.spec import known

        findings += known.check_names(doc.data, known_names(catalog))
        findings += known.check_files(doc.data, os.path.dirname(os.path.abspath(filename)))
    for path, message, suggestion in findings:
        line, col = doc.locate(path)
        rules.append(Diagnostic(filename, line, col, format_path(path), message, suggestion))
    return _merge(found, rules)


def _normalise_case(data: dict[str, Any]) -> None:
    """Cloud names and mount modes are case-insensitive: `cloud: AWS` and `mode: mount` are fine."""
    res = data.get("resources")
    if isinstance(res, dict):
        spots = [res] + [e for k in ("any_of", "ordered") if isinstance(res.get(k), list) for e in res[k]]
        for spot in spots:
            if isinstance(spot, dict) and isinstance(spot.get("cloud"), str):
                spot["cloud"] = spot["cloud"].lower()
    mounts = data.get("file_mounts")
    if isinstance(mounts, dict):
        for spec in mounts.values():
            if isinstance(spec, dict) and isinstance(spec.get("mode"), str):
                spec["mode"] = spec["mode"].upper()


def _merge(earlier: list[Diagnostic], later: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Add ``later`` findings, except at a spot an earlier stage already reported."""
    seen = {(d.line, d.path) for d in earlier}
    return list(earlier) + [d for d in later if (d.line, d.path) not in seen]


def _position(d: Diagnostic) -> tuple[int, int, str]:
    return (d.line if d.line is not None else 0, d.column or 0, d.path)


def validate_paths(paths: Iterable[str | Path], *, catalog: Catalog | None = None) -> list[Diagnostic]:
    """Every finding for every file (at most MAX_ERRORS per file); an empty list
    means all are valid. Never raises for bad content. ``catalog``: as for ``load``."""
    return validate_report(paths, catalog=catalog)[0]


def validate_report(paths: Iterable[str | Path], limit: int = MAX_ERRORS, *,
                    catalog: Catalog | None = None) -> tuple[list[Diagnostic], int]:
    """The first ``limit`` findings over all ``paths``, and how many more there are."""
    out: list[Diagnostic] = []
    omitted = 0
    for path in paths:
        try:
            load(path, catalog=catalog)
        except SpecError as exc:
            out.extend(exc.diagnostics)
            omitted += exc.omitted
        except InputError as exc:
            out.append(Diagnostic(str(path), None, None, "$", exc.message))
    if len(out) > limit:
        omitted += len(out) - limit
        out = out[:limit]
    return out, omitted


def validate_plan_document(doc: Any, filename: str) -> None:
    """Check a parsed plan file against ``schemas/plan.schema.json``; raise PlanFileError listing every problem."""
    from skyplan.spec.serialize import task_from_dict

    found = plan_diagnostics(doc, filename)
    if isinstance(doc, dict):
        created = doc.get("created_at")
        if isinstance(created, str) and created and not _is_iso(created):
            found.append(Diagnostic(filename, None, None, "$.created_at", f"'{created}' is not an ISO 8601 timestamp"))
        fetched = (doc.get("catalog") or {}).get("fetched_at") if isinstance(doc.get("catalog"), dict) else None
        if isinstance(fetched, str) and fetched and not _is_iso(fetched):
            found.append(
                Diagnostic(filename, None, None, "$.catalog.fetched_at", f"'{fetched}' is not an ISO 8601 date")
            )
        if isinstance(doc.get("task"), dict):
            # A plan is made from a validated task, so this only catches an edited file.
            for path, message, _ in semantic.control_characters(doc["task"], ("task",)):
                found.append(Diagnostic(filename, None, None, format_path(path), message))
            try:
                task_from_dict(doc["task"])
            except InputError as exc:
                found.append(Diagnostic(filename, None, None, "$.task", exc.message))
    if found:
        n = len(found)
        lines = "\n".join(f"  {d.path}: {d.message}" for d in found)
        err = PlanFileError(
            f"{filename} is not a valid plan file ({n} problem{'s' if n != 1 else ''}):\n{lines}",
            hint="re-create it with `skyplan plan TASK.yaml --out PLAN.json`",
        )
        err.diagnostics = found  # type: ignore[attr-defined]  # for JSON output
        raise err


def _is_iso(text: str) -> bool:
    from datetime import datetime

    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True
