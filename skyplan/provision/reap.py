"""Cleaning up by the backend's truth: a re-run's recovery and ``down``.

A cluster's stacks are the stacks on the backend whose names start with
``names.cluster_stack_prefix(cluster)``, whatever ``state.db`` says: the journal
tells what a run meant to do, the backend what exists. A process killed between
two writes (an attempt recorded up, the cluster not yet UP) leaves the journal
behind the world, so every cleanup here lists the backend and destroys every
stack of the cluster that is not its current one.

Clouds that can see every resource they made from here (capability
``proves_interrupted``: local, sim) are asked too: a provider killed mid-create
leaves a resource that no stack knows of (``CloudBase.leftovers``). After the
stacks are destroyed, what such a cloud still holds for the cluster's other
stacks is removed, and ``down`` succeeds only when the backend and those clouds
hold nothing of the cluster.

Every function runs under the cluster's lock (the caller takes it), so no
operation of the same cluster runs meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from skyplan import failpoints
from skyplan.clouds import registry
from skyplan.errors import CleanupError
from skyplan.provision.events import EventSink, Recover
from skyplan.provision.names import cluster_stack_prefix, is_attempt_stack
from skyplan.provision.protocol import Driver, EngineEventSink, InterruptedOp, ResourceStep
from skyplan.state import StateDB

#: Rounds of list-then-destroy in ``down`` before giving up on a backend that keeps
#: showing stacks of the cluster (another process making them without our lock).
DOWN_ROUNDS = 3


def provable_clouds() -> tuple[str, ...]:
    return registry.with_capability(proves_interrupted=True)


def leftovers(prefix: str) -> list[tuple[str, str, str]]:
    """(cloud, stack, what) for everything the provable clouds hold for stacks named ``prefix…``."""
    return [(name, stack, what) for name in provable_clouds()
            for stack, what in registry.get(name).leftovers(prefix) if is_attempt_stack(stack)]


def release_leftovers(stacks: Iterable[str]) -> None:
    """Remove what the provable clouds hold for exactly these stacks."""
    wanted = tuple(dict.fromkeys(stacks))
    if wanted:
        for name in provable_clouds():
            registry.get(name).remove_leftovers(wanted)


def sweep(prefix: str, keep: Iterable[str] = ()) -> list[tuple[str, str, str]]:
    """Remove what the provable clouds hold for stacks named ``prefix…`` other than
    ``keep``; return what they still hold for those stacks afterwards (should be [])."""
    kept = set(keep)
    release_leftovers(stack for _, stack, _ in leftovers(prefix) if stack not in kept)
    return [item for item in leftovers(prefix) if item[1] not in kept]


def resolve_interrupted(op: InterruptedOp) -> bool:
    """Clouds that declare ``proves_interrupted`` can prove an interrupted create
    left nothing behind; each resolver checks the resource type and declines
    others. Real clouds cannot, so their interrupted creates surface as a CleanupError."""
    return any(registry.get(name).resolve_interrupted(op) for name in provable_clouds())


def cloud_resource(ev: Any) -> bool:
    """Is this engine event a step of a cloud resource (not the stack or a provider)?"""
    return isinstance(ev, ResourceStep) and not ev.resource_type.startswith("pulumi:")


def recover(driver: Driver, db: StateDB, cluster: str, emit: EventSink,
            listed: Iterable[str] | None = None, keep: Iterable[str] = ()) -> list[str]:
    """Before a launch of a cluster that is not up: destroy every stack of it on the
    backend (``listed``: the backend's names, when the caller has just listed them),
    close the journal rows of stacks the backend no longer holds, and remove what
    the provable clouds hold for the cluster. Returns the stacks destroyed.

    ``keep``: stacks that stay (a cluster being replaced keeps running on its
    current stack until the new one is up)."""
    prefix = cluster_stack_prefix(cluster)
    kept = set(keep)
    names = driver.list_stacks(prefix) if listed is None else list(listed)
    on_backend = [s for s in names if s.startswith(prefix) and is_attempt_stack(s) and s not in kept]
    rows = {row.stack: row for row in db.attempts(cluster)}
    for stack in on_backend:
        row = rows.get(stack)
        emit(Recover(stack, row.status if row is not None else "untracked"))
        failpoints.hit("recover.before-destroy")
        driver.destroy_and_remove(stack, resolve_interrupted=resolve_interrupted)
        failpoints.hit("recover.after-destroy")
        if row is not None:
            db.set_attempt_status(row.id, "cleaned")
    for row in db.unfinished_attempts(cluster):
        if row.stack not in on_backend and row.stack not in kept and row.backend in (None, driver.backend_url):
            db.set_attempt_status(row.id, "cleaned")  # the backend has no such stack: nothing to destroy
    left = sweep(prefix, keep=kept)
    if left:
        raise _leftover_error(cluster, left)
    return on_backend


def down(driver: Driver, db: StateDB, cluster: str) -> list[str] | None:
    """Destroy every stack of ``cluster`` on the backend and what the provable clouds
    hold for it, then forget the cluster. Returns the stacks destroyed, or None when
    there was nothing at all (no row, no stack, no leftover). Raises CleanupError
    (the cluster row stays, marked DOWN) when something could not be removed."""
    prefix = cluster_stack_prefix(cluster)
    row = db.get_cluster(cluster)
    stacks = [s for s in driver.list_stacks(prefix) if is_attempt_stack(s)]
    if row is None and not stacks and not leftovers(prefix):
        forget_node_access(cluster)  # keys a cut-short down left behind
        return None
    if row is not None:
        db.upsert_cluster(cluster, status="DOWN")  # status shows a down that did not finish
    failpoints.hit("down.before-destroy")
    on_event = _down_events if failpoints.ACTIVE else None
    destroyed: list[str] = []
    for _ in range(DOWN_ROUNDS):
        for stack in stacks:
            driver.destroy_and_remove(stack, resolve_interrupted=resolve_interrupted, on_event=on_event)
            destroyed.append(stack)
            failpoints.hit("down.after-destroy")
        stacks = [s for s in driver.list_stacks(prefix) if is_attempt_stack(s)]
        if not stacks:
            break
    if stacks:
        raise CleanupError(f"cluster '{cluster}': the backend still holds {', '.join(stacks)} after destroying it",
                           stack=stacks[0], resources=stacks,
                           hint=f"another process may be launching '{cluster}' on this backend; "
                                f"run `skyplan down {cluster}` again")
    left = sweep(prefix)
    if left:
        raise _leftover_error(cluster, left)
    from skyplan.provision.housekeeping import tidy_backend

    tidy_backend(driver.backend_url, prefix=prefix)
    failpoints.hit("down.before-forget")
    forget_node_access(cluster)
    db.delete_cluster(cluster)
    return list(dict.fromkeys(destroyed))


def forget_node_access(cluster: str) -> None:
    """Delete the cluster's SSH key pair and the host keys recorded for its nodes
    (``skyplan.runtime.keys``): its machines are gone. Idempotent."""
    from skyplan.runtime import keys

    keys.remove(cluster)


def _down_events(ev: Any) -> None:
    if cloud_resource(ev) and ev.step == "outputs" and ev.op == "delete":
        failpoints.hit("down.resource-deleted")


def up_events() -> EngineEventSink | None:
    """The engine-event hook of an attempt's ``up``, when failpoints are on (else None: no cost)."""
    if not failpoints.ACTIVE:
        return None

    def on_event(ev: Any) -> None:
        if cloud_resource(ev) and ev.op == "create":
            if ev.step == "pre":
                failpoints.hit("attempt.up.creating")
            elif ev.step == "outputs":
                failpoints.hit("attempt.up.created")

    return on_event


def _leftover_error(cluster: str, left: list[tuple[str, str, str]]) -> CleanupError:
    what = "; ".join(f"{registry.display(cloud)}: {desc}" for cloud, _, desc in left)
    return CleanupError(f"cluster '{cluster}': could not remove {what}", stack=left[0][1],
                        resources=[desc for _, _, desc in left],
                        hint=f"remove them by hand, then run `skyplan down {cluster}` again")
