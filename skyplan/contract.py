"""The JSON output contract: the version of the schema set, and the value rules every
``to_json`` that reaches a user follows.

Every JSON document a command prints (``--json``) is an object that follows
``schemas/<command>.schema.json`` (draft 2020-12; the command path joined by
``-``: ``sim-ledger``), with definitions shared through ``schemas/common.schema.json``.

* Documents carry ``schema_version`` (``SCHEMA_VERSION``, one number for the whole
  set, raised on any incompatible change), first. Event lines (``apply --json``,
  ``logs --json``) carry ``event`` first and ``schema_version`` too. Plan
  documents are plan files and carry their own ``format_version`` instead.
* Counts are integers when they are whole (``"L4": 1``, not ``1.0``); fractional
  GPU shares stay numbers (``0.5``). See ``count``.
* Times are ISO-8601 UTC strings (``2025-05-01T12:00:00Z``). See ``utc_time``.
* Errors are one object, ``{"error": {code, message, hint, exit_code, file, line,
  path}}`` (``SkyplanError.to_json`` gives the inner object).

Later schemas (jobs, serve) follow the same rules: a file per command in
``schemas/``, ``$id`` ``https://skyplan.dev/schemas/<command>.schema.json``, a
``schema_version`` property that ``$ref``s ``common.schema.json#/$defs/schema_version``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

#: The version of the output schema set (``schemas/common.schema.json`` holds the same number).
SCHEMA_VERSION = 1


def count(x: float | int | None) -> float | int | None:
    """A count for JSON: an int when it is whole, else the number as it is (0.5 GPUs)."""
    # Called once per candidate field on large plans: the common cases first, cheaply.
    if type(x) is float:
        return int(x) if x.is_integer() else x
    return x


def utc_time(t: float | datetime | str | None) -> str | None:
    """An epoch time, an aware datetime or an ISO string as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC).
    A string that does not parse is returned as it is (display only)."""
    if t is None:
        return None
    if isinstance(t, str):
        try:
            t = datetime.fromisoformat(t.replace("Z", "+00:00"))
        except ValueError:
            return t
        if t.tzinfo is None:
            t = t.replace(tzinfo=timezone.utc)
    elif not isinstance(t, datetime):
        t = datetime.fromtimestamp(float(t), timezone.utc)
    return t.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def document(**fields: Any) -> dict[str, Any]:
    """A command's JSON document: ``schema_version`` first, then ``fields``."""
    return {"schema_version": SCHEMA_VERSION, **fields}


def event(name: str, **fields: Any) -> dict[str, Any]:
    """One event line: ``event`` first, then ``fields``, then ``schema_version``."""
    return {"event": name, **fields, "schema_version": SCHEMA_VERSION}
