"""Stack names: one per attempt, derived from the cluster and the placement.

Pure string functions, so the planner-side code (apply's journal, tests) can
name stacks without importing the Automation API wrapper.
"""

from __future__ import annotations

import hashlib
import re

_STACK_NAME_MAX = 99



def _safe(text: str, *, dots: bool) -> str:
    allowed = r"[^A-Za-z0-9_.-]" if dots else r"[^A-Za-z0-9_-]"
    return re.sub(allowed, "-", text).strip("-") or "x"


def _short_hash(text: str, n: int = 6) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:n]


def cluster_stack_prefix(cluster: str) -> str:
    """The prefix every stack of ``cluster`` starts with (ends in ".").

    The cluster part never contains "." itself, so ``foo.`` cannot match the
    stacks of a cluster named ``foo.bar``; names that needed rewriting get a
    hash so that ``a/b`` and ``a_b`` stay apart.
    """
    part = _safe(cluster, dots=False)
    if part != cluster or len(part) > 40:
        part = f"{part[:33]}-{_short_hash(cluster)}"
    return part + "."


def stack_name(
    cluster: str,
    cloud: str,
    region: str,
    zone: str | None,
    instance_type: str,
    use_spot: bool,
    attempt_no: int,
) -> str:
    """A valid, unique-per-attempt stack name, e.g.
    ``train.a003.gcp.us-central1-a.n1-highmem-8.spot`` (at most 99 characters of
    ``[A-Za-z0-9_.-]``; an over-long name keeps its start and gains a hash)."""
    market = "spot" if use_spot else "od"
    tail = ".".join(_safe(p, dots=False) for p in (f"a{attempt_no:03d}", cloud, zone or region, instance_type, market))
    name = cluster_stack_prefix(cluster) + tail
    if len(name) > _STACK_NAME_MAX:
        name = f"{name[: _STACK_NAME_MAX - 9]}.{_short_hash(name, 8)}"
    return name


_ATTEMPT = re.compile(r"[A-Za-z0-9_-]+\.a[0-9]{3,}\.")


def is_attempt_stack(stack: str) -> bool:
    """Was ``stack`` named by ``stack_name`` (``<cluster>.a<NNN>.…``)? Other stacks on
    a backend (the capacity memory's, a user's own) are never skyplan's to collect."""
    return _ATTEMPT.match(stack) is not None


def cluster_of(stack: str) -> str:
    """The (sanitised) cluster part of a stack name made by ``stack_name``."""
    return stack.split(".", 1)[0]
