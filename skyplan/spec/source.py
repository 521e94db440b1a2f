"""Read a spec file and turn its YAML into plain data plus source positions.

PyYAML composes the node graph (libyaml's C parser when available); this
module builds the Python values itself so that it can record, for every
mapping key and list item, its line and column, keyed by JSON path. It also
reports what plain ``yaml.safe_load`` would silently accept or crash on:
duplicate keys, self-referencing aliases, very deep nesting, alias bombs,
non-finite numbers, custom tags.

Mapping keys are kept as the text the user wrote (``on:`` stays "on", not
True), so every key is a string.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from skyplan.errors import Diagnostic, SpecError

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _Loader = yaml.SafeLoader

#: A JSON path inside one document: str keys and int list indices.
PathT = tuple[Any, ...]

MAX_DEPTH = 48
MAX_NODES = 100_000
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
        elif part.isidentifier():
            out.append(f".{part}")
        else:
            out.append("['" + part.replace("\\", "\\\\").replace("'", "\\'") + "']")
    return "".join(out)


def read_text(path: str | Path, filename: str | None = None) -> str:
    """Read a spec file as UTF-8 text; missing, unreadable, binary or non-UTF-8 files raise SpecError."""
    name = filename or str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise _fail(name, None, "file not found") from None
    except IsADirectoryError:
        raise _fail(name, None, "is a directory, not a YAML file") from None
    except OSError as exc:
        raise _fail(name, None, f"cannot read the file: {exc.strerror or exc}") from None
    if b"\x00" in data:
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        raise _fail(name, line, "this is a binary file, not YAML text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _fail(name, line, f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None


def parse_documents(text: str, filename: str) -> tuple[list[Document], list[Diagnostic]]:
    """Parse every document in ``text``.

    Malformed YAML raises SpecError (nothing after a syntax error can be
    trusted). Problems inside well-formed YAML (duplicate keys, unsupported
    tags...) come back as diagnostics next to the documents, so they can be
    reported together with schema errors.
    """
    loader = _Loader(text)
    builder = _Builder(filename)
    docs: list[Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            builder.begin()
            data = builder.build(loader, node, (), 0)
            docs.append(Document(data, builder.marks, builder.raw))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        raise SpecError([Diagnostic(filename, line, col, "$", _yaml_message(exc))]) from None
    except yaml.YAMLError as exc:  # ReaderError: a character YAML does not allow
        line = _reader_line(text, exc)
        raise SpecError([Diagnostic(filename, line, None, "$", f"invalid YAML: {_one_line(str(exc))}")]) from None
    except UnicodeError as exc:  # e.g. lone surrogates in a str handed to load_text
        raise SpecError([Diagnostic(filename, None, None, "$", f"invalid text: {exc.reason}")]) from None
    finally:
        loader.dispose()
    return docs, builder.diagnostics


def _yaml_message(exc: yaml.MarkedYAMLError) -> str:
    parts = [p for p in (exc.problem, exc.context) if p]
    text = "; ".join(dict.fromkeys(_one_line(p) for p in parts)) or "malformed document"
    return f"invalid YAML: {text}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _reader_line(text: str, exc: yaml.YAMLError) -> int | None:
    pos = getattr(exc, "position", None)
    if isinstance(pos, int) and 0 <= pos <= len(text):
        return text.count("\n", 0, pos) + 1
    return None


def _fail(filename: str, line: int | None, message: str) -> SpecError:
    return SpecError([Diagnostic(filename, line, None, "$", message)])


class _Builder:
    """Builds Python values from composed nodes, recording positions per path."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
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
        self.count += 1
        if self.count > MAX_NODES:
            if self.count == MAX_NODES + 1:
                self.error(node, path, f"the document is too large (over {MAX_NODES} values after expanding aliases)")
            return None
        if depth > MAX_DEPTH:
            self.error(node, path, f"nesting is deeper than {MAX_DEPTH} levels")
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
                merged = self.build(loader, src, path, depth)
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
                self.error(key_node, kpath, f"duplicate key '{key}' (first given on line {first_line[key]})")
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
            self.error(node, path, f"unsupported YAML tag {tag}")
            return None
        try:
            value = loader.construct_object(node)
        except (yaml.YAMLError, ValueError, OverflowError):
            self.error(node, path, f"'{node.value}' is not a valid {tag[len(_T):]}")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.error(node, path, f"'{node.value}' is not a finite number")
            return None
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            self.error(node, path, f"'{node.value}' is too large a number")
            return None
        self.raw[path] = node.value
        return value
