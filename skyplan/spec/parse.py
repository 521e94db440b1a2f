"""Parsers for the string forms inside a task: 'A100:8', '4+', '10022-10040'.

Each parser returns a value or raises ``ValueError`` whose text is a plain,
user-facing sentence. The semantic checks call them to report problems; the
builder calls them again on input that has already passed.
"""

from __future__ import annotations

import math
import re

from skyplan.spec.models import Accelerator, Quantity

_ACC_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9_.\-]*)\s*(?::\s*(.*?)\s*)?$")
_QTY_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(\+?)\s*$")
_PORT_RE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: job_recovery strategies skyplan knows, upper-case.
#: NO_RECOVERY: a managed job fails on preemption instead of being relaunched.
JOB_RECOVERY_STRATEGIES = ("FAILOVER", "EAGER_NEXT_REGION", "NO_RECOVERY")

MAX_PORT = 65535


def num(value: float) -> int | float:
    """A number in canonical form: an int when it is whole, else a float."""
    if isinstance(value, bool):
        raise ValueError("expected a number, got true/false")
    if isinstance(value, int):
        return value
    f = float(value)
    return int(f) if f.is_integer() and abs(f) < 2**53 else f


def check_count(count: float, what: str) -> int | float:
    """Validate an accelerator count: positive; a fraction only below 1."""
    if isinstance(count, bool) or not isinstance(count, (int, float)) or not math.isfinite(count):
        raise ValueError(f"{what}: the count must be a number")
    if count <= 0:
        raise ValueError(f"{what}: the count must be greater than 0, got {num(count)}")
    if count > 1 and not float(count).is_integer():
        raise ValueError(f"{what}: the count must be a whole number (or a fraction below 1), got {count}")
    return num(count)


def parse_accelerator(text: str, count: float | None = None) -> Accelerator:
    """Parse 'A100' or 'A100:8'. ``count`` is the value of a mapping entry, if any."""
    m = _ACC_RE.match(text)
    if not m:
        raise ValueError(f"'{text}' is not an accelerator; expected a name such as 'A100' or 'A100:8'")
    name, raw = m.group(1), m.group(2)
    if raw is not None:
        if count is not None:
            raise ValueError(f"'{text}' gives a count, and so does its value {num(count)}; give it once")
        try:
            parsed = float(raw)
        except ValueError:
            raise ValueError(f"'{text}': the count '{raw}' is not a number") from None
        return Accelerator(name, check_count(parsed, f"'{text}'"))
    if count is None:
        return Accelerator(name, 1)
    return Accelerator(name, check_count(count, f"'{text}'"))


def parse_quantity(value: float | str) -> Quantity:
    """Parse cpus/memory: a number means exactly that; 'N+' means at least N."""
    if isinstance(value, bool):
        raise ValueError("expected a number or a string such as '4+', got true/false")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"must be greater than 0, got {value}")
        return Quantity(float(value), at_least=False)
    m = _QTY_RE.match(value)
    if not m:
        raise ValueError(f"'{value}' is not a number or 'N+' (at least N), such as '4' or '4+'")
    amount = float(m.group(1))
    if amount <= 0:
        raise ValueError(f"'{value}': the amount must be greater than 0")
    return Quantity(amount, at_least=bool(m.group(2)))


def parse_ports(value: int | str | list[int | str]) -> tuple[int, ...]:
    """Expand ports: 8081, '8081', '10022-10040' or a list of them, to sorted unique ints."""
    items = value if isinstance(value, list) else [value]
    ports: set[int] = set()
    for item in items:
        ports.update(_parse_port_item(item))
    return tuple(sorted(ports))


def _parse_port_item(item: int | float | str) -> range:
    if isinstance(item, float) and item.is_integer():
        item = int(item)  # JSON Schema counts 8081.0 as an integer, so must we
    if isinstance(item, bool) or not isinstance(item, (int, str)):
        raise ValueError("expected a port number or a string such as '8081' or '10022-10040'")
    if isinstance(item, int):
        lo = hi = item
    else:
        m = _PORT_RE.match(item)
        if not m:
            raise ValueError(f"'{item}' is not a port or a port range such as '10022-10040'")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
    for p in (lo, hi):
        if not 1 <= p <= MAX_PORT:
            raise ValueError(f"port {p} is out of range 1-{MAX_PORT}")
    if lo > hi:
        raise ValueError(f"'{item}': the range starts after it ends")
    return range(lo, hi + 1)


def parse_job_recovery(strategy: str) -> str:
    """Normalise a job_recovery strategy to upper case; unknown names raise."""
    up = strategy.strip().upper()
    if up not in JOB_RECOVERY_STRATEGIES:
        raise ValueError(
            f"'{strategy}' is not a job recovery strategy; use one of {', '.join(JOB_RECOVERY_STRATEGIES)}"
        )
    return up


#: A cluster name (and so a task's ``name``, the default cluster name): it becomes
#: part of stack names, sandbox paths and state keys, which take nothing else.
_CLUSTER_NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
CLUSTER_NAME_RULE = "lowercase letters, digits and '-', starting with a letter or digit, at most 63 characters"


def is_cluster_name(name: str) -> bool:
    return bool(_CLUSTER_NAME_RE.fullmatch(name or ""))


def suggest_cluster_name(name: str) -> str | None:
    """The valid cluster name closest to ``name`` (``My Task!`` -> ``my-task``), or
    None when nothing of it is usable. A suggestion only: names are never rewritten."""
    text = re.sub(r"[^a-z0-9]+", "-", (name or "").lower()).strip("-")[:63].rstrip("-")
    return text if is_cluster_name(text) else None


def is_env_name(name: str) -> bool:
    # fullmatch: with match, '$' also accepts a name ending in a newline
    return bool(_ENV_NAME_RE.fullmatch(name))


def scalar_text(value: object) -> str:
    """A scalar env/label value as text, when the YAML source text is not at hand."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(num(value)) if value.is_integer() else repr(value)
    return str(value)
