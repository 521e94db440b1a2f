"""Garbage collection: stacks on the backend that no cluster is using, and what
the clouds that can prove it still hold for them.

``find`` looks, ``collect`` destroys; ``skyplan gc`` shows the first and asks
before the second. A stack is garbage when it is an attempt stack
(``names.is_attempt_stack``) and is not the current stack of a cluster that is UP:

* it belongs to no cluster this skyplan home knows;
* its cluster is DOWN (a ``down`` that did not finish), FAILED, or PROVISIONING
  with no process holding its lock (a launch that was killed);
* its cluster is UP on another stack.

A cluster whose lock another process holds (a launch or down in flight) is
skipped, whatever its state says. Clusters left DOWN are forgotten once nothing
of them is left, as ``down`` would have done. Then the housekeeping: the
``.json.bak`` files, history and lock directories of removed stacks on a file://
backend, and the lock files of clusters that are down or unknown.

The state database is per skyplan home: on a backend shared by several homes,
another home's clusters look unknown here, so ``gc`` lists before it destroys.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from skyplan.errors import CleanupError, LockedError
from skyplan.provision import housekeeping, reap
from skyplan.provision.names import cluster_of, cluster_stack_prefix, is_attempt_stack
from skyplan.provision.protocol import Driver
from skyplan.state import StateDB, cluster_lock
from skyplan.state.lock import lock_path


@dataclass(frozen=True)
class Garbage:
    """One stack (on the backend, or only in a cloud that can prove it: ``on_backend``
    False) that no cluster uses, why, and the cluster whose lock guards it."""

    stack: str
    cluster: str
    reason: str
    on_backend: bool = True
    resources: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "cluster": self.cluster, "reason": self.reason,
                "on_backend": self.on_backend, "resources": list(self.resources)}


@dataclass
class Collected:
    destroyed: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"stack", "reason"}
    forgotten: list[str] = field(default_factory=list)  # clusters left DOWN, now gone
    files_removed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"destroyed": self.destroyed, "skipped": self.skipped, "clusters_forgotten": self.forgotten,
                "files_removed": self.files_removed}


def find(driver: Driver, db: StateDB) -> list[Garbage]:
    """Every stack no cluster is using (see the module docstring), backend first.

    The backend is listed before the state is read: a launch writes its cluster
    row before it creates a stack, so a stack listed here has its row by then."""
    listed = [s for s in driver.list_stacks() if is_attempt_stack(s)]
    rows = {cluster_stack_prefix(r.name): r for r in db.clusters()}
    out: list[Garbage] = []
    seen: set[str] = set()

    def judge(stack: str) -> tuple[str, str] | None:
        row = rows.get(cluster_of(stack) + ".")
        if row is None:
            return cluster_of(stack), "no known cluster"
        if row.status == "UP":
            return None if stack == row.stack else (row.name, f"cluster '{row.name}' is up on another stack")
        what = {"DOWN": "is down (a down that did not finish)", "FAILED": "failed",
                "PROVISIONING": "is not up (its launch was stopped)"}.get(row.status, f"is {row.status}")
        return row.name, f"cluster '{row.name}' {what}"

    for stack in listed:
        verdict = judge(stack)
        if verdict is not None:
            out.append(Garbage(stack, verdict[0], verdict[1]))
            seen.add(stack)
    held: dict[str, list[str]] = {}
    for _, stack, what in reap.leftovers(""):
        held.setdefault(stack, []).append(what)
    for stack, what in held.items():
        if stack in seen or stack in listed:
            if stack in seen:
                i = next(i for i, g in enumerate(out) if g.stack == stack)
                out[i] = Garbage(stack, out[i].cluster, out[i].reason, True, tuple(what))
            continue
        verdict = judge(stack)
        if verdict is not None:
            out.append(Garbage(stack, verdict[0], verdict[1] + "; no stack on the backend",
                               on_backend=False, resources=tuple(what)))
    return out


def collect(driver: Driver, db: StateDB, garbage: list[Garbage]) -> Collected:
    """Destroy ``garbage`` (from ``find``) cluster by cluster, each under its cluster's
    lock; then forget the clusters left DOWN that hold nothing, and tidy up."""
    done = Collected()
    by_cluster: dict[str, list[Garbage]] = {}
    for g in garbage:
        by_cluster.setdefault(g.cluster, []).append(g)
    down_rows = [r.name for r in db.clusters() if r.status == "DOWN"]
    for name in list(by_cluster) + [n for n in down_rows if n not in by_cluster]:
        items = by_cluster.get(name, [])
        try:
            with cluster_lock(name, "gc") as lock:
                for g in items:
                    try:
                        if g.on_backend:
                            driver.destroy_and_remove(g.stack, resolve_interrupted=reap.resolve_interrupted)
                        reap.release_leftovers([g.stack])
                        done.destroyed.append(g.stack)
                    except CleanupError as exc:
                        done.skipped.append({"stack": g.stack, "reason": exc.message})
                row = db.get_cluster(name)
                prefix = cluster_stack_prefix(name)
                if row is None or row.status == "DOWN":
                    if not driver.list_stacks(prefix) and not reap.leftovers(prefix):
                        if row is not None:
                            reap.forget_node_access(name)
                            db.delete_cluster(name)
                            done.forgotten.append(name)
                        lock.forget()
                done.files_removed += len(housekeeping.tidy_backend(driver.backend_url, prefix=prefix))
        except LockedError:
            done.skipped += [{"stack": g.stack, "reason": f"cluster '{name}' is locked by another skyplan process"}
                             for g in items]
    done.files_removed += _tidy_rest(driver, db)
    return done


def _tidy_rest(driver: Driver, db: StateDB) -> int:
    """Housekeeping beyond the clusters collected: the backend files of removed stacks
    and the lock files of clusters this home does not know (or left DOWN), each
    cluster under its lock, so no launch of it can be creating a stack meanwhile."""
    names = {cluster_stack_prefix(r.name): r.name for r in db.clusters()}
    clusters = {names.get(cluster_of(s) + ".", cluster_of(s))
                for s in housekeeping.untidy_stacks(driver.backend_url)}
    locks = os.path.dirname(lock_path("x"))
    if os.path.isdir(locks):
        clusters |= {e[: -len(".lock")] for e in os.listdir(locks) if e.endswith(".lock")}
    removed = 0
    for name in sorted(clusters):
        try:
            with cluster_lock(name, "gc") as lock:
                removed += len(housekeeping.tidy_backend(driver.backend_url, prefix=cluster_stack_prefix(name)))
                row = db.get_cluster(name)
                if row is None:
                    lock.forget()
                    removed += 1
        except LockedError:
            pass
    return removed
