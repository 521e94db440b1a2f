"""A yes/no JSON Schema check for the subset of keywords skyplan's schemas use.

Why: importing ``jsonschema`` costs about 55 ms, a sixth of the cold ``plan``
budget, and almost every spec a user plans is valid. This check answers only
"valid or not", with draft 2020-12 semantics for the keywords in ``KEYWORDS``.
When it says "not valid", the loader runs the real ``jsonschema`` validator
to produce the diagnostics, so messages always come from one place.

A property test feeds random documents to both and requires the same verdict;
another test requires every keyword in ``schemas/`` to be in ``KEYWORDS``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

#: Keywords this module evaluates.
ASSERTIONS = frozenset(
    {
        "type", "enum", "properties", "additionalProperties", "required", "items", "minItems",
        "minProperties", "minLength", "minimum", "maximum", "exclusiveMinimum", "pattern", "$ref",
        "anyOf",
    }
)
#: Keywords that assert nothing (annotations and structure).
ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "title", "description", "x-expected", "x-count"})
KEYWORDS = ASSERTIONS | ANNOTATIONS


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _is_type(value: Any, name: str) -> bool:
    if name == "string":
        return isinstance(value, str)
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "null":
        return value is None
    if name == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if name == "number":
        return isinstance(value, (int, float))
    if name == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    return False


def _enum_equal(a: Any, b: Any) -> bool:
    # JSON Schema equality: true is not 1.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _resolve(root: dict[str, Any], ref: str) -> dict[str, Any]:
    if not ref.startswith("#/"):
        raise ValueError(f"fastcheck supports only local $ref, got {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def is_valid(schema: dict[str, Any], instance: Any) -> bool:
    """True when ``instance`` satisfies ``schema`` (the subset in ``KEYWORDS``)."""
    return _valid(schema, instance, schema)


def _valid(s: dict[str, Any], v: Any, root: dict[str, Any]) -> bool:
    ref = s.get("$ref")
    if ref is not None and not _valid(_resolve(root, ref), v, root):
        return False
    any_of = s.get("anyOf")
    if any_of is not None and not any(_valid(sub, v, root) for sub in any_of):
        return False
    t = s.get("type")
    if t is not None:
        if isinstance(t, str):
            if not _is_type(v, t):
                return False
        elif not any(_is_type(v, name) for name in t):
            return False
    enum = s.get("enum")
    if enum is not None and not any(_enum_equal(v, e) for e in enum):
        return False
    if isinstance(v, dict):
        return _valid_object(s, v, root)
    if isinstance(v, list):
        if len(v) < s.get("minItems", 0):
            return False
        items = s.get("items")
        return items is None or all(_valid(items, x, root) for x in v)
    if isinstance(v, str):
        if len(v) < s.get("minLength", 0):
            return False
        pattern = s.get("pattern")
        return pattern is None or _regex(pattern).search(v) is not None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if "minimum" in s and v < s["minimum"]:
            return False
        if "maximum" in s and v > s["maximum"]:
            return False
        if "exclusiveMinimum" in s and v <= s["exclusiveMinimum"]:
            return False
    return True


def _valid_object(s: dict[str, Any], v: dict[str, Any], root: dict[str, Any]) -> bool:
    if len(v) < s.get("minProperties", 0):
        return False
    for key in s.get("required", ()):
        if key not in v:
            return False
    props = s.get("properties", {})
    extra = s.get("additionalProperties", True)
    for key, value in v.items():
        sub = props.get(key)
        if sub is not None:
            if not _valid(sub, value, root):
                return False
        elif extra is False:
            return False
        elif extra is not True and not _valid(extra, value, root):
            return False
    return True
