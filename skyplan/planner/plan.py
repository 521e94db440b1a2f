"""The plan: an immutable, versioned value, and its file format.

One layer makes a plan (``make_plan``), one writes and reads it (``write_plan`` /
``read_plan``), and the CLI's views render it. Rendering never feeds back into
apply: ``apply PLANFILE`` executes exactly the candidates stored here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from skyplan.catalog.model import CatalogInfo
from skyplan.contract import utc_time
from skyplan.errors import PlanFileError, StalePlanError
from skyplan.planner.candidates import Candidate, enumerate_candidates
from skyplan.spec.models import Task

#: 2: candidates carry disk_size, ports and labels (from their own any_of /
#: ordered entry). A version-1 file lacks them, and guessing them would
#: provision the wrong disk or ports, so it is refused with a hint to re-plan.
FORMAT_VERSION = 2


@dataclass(frozen=True)
class Plan:
    format_version: int
    created_at: str
    task: Task
    task_sha256: str
    catalog: CatalogInfo
    candidates: tuple[Candidate, ...]
    source: str | None = None  # the task file the plan was made from, if any

    @property
    def chosen(self) -> Candidate:
        return self.candidates[0]

    def to_json(self) -> dict[str, Any]:
        from skyplan import __version__
        from skyplan.spec import task_to_dict

        cands = [c.to_json() for c in self.candidates]
        return {
            "format_version": self.format_version,
            "created_at": self.created_at,
            "skyplan_version": __version__,
            "task": task_to_dict(self.task),
            "task_sha256": self.task_sha256,
            "catalog": {
                "source": self.catalog.source,
                "fetched_at": self.catalog.fetched_at,
                "sha256": self.catalog.sha256,
            },
            "request": {"source": self.source, "num_candidates": len(self.candidates),
                        "candidates_sha256": candidates_sha256(cands)},
            "candidates": cands,
        }


def candidates_sha256(candidates: list[dict]) -> str:
    """Integrity of the ranked candidates: apply executes exactly these, so an
    edited plan file must be refused, not applied."""
    import hashlib

    blob = json.dumps(candidates, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def make_plan(task: Task, catalog, *, now: datetime | None = None, memory: Any = None,
              families: Any = None) -> Plan:
    """Rank every feasible placement for ``task`` against ``catalog``.

    ``memory`` (a ``skyplan.provision.memory.Memory``, optional): placements it
    holds a live capacity or quota failure for are marked (``recent_failure``) and
    ranked after the others of their preference. ``families(candidate)`` gives a
    candidate's quota families for family-scoped records (default: its cloud's).
    """
    from skyplan.spec import task_sha256

    candidates = enumerate_candidates(task, catalog)
    if memory is not None and memory.records:
        from skyplan.provision.memory import cloud_families, rank_recent_failures_last

        candidates = rank_recent_failures_last(candidates, memory, now or datetime.now(timezone.utc),
                                               families or cloud_families)
    created = utc_time(now or datetime.now(timezone.utc))
    return Plan(
        format_version=FORMAT_VERSION,
        created_at=created,
        task=task,
        task_sha256=task_sha256(task),
        catalog=catalog.info,
        candidates=tuple(candidates),
        source=os.path.abspath(task.source) if task.source and os.path.exists(task.source) else None,
    )


def dumps(plan: Plan) -> str:
    """The plan file's text: the header indented, one candidate per line.

    One compact line per candidate keeps a plan readable and diffable, and lets
    the C encoder do the bulk: ``json.dumps(indent=2)`` falls back to the
    pure-Python encoder, which cost more than the whole plan on large catalogs.
    """
    doc = plan.to_json()
    cands = doc.pop("candidates")
    head = json.dumps(doc, indent=2, sort_keys=False)
    if not cands:
        return head[:-2] + ',\n  "candidates": []\n}\n'
    rows = ",\n".join("    " + json.dumps(c, separators=(", ", ": ")) for c in cands)
    return head[:-2] + ',\n  "candidates": [\n' + rows + "\n  ]\n}\n"


def write_plan(plan: Plan, path: str | os.PathLike) -> Path:
    """Write atomically: a crash never leaves half a plan file, and a failed write
    leaves no temporary file. A path that is a directory, or whose directory does
    not exist or cannot be written, is an InputError (exit 2)."""
    from skyplan.errors import InputError

    path = Path(path)
    hint = "give --out a file path in an existing, writable directory"
    if path.is_dir():
        raise InputError(f"cannot write the plan to {path}: it is a directory", hint=hint)
    if not path.parent.is_dir():
        raise InputError(f"cannot write the plan to {path}: directory {path.parent} does not exist", hint=hint)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(dumps(plan), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise InputError(f"cannot write the plan to {path}: {exc.strerror or exc}", hint=hint) from None
    return path


def plan_from_json(doc: Any, filename: str = "<plan>") -> Plan:
    """Rebuild a Plan from its JSON form. Refuses other format versions and
    anything the plan schema rejects."""
    from skyplan.spec import task_from_dict, task_sha256, validate_plan_document

    if not isinstance(doc, dict):
        raise PlanFileError(f"{filename}: not a plan file (expected a JSON object)")
    version = doc.get("format_version")
    if version != FORMAT_VERSION:
        raise PlanFileError(
            f"{filename}: plan format_version {version!r} is not supported (this skyplan reads {FORMAT_VERSION})",
            hint="re-create the plan with `skyplan plan TASK --out FILE` using this version of skyplan",
        )
    _require_integrity_fields(doc, filename)
    req = doc["request"]
    # Before the schema check, which costs about a second on the largest plans:
    # an edited file is refused at the price of one hash.
    if candidates_sha256(doc.get("candidates")) != req["candidates_sha256"]:
        raise StalePlanError(
            f"{filename}: the plan's candidates do not match their candidates_sha256 (the file was edited)",
            hint="re-create the plan with `skyplan plan TASK --out FILE`",
        )
    validate_plan_document(doc, filename)
    task = task_from_dict(doc["task"])
    if task_sha256(task) != doc["task_sha256"]:
        raise StalePlanError(
            f"{filename}: the plan's task does not match its task_sha256 (the file was edited or corrupted)",
            hint="re-create the plan with `skyplan plan TASK --out FILE`",
        )
    cat = doc["catalog"]
    if req["num_candidates"] != len(doc["candidates"]):
        raise StalePlanError(
            f"{filename}: the plan lists {len(doc['candidates'])} candidates, but its request says "
            f"{req['num_candidates']} (the file was edited)",
            hint="re-create the plan with `skyplan plan TASK --out FILE`",
        )
    return Plan(
        format_version=version,
        created_at=doc["created_at"],
        task=task,
        task_sha256=doc["task_sha256"],
        catalog=CatalogInfo(source=cat["source"], fetched_at=cat["fetched_at"], sha256=cat["sha256"]),
        candidates=tuple(Candidate.from_json(c) for c in doc["candidates"]),
        source=req.get("source"),
    )


#: Integrity fields: each must be present and hold a sha256, or the plan is refused.
#: A plan whose hash was deleted (or set to null) is as untrustworthy as one whose
#: hash does not match, so both fail the same way (StalePlanError, exit 2).
INTEGRITY_FIELDS = (("task_sha256",), ("request", "candidates_sha256"), ("catalog", "sha256"))


def _require_integrity_fields(doc: dict, filename: str) -> None:
    import re

    for path in INTEGRITY_FIELDS:
        value: Any = doc
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if not (isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value)):
            field = ".".join(path)
            got = "is missing" if value is None else "is not a sha256 digest"
            raise StalePlanError(
                f"{filename}: the plan's {field} {got}, so the plan cannot be verified and is refused",
                hint="re-create the plan with `skyplan plan TASK --out FILE`; plan files are not meant to be edited",
            )


def read_plan(path: str | os.PathLike) -> Plan:
    """Read a plan file through the bounded JSON loader (regular file, at most
    8 MiB, depth and value limits, no duplicate keys), then ``plan_from_json``."""
    from skyplan.errors import SpecError
    from skyplan.spec import bounded

    path = Path(path)
    try:
        doc = bounded.load_json_file(path, bounded.PLAN)
    except SpecError as exc:
        d = exc.diagnostics[0]
        loc = d.file + "".join(f":{n}" for n in (d.line, d.column) if n is not None)
        raise PlanFileError(
            f"{loc}: {d.message}",
            hint="give a plan file written by `skyplan plan TASK --out FILE`",
        ) from None
    return plan_from_json(doc, str(path))


def bind_secrets(plan: Plan, values: Any = None) -> Plan:
    """A plan read from a file, with values for its task's secrets (a plan file
    holds their names only): those the task file it was made from holds, when
    that file is still there (``check_fresh`` has made sure it holds the same
    task), then ``values`` (``--secret``, by name) over them. A name the plan
    does not have is refused: the plan is applied as it was made. Secrets still
    without a value are left for ``launch`` to refuse."""
    if not plan.task.secrets and not values:
        return plan
    import dataclasses

    from skyplan.spec import secrets

    given: dict[str, Any] = {}
    if plan.source and os.path.exists(plan.source):
        from skyplan.spec import load_task

        names = {name for name, _ in plan.task.secrets}
        given = {k: v for k, v in load_task(plan.source).secrets if v is not None and k in names}
    given.update(values or {})
    return dataclasses.replace(plan, task=secrets.with_values(plan.task, given, add=False))


def check_fresh(plan: Plan, catalog_info: CatalogInfo, filename: str = "<plan>") -> None:
    """Raise StalePlanError if the catalog changed, or the task file it was made
    from now holds a different task."""
    if plan.catalog.sha256 != catalog_info.sha256:
        raise StalePlanError(
            f"{filename}: stale plan: it was made from catalog {plan.catalog.fetched_at} "
            f"(sha256 {plan.catalog.sha256[:12]}), the current catalog is {catalog_info.fetched_at} "
            f"(sha256 {catalog_info.sha256[:12]})",
            hint="re-run `skyplan plan TASK --out FILE` and apply the new plan",
        )
    if plan.source and os.path.exists(plan.source):
        from skyplan.spec import load_task, task_sha256

        try:
            current = task_sha256(load_task(plan.source))
        except Exception:  # a now-invalid task file is also a change
            current = None
        if current != plan.task_sha256:
            raise StalePlanError(
                f"{filename}: stale plan: {plan.source} has changed since the plan was made",
                hint="re-run `skyplan plan TASK --out FILE` and apply the new plan",
            )
