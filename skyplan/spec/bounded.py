"""Bounded reading of every YAML and JSON file skyplan reads.

Tasks, sim scenarios, plan files and the config file all come through here, so
one set of rules protects every entry point from hostile or broken input:

* the path must be a regular file (a FIFO, ``/dev/zero``, ``/dev/urandom``, a
  socket or a directory is refused before anything is read), and its size must
  be within the kind's limit; at most ``limit + 1`` bytes are ever read, so a
  file that grows, or a size that lies, cannot make skyplan read more;
* YAML is composed by ``compose_yaml``, which counts nesting depth and values
  *while* composing, with every alias counted at its full expanded size: a
  billion-laughs bomb is refused after a few hundred events instead of being
  expanded, and an alias inside the node it names is refused as it is seen;
* JSON is pre-scanned at C speed for nesting depth and the number of values
  before ``json`` (whose decoder recurses) sees it; duplicate keys and
  non-finite numbers are refused;
* every refusal is a SpecError (an InputError: exit code 2) with a location and
  a plain message; ``SpecError`` keeps at most ``MAX_ERRORS`` findings and
  counts the rest.

``Limits`` holds the figures per kind of file; the README lists them.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from typing import Any

from skyplan.errors import MAX_ERRORS, Diagnostic, SpecError

__all__ = [
    "CONFIG",
    "Limits",
    "MAX_ERRORS",
    "PLAN",
    "SCENARIO",
    "TASK",
    "check_size",
    "compose_yaml",
    "decode_text",
    "is_regular_file",
    "load_json",
    "load_json_file",
    "read_bytes",
    "read_head",
    "read_text",
]

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class Limits:
    """How much of one kind of file skyplan agrees to read."""

    what: str  # "task", "plan"... used in messages: "not a {what} file"
    max_bytes: int
    max_depth: int  # nested mappings/lists (YAML) or objects/arrays (JSON)
    max_nodes: int  # values, counting every alias at its expanded size


# A task is hand-written text: 1 MiB is far beyond any real one (the largest
# example is under 2 KiB) and keeps a refused file cheap to refuse.
TASK = Limits("task", 1 * MiB, 48, 100_000)
SCENARIO = Limits("sim scenario", 1 * MiB, 32, 100_000)
# Plans are machine-written: about 300 bytes and 12 values per candidate, so
# 8 MiB holds some 25,000 candidates (the embedded catalog has 13,338 offers)
# while parsing the largest accepted file stays near 100 MB of memory.
PLAN = Limits("plan", 8 * MiB, 32, 500_000)
CONFIG = Limits("config", 256 * KiB, 32, 10_000)
# Catalogs are machine-written JSON; the embedded one is about 0.4 MiB.
CATALOG = Limits("catalog", 64 * MiB, 16, 0)


# --- files ------------------------------------------------------------------------


def _size_text(n: int) -> str:
    if n >= MiB and n % MiB == 0:
        return f"{n // MiB} MiB"
    if n >= KiB and n % KiB == 0:
        return f"{n // KiB} KiB"
    return f"{n:,} bytes"


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _fail(filename: str, line: int | None, message: str, column: int | None = None) -> SpecError:
    return SpecError([Diagnostic(filename, line, column, "$", message)])


def is_regular_file(path: str | os.PathLike[str]) -> bool:
    """True for a regular file (after following symlinks); never opens it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def check_size(size: int, limits: Limits, filename: str) -> None:
    """Refuse ``size`` bytes if it is over the limit for this kind of file."""
    if size > limits.max_bytes:
        raise _fail(
            filename, None,
            f"the file is too large for a {limits.what}: over {_size_text(limits.max_bytes)} "
            f"({size:,} bytes or more)",
        )


def read_bytes(path: str | os.PathLike[str], limits: Limits, filename: str | None = None) -> bytes:
    """The bytes of ``path``, refusing anything but a regular file within ``limits.max_bytes``.

    The file is stat'ed before it is opened (opening a FIFO would block), then
    checked again on the open descriptor, and read in chunks up to one byte
    past the limit whatever its size claims.
    """
    name = filename or str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise _fail(name, None, "file not found") from None
    except (OSError, ValueError) as exc:
        raise _fail(name, None, f"cannot read the file: {getattr(exc, 'strerror', None) or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise _fail(name, None, f"is {_kind(st.st_mode)}, not a {limits.what} file")
    check_size(st.st_size, limits, name)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise _fail(name, None, f"cannot read the file: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # replaced between the two looks
            raise _fail(name, None, f"is {_kind(st.st_mode)}, not a {limits.what} file")
        chunks: list[bytes] = []
        left = limits.max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 * MiB))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise _fail(name, None, f"cannot read the file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    check_size(len(data), limits, name)
    return data


def read_head(path: str | os.PathLike[str], n: int = 4096) -> bytes:
    """The first ``n`` bytes of a regular file, or b"" for anything else (for sniffing)."""
    if not is_regular_file(path):
        return b""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return b""
    try:
        return os.read(fd, n) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
    except OSError:
        return b""
    finally:
        os.close(fd)


def decode_text(data: bytes, filename: str, what: str = "YAML") -> str:
    """UTF-8 text (a BOM is dropped); NUL bytes or invalid UTF-8 raise SpecError."""
    if b"\x00" in data:
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        raise _fail(filename, line, f"this is a binary file (it holds NUL bytes), not {what} text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _fail(
            filename, line, f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None


def read_text(path: str | os.PathLike[str], limits: Limits, filename: str | None = None, what: str = "YAML") -> str:
    """``read_bytes`` then ``decode_text``."""
    name = filename or str(path)
    return decode_text(read_bytes(path, limits, name), name, what)


# --- YAML -------------------------------------------------------------------------

try:
    import yaml as _yaml

    _Loader: Any = getattr(_yaml, "CSafeLoader", _yaml.SafeLoader)
except ImportError:  # pragma: no cover - PyYAML is a dependency
    _yaml = None  # type: ignore[assignment]


class _Composer:
    """Builds PyYAML node graphs from the parser's events, without recursion.

    PyYAML's own composers recurse per nesting level and know nothing of
    aliases' cost; this one keeps an explicit stack and a running count of
    values with aliases expanded, and stops at the first limit crossed.
    """

    def __init__(self, loader: Any, filename: str, limits: Limits) -> None:
        self.loader = loader
        self.filename = filename
        self.limits = limits
        self.total = 0  # values so far in the whole file, aliases expanded

    def _refuse(self, mark: Any, message: str) -> SpecError:
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        return _fail(self.filename, line, message, col)

    def _too_many(self, mark: Any) -> SpecError:
        return self._refuse(
            mark, f"the document is too large (over {self.limits.max_nodes:,} values after expanding aliases)"
        )

    def document(self) -> Any:
        """Compose one document (its start event already taken); return its root node."""
        y = _yaml
        get_event, resolve = self.loader.get_event, self.loader.resolve
        Scalar, Alias, SeqStart, MapStart = y.ScalarEvent, y.AliasEvent, y.SequenceStartEvent, y.MappingStartEvent
        ScalarNode, SequenceNode, MappingNode = y.ScalarNode, y.SequenceNode, y.MappingNode
        max_nodes, max_depth = self.limits.max_nodes, self.limits.max_depth
        anchors: dict[str, Any] = {}
        sizes: dict[int, int] = {}  # id(anchored node) -> expanded size, once complete
        # One frame per open collection: [node, expanded size so far, pending key, anchor, is a sequence]
        stack: list[list[Any]] = []
        total = self.total
        try:
            while True:
                event = get_event()
                kind = type(event)
                if kind is Scalar:
                    tag = event.tag
                    if tag is None or tag == "!":
                        tag = resolve(ScalarNode, event.value, event.implicit)
                    node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
                    if event.anchor is not None:
                        anchors[event.anchor] = node
                        sizes[id(node)] = 1
                    size = 1
                    total += 1
                    if total > max_nodes:
                        raise self._too_many(event.start_mark)
                elif kind is SeqStart or kind is MapStart:
                    if len(stack) >= max_depth:
                        raise self._refuse(event.start_mark, f"nesting is deeper than {max_depth} levels")
                    is_seq = kind is SeqStart
                    node_cls = SequenceNode if is_seq else MappingNode
                    tag = event.tag
                    if tag is None or tag == "!":
                        tag = resolve(node_cls, None, event.implicit)
                    node = node_cls(tag, [], event.start_mark, None, flow_style=event.flow_style)
                    if event.anchor is not None:
                        anchors[event.anchor] = node  # open: no size yet
                    total += 1
                    if total > max_nodes:
                        raise self._too_many(event.start_mark)
                    stack.append([node, 1, None, event.anchor, is_seq])
                    continue
                elif kind is Alias:
                    node = anchors.get(event.anchor)
                    if node is None:
                        raise self._refuse(event.start_mark,
                                           f"the alias '*{event.anchor}' names no anchor defined before it")
                    size = sizes.get(id(node), 0)
                    if size == 0:  # its node is still open: the alias is inside what it names
                        raise self._refuse(event.start_mark, "a YAML alias refers to a node that contains it")
                    total += size
                    if total > max_nodes:
                        raise self._too_many(event.start_mark)
                else:  # the end of a sequence or mapping: the parser guarantees the order
                    node, size, _, anchor, _ = stack.pop()
                    node.end_mark = event.end_mark
                    if anchor is not None and anchors.get(anchor) is node:
                        sizes[id(node)] = size
                if not stack:
                    return node
                parent = stack[-1]
                parent[1] += size
                if parent[4]:
                    parent[0].value.append(node)
                elif parent[2] is None:
                    parent[2] = node
                else:
                    parent[0].value.append((parent[2], node))
                    parent[2] = None
        finally:
            self.total = total


def compose_yaml(text: str, filename: str, limits: Limits) -> list[Any]:
    """Compose every document of ``text`` into PyYAML nodes, within ``limits``.

    The value count is for the whole file. Malformed YAML and crossed limits
    raise SpecError; tags are left for the caller to judge (nothing is
    constructed here, so ``!!python/...`` never runs).
    """
    y = _yaml
    check_size(len(text), limits, filename)  # text handed in directly, not read from a file
    loader = _Loader(text)
    composer = _Composer(loader, filename, limits)
    docs: list[Any] = []
    try:
        loader.get_event()  # stream start
        while not loader.check_event(y.StreamEndEvent):
            loader.get_event()  # document start
            docs.append(composer.document())
            loader.get_event()  # document end
        loader.get_event()
    except y.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        raise _fail(filename, line, _yaml_message(exc), col) from None
    except y.YAMLError as exc:  # ReaderError: a character YAML does not allow
        raise _fail(filename, _reader_line(text, exc), f"invalid YAML: {_one_line(str(exc))}") from None
    except UnicodeError as exc:  # e.g. lone surrogates in a str handed in directly
        raise _fail(filename, None, f"invalid text: {exc.reason}") from None
    finally:
        loader.dispose()
    return docs


def _yaml_message(exc: Any) -> str:
    parts = [p for p in (exc.problem, exc.context) if p]
    text = "; ".join(dict.fromkeys(_one_line(p) for p in parts)) or "malformed document"
    return f"invalid YAML: {text}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _reader_line(text: str, exc: Any) -> int | None:
    pos = getattr(exc, "position", None)
    if isinstance(pos, int) and 0 <= pos <= len(text):
        return text.count("\n", 0, pos) + 1
    return None


# --- JSON -------------------------------------------------------------------------

# A JSON string, unrolled so that the regex engine never backtracks.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_BRACKET_PAIRS = bytes.maketrans(b"{}", b"[]")
# A number that may overflow a float to infinity: a 3-digit exponent or 300 digits.
_HUGE_NUMBER = re.compile(r"[eE]\+?\d{3,}|\d{300,}")
# Tokens that decide which keys belong to which object (see _locate_duplicate).
_KEY_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"(\s*:)?|[{}\[\]]', re.S)
#: The duplicate-key locator gives up (and reports no position) after this many tokens.
_LOCATE_BUDGET = 1_000_000


class _Refused(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Refused(f"the number {text[:40]} is too large")
    return value


def load_json(text: str, filename: str, limits: Limits) -> Any:
    """Parse JSON ``text`` within ``limits``: depth and value count are checked
    before parsing; duplicate keys, NaN and infinities are refused."""
    check_size(len(text), limits, filename)
    bare = _prescan(text, filename, limits)
    duplicates: list[str] = []

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(pairs)
        if len(out) != len(pairs) and not duplicates:
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    duplicates.append(key)
                    break
                seen.add(key)
        return out

    try:
        # The float hook costs a Python call per number: only when one could overflow.
        huge = _HUGE_NUMBER.search(bare) is not None
        doc = json.loads(text, object_pairs_hook=pairs_hook, parse_constant=_no_constant,
                         parse_float=_finite_float if huge else None)
    except json.JSONDecodeError as exc:
        raise _fail(filename, exc.lineno, f"not valid JSON: {exc.msg}", exc.colno) from None
    except (ValueError, RecursionError) as exc:  # _Refused; an integer past Python's digit limit
        raise _fail(filename, None, f"not valid JSON: {_one_line(str(exc))[:200]}") from None
    if duplicates:
        line, col = _locate_duplicate(text)
        raise SpecError([Diagnostic(filename, line, col, "$", f"duplicate key {json.dumps(duplicates[0])}")])
    return doc


def _strip_strings(text: str) -> str:
    """``text`` with every JSON string emptied, so brackets and commas inside strings do not count."""
    if '\\"' not in text:
        # No escaped quote: every quote opens or closes a string, so the
        # pieces between them alternate outside / inside (split is much
        # faster than the regex on a plan of several MiB).
        return '""'.join(text.split('"')[0::2])
    return _JSON_STRING.sub('""', text)


def _prescan(text: str, filename: str, limits: Limits) -> str:
    """Check depth and value count of JSON text without parsing it (C-speed
    string operations); returns the text with its strings emptied."""
    bare = _strip_strings(text)
    values = bare.count(",") + bare.count("[") + bare.count("{") + 1
    if values > limits.max_nodes:
        raise _fail(filename, None, f"the document is too large (over {limits.max_nodes:,} values)")
    brackets = bare.encode("utf-8", "surrogatepass").translate(_BRACKET_PAIRS, _NOT_BRACKETS)
    # Each pass deletes the innermost pairs; what survives max_depth passes is
    # nested deeper than that (or unbalanced, which json would also refuse,
    # but only after recursing once per open bracket).
    for _ in range(limits.max_depth):
        if not brackets:
            return bare
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            break
        brackets = shorter
    if not brackets:
        return bare
    opens = brackets.count(b"[")
    if opens != len(brackets) - opens:
        raise _fail(filename, None, "not valid JSON: its brackets do not balance")
    raise _fail(filename, None, f"nesting is deeper than {limits.max_depth} levels")


def _locate_duplicate(text: str) -> tuple[int | None, int | None]:
    """Line and column of the first key repeated within one object, or (None, None)."""
    stack: list[set[str] | None] = []  # one key set per open object; None for an array
    for i, m in enumerate(_KEY_TOKENS.finditer(text)):
        if i > _LOCATE_BUDGET:
            break
        tok = m.group()
        if tok == "{":
            stack.append(set())
        elif tok == "[":
            stack.append(None)
        elif tok in "]}":
            if stack:
                stack.pop()
        elif m.group(1) is not None and stack and stack[-1] is not None:
            try:
                key = json.loads(tok[: tok.rindex('"') + 1])
            except ValueError:
                continue
            if key in stack[-1]:
                start = m.start()
                line = text.count("\n", 0, start) + 1
                return line, start - (text.rfind("\n", 0, start) + 1) + 1
            stack[-1].add(key)
    return None, None


def load_json_file(path: str | os.PathLike[str], limits: Limits, filename: str | None = None) -> Any:
    """Read ``path`` within ``limits`` and parse it as JSON (see ``load_json``)."""
    name = filename or str(path)
    return load_json(read_text(path, limits, name, what="JSON"), name, limits)
