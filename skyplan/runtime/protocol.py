"""The node runtime: what skyplan does to a node once it exists.

One protocol, two transports: this machine (the sandbox runner of
``skyplan.clouds.local.runner``) and SSH (``skyplan.runtime.ssh``). Managed jobs,
serve, ``logs``, ``status``, ``exec`` and ``down`` all speak to nodes through it,
so a cloud only has to say how its nodes are reached (``NodeAddress``).

Every method is a coroutine: a controller watching many nodes runs them on one
event loop (the SSH transport reuses one connection per node and holds no
thread per node). ``skyplan.runtime.sync_api`` runs them from plain code.

A node's sandbox has the same layout on every transport (see the runner's
module docstring): ``<base>/sandboxes/<stack>/node-<rank>``, with ``workdir/``,
``logs/combined.log`` and ``status.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Literal, Mapping, Protocol, runtime_checkable

#: How long ``status`` may take before a node counts as unreachable (seconds).
DEFAULT_STATUS_TIMEOUT_S = 20.0

NodeState = Literal["starting", "running", "succeeded", "failed", "stopped", "unreachable", "absent"]


@dataclass(frozen=True)
class NodeAddress:
    """Where a node is and how to reach it.

    ``transport`` is ``"local"`` (this machine: ``sandbox`` is the node's
    directory) or ``"ssh"``. For SSH, ``known_hosts`` is the file its host key
    is checked against, and ``record_host_key`` says whether an unknown key is
    recorded on first contact (a VM skyplan created: the file is skyplan's own,
    per cluster) or refused (a user's machine: checked strictly).

    ``mounts_at_root``: file mounts at absolute destinations (``/data``) are
    written to those real paths on the node (a VM skyplan created, whose boot
    script made them the login user's; files written in place, not replaced);
    False: under the sandbox's ``fs/`` (``SKYPLAN_FS_ROOT``), as on a machine
    that others share.
    """

    transport: Literal["local", "ssh"]
    rank: int = 0
    sandbox: str = ""
    host: str = ""
    port: int = 22
    user: str = ""
    identity_file: str | None = None
    known_hosts: str | None = None
    record_host_key: bool = False
    mounts_at_root: bool = False


@dataclass(frozen=True)
class NodeStatus:
    """A node's task: ``state``, and ``exit_code`` once it has ended.

    ``failed_phase`` is ``setup`` or ``run`` for a failed task; ``detail`` says
    why a node is unreachable (refused, timed out, host key changed ...).
    """

    rank: int
    state: NodeState
    exit_code: int | None = None
    failed_phase: str | None = None
    detail: str = ""

    @property
    def finished(self) -> bool:
        return self.state in ("succeeded", "failed", "stopped", "absent")

    def to_json(self) -> dict[str, object]:
        """The ``nodes[]`` item of ``status --json``."""
        return {"rank": self.rank, "status": self.state, "exit_code": self.exit_code}


@dataclass(frozen=True)
class TaskSpec:
    """What ``start`` runs on a node. ``envs`` and ``secrets`` reach the task's
    environment only (never a command line, a log or a file outside the
    node's private sandbox)."""

    cluster: str
    stack: str
    num_nodes: int = 1
    setup: str | None = None
    run: str | None = None
    envs: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    node_ips: tuple[str, ...] = ()
    #: Buckets (``{"dst", "name", "owner"}`` each): directories beside the node's
    #: sandbox that the task sees at ``dst``, in a private mount namespace (the
    #: runner's ``launch``); ``owner``: the managed job one made now belongs to.
    buckets: tuple[Mapping[str, str], ...] = ()


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: bytes


async def drain(stream: Any, on_output: Callable[[bytes], None] | None) -> bytes:
    """Read an asyncio-style ``stream`` to its end: each chunk goes to ``on_output``
    when given (then b"" is returned), else all of it is returned (``exec``)."""
    chunks: list[bytes] = []
    while chunk := await stream.read(65536):
        if on_output is not None:
            on_output(chunk)
        else:
            chunks.append(chunk)
    return b"".join(chunks)


class RuntimeFailure(Exception):
    """A runtime operation failed. ``code`` is stable (``SshUnreachable``,
    ``SshHostKeyChanged``, ``SshAuthFailed``, ``NodeSyncFailed`` ...) and starts
    the text, which is what the clouds' classifiers read."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@runtime_checkable
class NodeRuntime(Protocol):
    """One node. Every method is idempotent where it can be, and raises
    ``RuntimeFailure`` (never a transport's own exception) on failure, except
    ``status``, which reports an unreachable node as a state within its
    timeout."""

    address: NodeAddress

    async def sync(self, workdir: str | None, file_mounts: Mapping[str, str]) -> None:
        """Copy the workdir (a local directory) to the node's sandbox, and the
        file mounts that are plain local paths (destination -> source)."""

    async def start(self, task: TaskSpec) -> None:
        """Run ``setup`` then ``run``, detached, in the synced workdir with the
        SKYPLAN_* variables and the task's envs. The task outlives the
        connection."""

    async def status(self, timeout_s: float = DEFAULT_STATUS_TIMEOUT_S) -> NodeStatus:
        """The task's state; ``unreachable`` (never a hang) past ``timeout_s``."""

    async def read_log(self, offset: int = 0) -> tuple[bytes, int]:
        """The task's combined output from byte ``offset``, and the next offset."""

    def follow(self, offset: int = 0, poll_s: float = 0.5) -> AsyncIterator[bytes]:
        """Chunks of output from ``offset`` as they are written, until the task ends."""

    async def exec(self, command: str, timeout_s: float | None = None,
                   on_output: Callable[[bytes], None] | None = None) -> ExecResult:
        """Run ``command`` through bash in the node's workdir (stdout and stderr
        together). With ``on_output``, each chunk goes to it as it arrives (on
        the runtime loop's thread) and the result's ``output`` is empty."""

    async def stop(self) -> NodeStatus:
        """Stop the task (TERM, then KILL). Idempotent."""

    async def remove(self) -> None:
        """Stop the task and delete the node's sandbox. Idempotent."""

    async def close(self) -> None:
        """Release the connection (if any)."""
