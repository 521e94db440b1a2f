"""The local cloud's dynamic provider: one resource per node, one sandbox each,
and the helpers the local and sim programs (``stacks/local``, ``stacks/sim``)
build nodes with.

Dynamic providers are pickled (dill) into the stack's state and unpickled in a
separate provider process. The provider class therefore lives here, in an
importable module (it is pickled by reference, not by value), holds no state,
and gets everything it needs, including absolute paths, from its inputs: it
must not depend on the environment of whichever process runs it.

Secrets: a node's ``secrets`` input is a Pulumi secret (``node_props``), so the
engine stores it, and the output of the same name, encrypted with the stack's
passphrase; the provider sees plain values (it does not accept secrets, so the
engine unwraps them) and hands them to the runner, which puts them in the
task's environment and nowhere else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from skyplan import failpoints
from skyplan.clouds.local import runner

if TYPE_CHECKING:
    from skyplan.clouds.base import ProvisionRequest

#: What a node needs; all JSON-able. ``root`` is the node's absolute sandbox path.
INPUT_KEYS = ("root", "cluster", "stack", "task_id", "node_rank", "num_nodes", "workdir", "setup", "run", "envs",
              "secrets", "revision", "file_mounts", "buckets", "loopback_port")
#: Inputs whose change re-runs the task on the same node (``update``: the runner
#: stops it, re-syncs the workdir, starts setup and run again); any other
#: changed input replaces the node.
RERUN_KEYS = ("workdir", "setup", "run", "envs", "secrets", "revision", "file_mounts", "buckets", "loopback_port")
#: What create adds (see ``runner.start``); ``port`` only for a task that declares ports.
OUTPUT_KEYS = ("sandbox", "pid", "pgid", "logs", "status_file", "port")


def spec_of(props: dict[str, Any]) -> dict[str, Any]:
    """The runner's spec from a resource's inputs (or outputs, a superset)."""
    return {
        "cluster": props.get("cluster"),
        "stack": props.get("stack"),
        "task_id": props.get("task_id"),
        "node_rank": int(props.get("node_rank") or 0),
        "num_nodes": int(props.get("num_nodes") or 1),
        "workdir": props.get("workdir") or None,
        "file_mounts": dict(props.get("file_mounts") or {}),
        "setup": props.get("setup") or None,
        "run": props.get("run") or None,
        "envs": dict(props.get("envs") or {}),
        "secrets": dict(props.get("secrets") or {}),
        "buckets": list(props.get("buckets") or []),
        "loopback_port": bool(props.get("loopback_port")),
    }


def inputs_of(props: dict[str, Any], keys: tuple[str, ...] = INPUT_KEYS) -> dict[str, Any]:
    return {k: props.get(k) for k in keys if k in props}


def replace_diff(olds: dict[str, Any], news: dict[str, Any], keys: tuple[str, ...]) -> DiffResult:
    """A changed input replaces the node, except those of ``RERUN_KEYS``: a change
    to those alone is an update (the task re-runs in the same sandbox)."""
    changed = [k for k in keys if olds.get(k) != news.get(k)]
    replaces = [k for k in changed if k not in RERUN_KEYS]
    return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=True)


class LocalNodeProvider(ResourceProvider):
    # Nothing secret is captured, so the pickled provider need not be encrypted.
    serialize_as_secret_always = False

    def create(self, props: dict[str, Any]) -> CreateResult:
        spec = spec_of(props)
        info = runner.start(spec, props["root"])
        failpoints.hit("provider.created")  # the sandbox runs; the engine does not know yet
        node_id = f"{spec['stack']}/node-{spec['node_rank']}"
        return CreateResult(id_=node_id, outs={**inputs_of(props), **info})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return replace_diff(olds, news, INPUT_KEYS)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        # runner.start stops what runs in the sandbox and replaces it: the task re-runs.
        info = runner.start(spec_of(news), news["root"])
        return UpdateResult(outs={**inputs_of(news), **info})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        root = props.get("root")
        if not root or not Path(root).is_dir():
            return ReadResult(id_="", outs={})  # gone: refresh drops it
        return ReadResult(id_=id_, outs=props)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        root = props.get("root")
        if root:
            runner.remove(root)


class LocalNode(Resource, module="skyplan", name="LocalNode"):
    """One node of a local cluster: a sandbox running the task."""

    sandbox: pulumi.Output[str]
    pid: pulumi.Output[int]
    pgid: pulumi.Output[int]
    logs: pulumi.Output[dict]
    status_file: pulumi.Output[str]
    port: pulumi.Output[Optional[int]]

    def __init__(self, name: str, props: dict[str, Any], opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(LocalNodeProvider(), name, {**props, **{k: None for k in OUTPUT_KEYS}}, opts)


# --- building nodes (called from the programs) ---------------------------------------


def sandbox_root(stack: str, home: str | os.PathLike[str] | None = None) -> Path:
    """``<SKYPLAN_HOME>/sandboxes/<stack>``: where a stack's nodes live."""
    if home is None:
        from skyplan import home as _home

        return _home.home() / "sandboxes" / stack
    return Path(home) / "sandboxes" / stack


def node_props(request: ProvisionRequest, rank: int, root: Path) -> dict[str, Any]:
    """A node's inputs: plain JSON values, absolute paths.

    A node here shares this machine's network with every other node, so a task
    that declares ports gets a free loopback port as ``$SKYPLAN_PORT`` instead of
    its first declared one (``loopback_port``: the runner picks it as the node
    starts; the node's output ``port``). Only such a task has that input: a node
    made before it existed sees no change."""
    return {
        "root": str(root.absolute()),
        "cluster": request.cluster,
        "stack": request.stack,
        "task_id": request.stack,
        "node_rank": rank,
        "num_nodes": max(1, int(request.num_nodes)),
        **task_props(request),
        **({"loopback_port": True} if request.ports else {}),
    }


def task_props(request: ProvisionRequest) -> dict[str, Any]:
    """The task's part of a sandbox node's inputs (every cloud whose nodes run the
    sandbox runner): workdir, file mounts, setup, run, envs, revision, secrets;
    and, only for a task that has buckets (a node made before buckets existed
    has no such inputs, and must not see a change), its buckets (``{"dst",
    "name", "owner"}`` each: the runner binds ``<base>/buckets/<name>`` at ``dst``,
    made for ``owner`` if missing)."""
    buckets = [{"dst": b["dst"], "name": b["name"], "owner": b.get("owner") or ""} for b in request.buckets]
    return {
        **({"buckets": buckets} if buckets else {}),
        # The request's workdir is made absolute here, in the apply process, whose
        # cwd is the user's; the provider process runs elsewhere.
        "workdir": os.path.abspath(os.path.expanduser(request.workdir)) if request.workdir else None,
        "file_mounts": dict(request.file_mounts),
        "setup": request.setup,
        "run": request.run,
        "envs": dict(request.envs),
        "revision": request.revision,
        # A Pulumi secret: encrypted in the checkpoint, "[secret]" in the engine's events.
        "secrets": pulumi.Output.secret(dict(request.secrets)) if request.secrets else {},
    }


def export_nodes(request: ProvisionRequest, base: Path, nodes: list[Any], extra: tuple[str, ...] = ()) -> None:
    """Export the placement and each node; ``extra`` names more node outputs to list
    (and ``port``, the node's loopback port, for a task that declares ports)."""
    import pulumi

    if request.ports:
        extra = tuple(extra) + ("port",)
    pulumi.export("cloud", request.cloud)
    pulumi.export("region", request.region)
    pulumi.export("zone", request.zone)
    pulumi.export("instance_type", request.instance_type)
    pulumi.export("sandbox", str(base.absolute()))
    pulumi.export("log", nodes[0].logs.apply(lambda logs: logs["combined"]))
    pulumi.export(
        "nodes",
        [
            {
                "rank": rank,
                "id": n.id,
                "sandbox": n.sandbox,
                "pid": n.pid,
                "logs": n.logs,
                **{key: getattr(n, key) for key in extra},
            }
            for rank, n in enumerate(nodes)
        ],
    )
