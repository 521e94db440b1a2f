"""Schema validation that reports every error as a located, plain-language Diagnostic.

``jsonschema`` is imported only when a document fails the quick check in
``fastcheck`` (or when the caller insists), and each validator is built once.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any, Iterable

from skyplan.errors import Diagnostic
from skyplan.spec import fastcheck
from skyplan.spec.schemas import load_schema
from skyplan.spec.source import Document, PathT, clip, format_path

if TYPE_CHECKING:
    from jsonschema import ValidationError

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
}


@lru_cache(maxsize=None)
def _validator(name: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_schema(name))


def is_valid(name: str, data: Any) -> bool:
    """Quick yes/no against schema ``name``, without importing jsonschema."""
    return fastcheck.is_valid(load_schema(name), data)


def schema_diagnostics(name: str, doc: Document, filename: str, *, quick: bool = True) -> list[Diagnostic]:
    """Every schema error in ``doc`` against schema ``name``, located in ``filename``."""
    if quick and is_valid(name, doc.data):
        return []
    out: list[Diagnostic] = []
    for error in _validator(name).iter_errors(doc.data):
        for path, message, suggestion in describe(error):
            line, col = doc.locate(path)
            out.append(Diagnostic(filename, line, col, format_path(path), message, suggestion))
    return out


def describe(error: ValidationError) -> Iterable[tuple[PathT, str, str | None]]:
    """Turn one jsonschema error into (path, message, suggestion) findings."""
    path: PathT = tuple(error.absolute_path)
    kw = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    inst = error.instance
    if kw == "additionalProperties" and isinstance(inst, dict):
        allowed = list(schema.get("properties", {}))
        for key in inst:
            if key not in allowed:
                yield path + (key,), *_unknown_key(key, allowed, path)
        return
    if kw == "required" and isinstance(inst, dict):
        for key in error.validator_value:
            if key not in inst:
                yield path, f"missing required field '{key}'", None
        return
    if kw == "type":
        yield path, f"expected {_expected(schema)}, got {_show(inst)}", None
        return
    if kw == "enum":
        options = [o for o in error.validator_value if o is not None]
        text = ", ".join(str(o) for o in options)
        suggestion = _closest(str(inst), [str(o) for o in options]) if isinstance(inst, str) else None
        yield path, f"{_show(inst)} is not allowed here; use one of: {text}", suggestion
        return
    bound = error.validator_value
    if kw == "minimum":
        yield path, f"must be at least {bound}, got {_show(inst)}", None
    elif kw == "maximum":
        yield path, f"must be at most {bound}, got {_show(inst)}", None
    elif kw == "exclusiveMinimum":
        yield path, f"must be greater than {bound}, got {_show(inst)}", None
    elif kw in ("minItems", "minProperties", "minLength"):
        yield path, "must not be empty", None
    elif kw == "pattern":
        yield path, f"expected {_expected(schema)}, got {_show(inst)}", None
    else:  # a keyword added to a schema later; jsonschema's own words are still accurate
        yield path, error.message, None


def _unknown_key(key: str, allowed: list[str], path: PathT) -> tuple[str, str | None]:
    suggestion = _closest(key, allowed)
    if not path and suggestion is None and key in _resource_fields():
        return f"unknown field '{clip(key)}'; it belongs under 'resources'", None
    where = f" in '{path[-1]}'" if path and isinstance(path[-1], str) else ""
    return f"unknown field '{clip(key)}'{where}", suggestion


@lru_cache(maxsize=1)
def _resource_fields() -> frozenset[str]:
    return frozenset(load_schema("task")["$defs"]["resources"]["properties"])


def _closest(word: str, options: list[str]) -> str | None:
    """The allowed word the user most likely meant (case-insensitive), if any is close."""
    import difflib

    lowered = {o.lower(): o for o in options}
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    if match:
        return lowered[match[0]]
    # an abbreviation such as "acc" is too short for difflib but unambiguous
    prefixed = [o for low, o in lowered.items() if len(word) >= 3 and low.startswith(word.lower())]
    return prefixed[0] if len(prefixed) == 1 else None


def _expected(schema: dict[str, Any]) -> str:
    if "x-expected" in schema:
        return str(schema["x-expected"])
    types = schema.get("type", [])
    names = [types] if isinstance(types, str) else list(types)
    words = [_TYPE_WORDS[t] for t in names if t in _TYPE_WORDS]
    if not words:
        return "a different value"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _show(value: Any) -> str:
    """A short, plain description of a value for messages."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"{value}"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return repr(text)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def plan_diagnostics(doc: Any, filename: str) -> list[Diagnostic]:
    """Every schema error in a plan document (already-parsed JSON, so no line numbers)."""
    if is_valid("plan", doc):
        return []
    out = []
    for error in _validator("plan").iter_errors(doc):
        for path, message, suggestion in describe(error):
            out.append(Diagnostic(filename, None, None, format_path(path), message, suggestion))
    return out
