"""Read a spec file and turn its YAML into plain data plus source positions.

``skyplan.spec.bounded`` reads the file and composes the node graph within
the limits of its kind (size, depth, values with aliases expanded); this
module builds the Python values itself so that it can record, for every
mapping key and list item, its line and column, keyed by JSON path. It also
reports what plain ``yaml.safe_load`` would silently accept or crash on:
duplicate keys, non-finite numbers, custom tags (``!!python/...`` is never
constructed). Tasks, sim scenarios and the config file all load through here.

Mapping keys are kept as the text the user wrote (``on:`` stays "on", not
True), so every key is a string.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from skyplan.errors import Diagnostic
from skyplan.spec import bounded
from skyplan.spec.bounded import TASK, Limits

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _Loader = yaml.SafeLoader

#: A JSON path inside one document: str keys and int list indices.
PathT = tuple[Any, ...]

MAX_INT = 2**53

_T = "tag:yaml.org,2002:"
_STR, _NULL, _BOOL, _INT, _FLOAT = _T + "str", _T + "null", _T + "bool", _T + "int", _T + "float"
_TIMESTAMP, _MAP, _SET, _SEQ, _MERGE = _T + "timestamp", _T + "map", _T + "set", _T + "seq", _T + "merge"


@dataclass
class Document:
    """One YAML document: its data, and where each path came from (1-based line, column)."""

    data: Any
    marks: dict[PathT, tuple[int, int]]
    #: Source text of non-string scalars, so `VERSION: 1.10` can stay "1.10" in envs.
    raw: dict[PathT, str] = field(default_factory=dict)

    def locate(self, path: PathT) -> tuple[int | None, int | None]:
        """Position of ``path``, or of its nearest located ancestor."""
        p = tuple(path)
        while True:
            if p in self.marks:
                return self.marks[p]
            if not p:
                return None, None
            p = p[:-1]


def format_path(path: PathT, root: str = "$") -> str:
    """``("resources", "any_of", 0, "cloud")`` -> ``$.resources.any_of[0].cloud``."""
    out = [root]
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
            continue
        if len(part) > 100:  # a path is for reading; a 1 MiB key is shown cut short
            part = part[:97] + "..."
        if part.isidentifier():
            out.append(f".{part}")
        else:
            out.append("['" + escape_text(part.replace("\\", "\\\\").replace("'", "\\'")) + "']")
    return "".join(out)


_CONTROL = "".join(map(chr, [*range(0x00, 0x20), *range(0x7F, 0xA0)]))
_ESCAPES = {ord(c): c.encode("unicode_escape").decode("ascii") for c in _CONTROL}


def escape_text(text: str) -> str:
    """``text`` with control characters written as escapes (``\\x00``), fit for a terminal."""
    return text.translate(_ESCAPES)


def clip(text: str, limit: int = 60) -> str:
    """User text quoted in a message: escaped, and cut short (a key or number may be 1 MiB long)."""
    text = escape_text(text[: limit + 1])
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_text(path: str | Path, filename: str | None = None, limits: Limits = TASK) -> str:
    """Read a spec file as UTF-8 text within ``limits`` (see ``skyplan.spec.bounded``):
    missing, special, oversized, binary or non-UTF-8 files raise SpecError."""
    return bounded.read_text(path, limits, filename)


def parse_documents(text: str, filename: str, limits: Limits = TASK) -> tuple[list[Document], list[Diagnostic]]:
    """Parse every document in ``text``, within ``limits``.

    Malformed YAML, and YAML past a limit (depth, values after expanding
    aliases, an alias inside the node it names), raises SpecError: nothing
    after it can be trusted. Problems inside well-formed YAML (duplicate keys,
    unsupported tags...) come back as diagnostics next to the documents, so
    they can be reported together with schema errors.
    """
    nodes = bounded.compose_yaml(text, filename, limits)
    loader = _Loader("")  # constructs the scalars (ints, floats, bools) of the nodes
    builder = _Builder(filename, limits)
    docs: list[Document] = []
    try:
        for node in nodes:
            builder.begin()
            data = builder.build(loader, node, (), 0)
            docs.append(Document(data, builder.marks, builder.raw))
    finally:
        loader.dispose()
    return docs, builder.diagnostics


class _Builder:
    """Builds Python values from composed nodes, recording positions per path."""

    def __init__(self, filename: str, limits: Limits = TASK) -> None:
        self.filename = filename
        self.max_nodes = limits.max_nodes
        self.max_depth = limits.max_depth
        self.diagnostics: list[Diagnostic] = []
        self.marks: dict[PathT, tuple[int, int]] = {}
        self.raw: dict[PathT, str] = {}
        self.count = 0
        self.active: set[int] = set()

    def begin(self) -> None:
        self.marks, self.raw, self.count, self.active = {}, {}, 0, set()

    def error(self, node: yaml.Node, path: PathT, message: str) -> None:
        m = node.start_mark
        self.diagnostics.append(Diagnostic(self.filename, m.line + 1, m.column + 1, format_path(path), message))

    def build(self, loader: Any, node: yaml.Node, path: PathT, depth: int) -> Any:
        if not path:
            self.marks[()] = (node.start_mark.line + 1, node.start_mark.column + 1)
        # The composer already bounds values and depth; merge keys and aliases
        # can still add a little of both, so the builder keeps its own guard.
        self.count += 1
        if self.count > self.max_nodes:
            if self.count == self.max_nodes + 1:
                self.error(node, path, f"the document is too large (over {self.max_nodes:,} values after expanding aliases)")
            return None
        if depth > self.max_depth:
            self.error(node, path, f"nesting is deeper than {self.max_depth} levels")
            return None
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(loader, node, path)
        if id(node) in self.active:
            self.error(node, path, "a YAML alias refers to a node that contains it")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _SEQ:
                    self.error(node, path, f"unsupported YAML tag {node.tag}")
                    return None
                out = []
                for i, item in enumerate(node.value):
                    self.marks[path + (i,)] = (item.start_mark.line + 1, item.start_mark.column + 1)
                    out.append(self.build(loader, item, path + (i,), depth + 1))
                return out
            if node.tag not in (_MAP, _SET):
                self.error(node, path, f"unsupported YAML tag {node.tag}")
                return None
            return self._mapping(loader, node, path, depth)
        finally:
            self.active.discard(id(node))

    def _mapping(self, loader: Any, node: yaml.MappingNode, path: PathT, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        # YAML merge keys ("<<: *base") first, so explicit keys override them;
        # among several merged mappings the earlier one wins.
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE:
                continue
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for src in sources:
                if not isinstance(src, yaml.MappingNode):
                    self.error(value_node, path, "a merge key ('<<') must refer to a mapping")
                    continue
                # depth + 1: a chain of merges (each mapping merging the one
                # before) must stay within the depth bound, or it would recurse
                # once per link.
                merged = self.build(loader, src, path, depth + 1)
                if isinstance(merged, dict):
                    for key, value in merged.items():
                        out.setdefault(key, value)
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.error(key_node, path, "a mapping key must be a plain name, not a list or mapping")
                continue
            key = key_node.value
            kpath = path + (key,)
            line = key_node.start_mark.line + 1
            if key in first_line:
                self.error(key_node, kpath, f"duplicate key '{clip(key)}' (first given on line {first_line[key]})")
            first_line.setdefault(key, line)
            self.marks[kpath] = (line, key_node.start_mark.column + 1)
            out[key] = self.build(loader, value_node, kpath, depth + 1)
        return out

    def _scalar(self, loader: Any, node: yaml.ScalarNode, path: PathT) -> Any:
        tag = node.tag
        if tag == _STR:
            return node.value
        if tag == _NULL:
            return None
        if tag == _TIMESTAMP:
            return node.value  # a date is just text to a task spec
        if tag not in (_BOOL, _INT, _FLOAT):
            self.error(node, path, f"unsupported YAML tag {clip(tag, 100)}")
            return None
        try:
            value = loader.construct_object(node)
        except (yaml.YAMLError, ValueError, OverflowError):
            self.error(node, path, f"'{clip(node.value)}' is not a valid {tag[len(_T):]}")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.error(node, path, f"'{clip(node.value)}' is not a finite number")
            return None
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            self.error(node, path, f"'{clip(node.value)}' is too large a number")
            return None
        self.raw[path] = node.value
        return value
