"""The ssh cloud's dynamic providers: a host allocation, and one node per host.

``SshHostAllocation`` takes ``num_nodes`` hosts of a pool in the ledger
(``ledger.py``) and reaches each over SSH: the candidate's own host (its zone)
is node 0; the others are free hosts of the same pool with the same hardware
(``peers``), in config order, skipping any that is taken or cannot be reached.
Node 0's host taken or unreachable fails the create with ``SshHostBusy`` or
``SshUnreachable`` (capacity, that zone: failover moves on to the next host);
too few peers with ``SshPoolFull`` (capacity, the pool). What it took is
released before a failed create returns, and by its delete.

``SshNode`` syncs the workdir and plain-path file mounts into the node's
sandbox on its host and starts the task there, through the node runtime; its
delete stops the task and removes the sandbox. An update (only the task
changed) syncs and starts again in the same sandbox.

As with the local provider, the classes live in an importable module (Pulumi
pickles providers by reference) and everything they need, the ledger's
absolute path and each host's address included, comes from their inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from skyplan import failpoints
from skyplan.clouds.ssh import ledger
from skyplan.clouds.ssh.nodes import record_address, sandbox_path

if TYPE_CHECKING:
    from skyplan.clouds.base import ProvisionRequest

#: How long reaching a host may take before it counts as unreachable (seconds).
REACH_TIMEOUT_S = 20.0
#: A node's inputs whose change re-runs the task in the same sandbox; any other replaces it.
RERUN_KEYS = ("workdir", "setup", "run", "envs", "secrets", "revision", "file_mounts")
ALLOCATION_REPLACE_KEYS = ("ledger", "stack", "cluster", "pool", "head", "num_nodes")


def _failure_text(exc: BaseException) -> str:
    from skyplan.runtime.protocol import RuntimeFailure

    return str(exc) if isinstance(exc, RuntimeFailure) else f"{type(exc).__name__}: {exc}"


def reach(record: dict[str, Any], *, stack: str, rank: int, shared_login: bool = False) -> None:
    """Log in to the host and run ``true``; raises Exception(<RuntimeFailure text>).

    The address is the one node ``rank``'s resource will use, so its create, in the
    same provider process, reuses this connection (``open_node`` caches by address)
    instead of paying for a second key exchange."""
    from skyplan.runtime.sync_api import open_node, run

    node = open_node(record_address(record, rank=rank, sandbox=sandbox_path(stack, rank)))
    try:
        result = run(node.exec("true", timeout_s=REACH_TIMEOUT_S), timeout=REACH_TIMEOUT_S + 10)
        if result.exit_code != 0:
            raise Exception(f"SshUnreachable: {record['zone']} (pool {record['pool']}): `true` exited "
                            f"{result.exit_code}: {result.output[-200:]!r}")
    except Exception as exc:
        try:
            run(node.close(), timeout=10)
        except Exception:  # noqa: BLE001 - closing a connection that failed to open
            pass
        text = _failure_text(exc)
        if text.startswith("SshAuthFailed") and shared_login:
            text += f"; every host of pool '{record['pool']}' logs in as {record.get('user')} with this key"
        raise Exception(text) from None


class SshHostAllocationProvider(ResourceProvider):
    serialize_as_secret_always = False

    def create(self, props: dict[str, Any]) -> CreateResult:
        path = _path(props)
        stack, cluster = str(props["stack"]), str(props["cluster"])
        head = dict(props["head"])
        want = max(1, int(props.get("num_nodes") or 1))
        taken: list[dict[str, Any]] = []
        try:
            ledger.take(head["key"], stack=stack, cluster=cluster, info={**head, "rank": 0}, path=path)
            taken.append(head)
            reach(head, stack=stack, rank=0, shared_login=bool(props.get("shared_login")))
            skipped: list[str] = []
            for peer in props.get("peers") or []:
                if len(taken) == want:
                    break
                peer = dict(peer)
                try:
                    ledger.take(peer["key"], stack=stack, cluster=cluster, info={**peer, "rank": len(taken)},
                                path=path)
                except ledger.HostBusy as exc:
                    skipped.append(str(exc))
                    continue
                try:
                    reach(peer, stack=stack, rank=len(taken), shared_login=bool(props.get("shared_login")))
                except Exception as exc:  # noqa: BLE001 - an unreachable peer is skipped
                    ledger.release(peer["key"], stack=stack, path=path)
                    skipped.append(str(exc))
                    continue
                taken.append(peer)
            if len(taken) < want:
                raise Exception(f"SshPoolFull: pool '{head['pool']}' has {len(taken)} free reachable host(s) "
                                f"like {head['zone']} ({props.get('instance_type')}), {want} needed"
                                + (": " + "; ".join(skipped) if skipped else ""))
        except ledger.HostBusy as exc:
            _release_all(taken, stack, path)
            raise Exception(str(exc)) from None
        except BaseException:
            _release_all(taken, stack, path)
            raise
        failpoints.hit("provider.created")
        outs = {**_inputs(props), "hosts": taken}
        return CreateResult(id_=f"{stack}/hosts", outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # The peer list follows the config file; the hosts taken do not move because it changed.
        replaces = [k for k in ALLOCATION_REPLACE_KEYS if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(replaces), replaces=replaces, delete_before_replace=True)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        held = [e for e in ledger.held(str(props.get("stack") or ""), path=_path(props))
                if e.get("stack") == props.get("stack")]
        return ReadResult(id_=id_, outs=props) if held else ReadResult(id_="", outs={})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        _release_all(list(props.get("hosts") or []) + [props.get("head") or {}], str(props.get("stack")),
                     _path(props))


def _path(props: dict[str, Any]) -> Any:
    from pathlib import Path

    return Path(props["ledger"])


def _release_all(records: list[dict[str, Any]], stack: str, path: Any) -> None:
    for r in records:
        if r.get("key"):
            ledger.release(r["key"], stack=stack, path=path)


def _inputs(props: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in props.items() if k != "hosts"}


class SshHostAllocation(Resource, module="skyplan", name="SshHostAllocation"):
    """The hosts of one ssh cluster, taken in the ledger: ``hosts[rank]``."""

    hosts: pulumi.Output[list]

    def __init__(self, name: str, props: dict[str, Any], opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(SshHostAllocationProvider(), name, {**props, "hosts": None}, opts)


# --- nodes --------------------------------------------------------------------------------------


def _task(props: dict[str, Any]) -> Any:
    from skyplan.runtime.protocol import TaskSpec

    return TaskSpec(cluster=str(props.get("cluster") or ""), stack=str(props.get("stack") or ""),
                    num_nodes=int(props.get("num_nodes") or 1), setup=props.get("setup") or None,
                    run=props.get("run") or None, envs=dict(props.get("envs") or {}),
                    secrets=dict(props.get("secrets") or {}), node_ips=tuple(props.get("node_ips") or ()),
                    buckets=tuple(props.get("buckets") or ()))


def _node(props: dict[str, Any]) -> Any:
    from skyplan.runtime.sync_api import open_node

    return open_node(record_address(props["host"], rank=int(props.get("node_rank") or 0),
                                    sandbox=str(props["sandbox"])))


def run_task(props: dict[str, Any]) -> None:
    """Sync the workdir and mounts into the node's sandbox, then start the task."""
    from skyplan.runtime.sync_api import run

    node = _node(props)
    try:
        run(node.sync(props.get("workdir") or None, dict(props.get("file_mounts") or {})))
        run(node.start(_task(props)))
    except Exception as exc:
        raise Exception(_failure_text(exc)) from None


class SshNodeProvider(ResourceProvider):
    serialize_as_secret_always = False

    def create(self, props: dict[str, Any]) -> CreateResult:
        try:
            run_task(props)
        except BaseException:
            _remove(props, quiet=True)  # create is all or nothing: no half-made sandbox is left
            raise
        failpoints.hit("provider.created")
        return CreateResult(id_=f"{props['stack']}/node-{props.get('node_rank') or 0}", outs=dict(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in set(olds) | set(news) if olds.get(k) != news.get(k)]
        replaces = [k for k in changed if k not in RERUN_KEYS]
        return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=True)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        run_task(news)  # a fresh sync stops what runs in the sandbox and replaces it: the task re-runs
        return UpdateResult(outs=dict(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs=props)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        _remove(props)


def _remove(props: dict[str, Any], quiet: bool = False) -> None:
    """Stop the node's task and delete its sandbox. A host that cannot be reached
    fails the delete (the stack stays, ``down`` exits 5 and says so), unless the
    host is no longer in any pool of the config file: taking it out is how a user
    says a machine is gone for good, and then there is nothing left to reach."""
    from skyplan.runtime.sync_api import run

    try:
        run(_node(props).remove())
    except Exception as exc:
        if quiet or host_forgotten(props.get("host") or {}, props.get("config")):
            return
        host = props.get("host") or {}
        where = props.get("config") or "the config file"
        raise Exception(_failure_text(exc) + f"; the sandbox {props.get('sandbox')} on {host.get('zone')} is "
                        "still there: run `skyplan down` again once the host is reachable, or, if it is gone "
                        f"for good, take it out of pool '{host.get('pool')}' in {where} first") from None


def host_forgotten(record: dict[str, Any], config: str | None) -> bool:
    """Whether no pool of the config file (at ``config``, else the home's) lists the
    machine of ``record`` any more. False when the file cannot be read."""
    from skyplan.clouds.ssh.pools import pools
    from skyplan.config import read_config

    try:
        listed = {h.key for p in pools(read_config(config)).values() for h in p.hosts}
    except Exception:  # noqa: BLE001 - an unreadable config proves nothing
        return False
    return bool(record.get("key")) and record["key"] not in listed


class SshNode(Resource, module="skyplan", name="SshNode"):
    """One node of an ssh cluster: a sandbox on a pool host, running the task."""

    host: pulumi.Output[dict]
    sandbox: pulumi.Output[str]

    def __init__(self, name: str, props: dict[str, Any], opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(SshNodeProvider(), name, props, opts)


# --- building (called from stacks/ssh/program.py) ------------------------------------------------


def node_props(request: ProvisionRequest, rank: int, host: Any, node_ips: Any) -> dict[str, Any]:
    from skyplan.clouds.local.provider import task_props
    from skyplan.config import config_path

    return {
        "cluster": request.cluster,
        "stack": request.stack,
        "node_rank": rank,
        "num_nodes": max(1, int(request.num_nodes)),
        "host": host,
        "node_ips": node_ips,
        "sandbox": sandbox_path(request.stack, rank),
        # Where the pools are: a host taken out of every pool may be forgotten by delete (``_remove``).
        "config": str(config_path().absolute()),
        **task_props(request),
    }


# --- recovery (the cloud's resolve_interrupted / remove_leftovers) -------------------------------


def resolve_interrupted(type_: str, inputs: dict[str, Any]) -> bool:
    """Make sure an interrupted create left nothing: release an allocation's hosts,
    remove a node's sandbox. False for another cloud's resource, or when the host
    cannot be reached (then the stack stays, and ``down`` says so)."""
    if type_.endswith(":SshHostAllocation") and inputs.get("ledger") and inputs.get("stack"):
        ledger.release_stack(str(inputs["stack"]), path=_path(inputs))
        return True
    if type_.endswith(":SshNode") and isinstance(inputs.get("host"), dict) and inputs.get("sandbox"):
        try:
            _remove(inputs)
        except Exception:  # noqa: BLE001 - unreachable: not proven gone
            return False
        return True
    return False


def remove_stacks(stacks: set[str], path: Any = None) -> None:
    """For each ledger entry of these stacks: remove the node's sandbox on its host,
    then release the host. An unreachable host keeps its entry (``down`` reports it),
    unless no pool lists it any more (see ``_remove``)."""
    for e in ledger.held("", path=path):
        stack = e.get("stack")
        if stack not in stacks:
            continue
        rank = int(e.get("rank") or 0)
        try:
            _remove({"host": e, "node_rank": rank, "sandbox": sandbox_path(stack, rank)})
        except Exception:  # noqa: BLE001 - left in the ledger, so leftovers() still names it
            continue
        ledger.release(e["key"], stack=stack, path=path)
