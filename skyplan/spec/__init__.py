"""Task specs: load YAML, validate it against ``schemas/``, build frozen models.

Public API (everything else in this package is internal):

* ``load(path) -> Task | Pipeline`` and ``load_text(text, filename)``: a file
  with several YAML documents whose first holds only ``name`` is a Pipeline.
* ``load_task(path) -> Task``: InputError if the file is a pipeline.
* ``validate_paths(paths) -> list[Diagnostic]``: all findings (at most 50
  per file), never raises for bad content; ``validate_report`` also counts
  the findings left out.
* ``task_to_dict`` / ``task_from_dict`` / ``task_sha256``: the normalised task
  stored in (and hashed for) a plan file.
* ``validate_plan_document(doc, filename)``: PlanFileError listing every
  schema problem in a plan file.

Any invalid input raises a subclass of InputError (exit code 2); a SpecError
carries one Diagnostic per problem with file, line, column and JSON path (the
first 50, and a count of the rest). Every file is read through
``skyplan.spec.bounded``: size, nesting and alias expansion are limited.
Importing this package does not import jsonschema: it is loaded only when a
document fails the quick check and diagnostics must be produced.
"""

from __future__ import annotations

from skyplan.spec.loader import load, load_task, load_text, validate_paths, validate_plan_document, validate_report
from skyplan.spec.models import (
    Accelerator,
    FileMount,
    Pipeline,
    Preference,
    Quantity,
    ReadinessProbe,
    ReplicaPolicy,
    ResourceRequest,
    Resources,
    Service,
    Task,
)
from skyplan.spec.serialize import task_from_dict, task_sha256, task_to_dict

__all__ = [
    "Accelerator",
    "FileMount",
    "Pipeline",
    "Preference",
    "Quantity",
    "ReadinessProbe",
    "ReplicaPolicy",
    "ResourceRequest",
    "Resources",
    "Service",
    "Task",
    "load",
    "load_task",
    "load_text",
    "task_from_dict",
    "task_sha256",
    "task_to_dict",
    "validate_paths",
    "validate_report",
    "validate_plan_document",
]
