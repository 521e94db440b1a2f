"""The node runtime over SSH (asyncssh): a sandbox on another machine.

The remote sandbox has the local layout (``skyplan.clouds.local.runner``) at
``~/.skyplan/sandboxes/<stack>/node-<rank>`` (``remote_sandbox``), and the same
supervisor runs it: the runner file, stdlib-only, is uploaded once per content
hash to ``~/.skyplan/runtime/runner-<sha12>.py`` and driven with
``python3 -I -S runner.py serve``: one long-lived process per connection that
answers JSON requests (start, status, stop, remove, read) line by line, so a
``status`` is one round trip on an open channel. The node spec, envs and
secrets included, travels inside a request, never on a command line.
The host needs ``python3``, ``bash`` and ``tar``.

- **sync** streams one tar (Python's ``tarfile``, under
  ``skyplan.clouds.workdir``'s link policy: links inside the workdir are kept,
  rewritten relative; links leaving it are refused before anything is sent)
  into ``tar -x`` on the host, into a fresh sandbox (the runner's ``remove``
  first). File mounts that are plain paths go where the local runner puts them
  (``runner.mount_path``): ``/data`` at ``fs/data`` (``$SKYPLAN_FS_ROOT``),
  ``~/x`` and relative ones in the workdir. One stream is one round trip for
  any number of files; SFTP costs one per file (``bench/ssh_runtime.py``).
- **Connections**: one per node, opened on first use, reused by every call,
  re-opened after a drop. Every node of a process runs on one event loop
  (``sync_api``): no thread per node.
- **Host keys**: checked against ``address.known_hosts`` (default
  ``~/.ssh/known_hosts``). A user's machine must be in it (strict); with
  ``address.record_host_key`` (a VM skyplan created, the file its cluster's
  ``cluster_known_hosts``) a host with no entry has its key recorded on first
  contact, and checked strictly from then on. ``forget_cluster`` deletes the
  file (``down``).
- **Failures** are ``RuntimeFailure`` with a stable code: ``SshUnreachable``
  (refused, timed out, unresolvable, connection lost), ``SshHostKeyChanged``,
  ``SshHostKeyUnknown``, ``SshAuthFailed``, ``NodeSyncFailed``,
  ``NodeStartFailed``, ``NodeExecTimeout``. ``status`` never raises: past its
  timeout or on any of these it is ``unreachable``, with the reason in
  ``detail``.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import hashlib
import io
import json
import os
import posixpath
import shlex
import socket
import tarfile
import threading
from pathlib import Path, PurePosixPath
from typing import Any, AsyncIterator, Callable, Mapping

import asyncssh

from skyplan.clouds import workdir as workdir_policy
from skyplan.clouds.local import runner
from skyplan.runtime.local import READ_CHUNK, node_status, spec_json
from skyplan.runtime.protocol import (
    DEFAULT_STATUS_TIMEOUT_S,
    ExecResult,
    NodeAddress,
    NodeStatus,
    RuntimeFailure,
    TaskSpec,
    drain,
)

#: Bound on opening a connection (TCP, key exchange, authentication), seconds.
DEFAULT_CONNECT_TIMEOUT_S = DEFAULT_STATUS_TIMEOUT_S
#: Keepalives notice a vanished machine on an idle connection (interval x count seconds).
KEEPALIVE_INTERVAL_S = 15
KEEPALIVE_COUNT = 3

_RUNNER_SRC = Path(runner.__file__).read_bytes()
RUNNER_SHA = hashlib.sha256(_RUNNER_SRC).hexdigest()[:12]
#: The runner on the host, relative to the login's home.
RUNNER_REMOTE = f".skyplan/runtime/runner-{RUNNER_SHA}.py"
#: The exit status of a runner call when the runner is not on the host yet.
_NO_RUNNER = 97
#: The runner's request loop, one per connection.
_SERVE = f'R="$HOME/{RUNNER_REMOTE}"; [ -f "$R" ] || exit {_NO_RUNNER}; exec python3 -I -S "$R" serve'
#: Closed tar streams are written in pieces of this size.
_TAR_PIECE = 256 * 1024


def remote_sandbox(stack: str, rank: int) -> str:
    """A node's sandbox on its host (``~`` is the login's home)."""
    return f"~/.skyplan/sandboxes/{stack}/node-{rank}"


def cluster_known_hosts(cluster: str) -> Path:
    """The known_hosts file of a cluster whose machines skyplan created:
    ``$SKYPLAN_HOME/ssh/known_hosts.d/<cluster>``."""
    from skyplan.home import home

    return home() / "ssh" / "known_hosts.d" / cluster


def forget_cluster(cluster: str) -> None:
    """Delete the host keys recorded for ``cluster`` (its machines are gone)."""
    try:
        cluster_known_hosts(cluster).unlink()
    except FileNotFoundError:
        pass


def _sh_path(path: str) -> str:
    """``path`` for a POSIX shell: quoted, with a leading ``~`` as ``"$HOME"``."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


def _host_pattern(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


class _Client(asyncssh.SSHClient):
    """Decides about a host key that the known_hosts file does not trust."""

    def __init__(self, node: SshNode) -> None:
        self.node = node

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        return self.node._untrusted_host_key(host, addr, port, key)


class SshNode:
    """A node reached over SSH; ``address.sandbox`` defaults to
    ``remote_sandbox`` of the task's stack (set it for ``status`` and friends
    before any ``start``)."""

    def __init__(self, address: NodeAddress, *, connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S) -> None:
        if not address.host:
            raise RuntimeFailure("NodeAddressInvalid", "an SSH node's address needs a host")
        self.address = address
        self.root = address.sandbox
        self.connect_timeout_s = connect_timeout_s
        self._conn: asyncssh.SSHClientConnection | None = None
        self._lock: asyncio.Lock | None = None
        self._call_lock: asyncio.Lock | None = None
        self._serve: asyncssh.SSHClientProcess | None = None
        self._host_key_problem: str | None = None

    # --- the connection -------------------------------------------------------------

    @property
    def where(self) -> str:
        a = self.address
        return f"{a.user + '@' if a.user else ''}{a.host}:{a.port}"

    @property
    def known_hosts(self) -> str:
        return os.path.expanduser(self.address.known_hosts or "~/.ssh/known_hosts")

    def _untrusted_host_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        """A key not trusted by the file: a recorded host with another key is
        refused (changed); an unknown host is recorded when the address says
        so, else refused (unknown)."""
        path = self.known_hosts
        try:
            known = asyncssh.read_known_hosts(path).match(host, addr, port)[0] if os.path.exists(path) else []
        except (OSError, ValueError):
            known = []
        if known:
            self._host_key_problem = "changed"
            return False
        if not self.address.record_host_key:
            self._host_key_problem = "unknown"
            return False
        kind, data = key.export_public_key("openssh").decode().split()[:2]
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, f"{_host_pattern(host, port)} {kind} {data}\n".encode())
        finally:
            os.close(fd)
        return True

    def _known_hosts_arg(self) -> Any:
        path = self.known_hosts
        if os.path.exists(path):
            return path
        # No file yet: trust nothing, so every key reaches _untrusted_host_key.
        return ([], [], [])

    async def _connect(self) -> asyncssh.SSHClientConnection:
        a = self.address
        self._host_key_problem = None
        keys = None
        if a.identity_file:
            ident = os.path.expanduser(a.identity_file)
            if not os.path.isfile(ident):
                raise RuntimeFailure("SshAuthFailed", f"identity file {a.identity_file} for {self.where} does not "
                                     "exist: fix the identity_file of this host")
            keys = [ident]
        try:
            return await asyncssh.connect(
                a.host, port=a.port, username=a.user or None, client_keys=keys,
                known_hosts=self._known_hosts_arg(), client_factory=lambda: _Client(self),
                connect_timeout=self.connect_timeout_s,
                keepalive_interval=KEEPALIVE_INTERVAL_S, keepalive_count_max=KEEPALIVE_COUNT,
            )
        except Exception as e:  # noqa: BLE001 - every transport error becomes a RuntimeFailure
            raise self._failure(e) from None

    def _failure(self, e: BaseException) -> RuntimeFailure:
        """A connection error as a RuntimeFailure with a stable code and a next step."""
        if isinstance(e, RuntimeFailure):
            return e
        where = self.where
        if isinstance(e, asyncssh.HostKeyNotVerifiable):
            kh = self.known_hosts
            pattern = _host_pattern(self.address.host, self.address.port)
            if self._host_key_problem == "unknown":
                return RuntimeFailure(
                    "SshHostKeyUnknown",
                    f"{where} is not in {kh}, and the host keys of your own machines are checked strictly: "
                    f"after checking its fingerprint, add it with `ssh-keyscan -p {self.address.port} "
                    f"{self.address.host} >> {kh}` (or connect once with ssh)")
            return RuntimeFailure(
                "SshHostKeyChanged",
                f"the host key of {where} is not the one recorded in {kh}: the machine was replaced or "
                f"reinstalled, or someone is intercepting the connection. Nothing was sent to it. If the "
                f"change is expected, remove the old key with `ssh-keygen -R '{pattern}' -f {kh}` and retry")
        if isinstance(e, asyncssh.KeyImportError):
            return RuntimeFailure(
                "SshAuthFailed",
                f"cannot use the identity file {self.address.identity_file} for {where} ({e}): a key with a "
                "passphrase must be loaded into ssh-agent instead, or give a key file without one")
        if isinstance(e, asyncssh.PermissionDenied):
            return RuntimeFailure(
                "SshAuthFailed",
                f"{where} refused the login (user {self.address.user or '(default)'}, key "
                f"{self.address.identity_file or '(default keys)'}): check the host's user and identity_file, "
                "and that the public key is in the user's ~/.ssh/authorized_keys there")
        return RuntimeFailure("SshUnreachable", f"{where}: {self._reason(e)}")

    def _reason(self, e: BaseException) -> str:
        if isinstance(e, (asyncio.TimeoutError, TimeoutError)):
            return f"timed out after {self.connect_timeout_s:g} s"
        if isinstance(e, socket.gaierror):
            return f"cannot resolve the host name ({e.strerror or e})"
        if isinstance(e, ConnectionRefusedError) or getattr(e, "errno", None) == errno.ECONNREFUSED:
            return "connection refused"
        if isinstance(e, asyncssh.ConnectionLost):
            return "connection lost"
        if isinstance(e, asyncssh.DisconnectError):
            return f"disconnected ({e.reason})"
        if isinstance(e, OSError):
            return e.strerror or str(e)
        return f"{type(e).__name__}: {e}"

    async def _connection(self) -> asyncssh.SSHClientConnection:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._conn is None or self._conn.is_closed():
                self._drop()
                self._conn = await self._connect()
            return self._conn

    def _drop(self) -> None:
        self._drop_serve()
        if self._conn is not None:
            self._conn.abort()
        self._conn = None

    def _drop_serve(self) -> None:
        if self._serve is not None:
            self._serve.close()
        self._serve = None

    async def _run(self, command: str, stdin: bytes | None = None, *, retry: bool = True,
                   timeout_s: float | None = None) -> asyncssh.SSHCompletedProcess:
        """``command`` on the host through the login shell. ``retry``: the call is
        idempotent, so a connection that turns out dropped is re-opened once."""
        for attempt in (0, 1):
            conn = await self._connection()
            try:
                return await conn.run(command, input=stdin, check=False, encoding=None, timeout=timeout_s)
            except asyncssh.TimeoutError:
                raise
            except (asyncssh.ConnectionLost, asyncssh.DisconnectError, asyncssh.ChannelOpenError,
                    BrokenPipeError, ConnectionResetError) as e:
                self._drop()
                if not retry or attempt:
                    raise self._failure(e) from None
        raise AssertionError("unreachable")

    # --- the runner on the host -----------------------------------------------------

    def _root(self, task: TaskSpec | None = None) -> str:
        if not self.root:
            if task is None:
                raise RuntimeFailure("NodeAddressInvalid", f"no sandbox known for node {self.address.rank} "
                                     f"on {self.where}: give the address its sandbox")
            self.root = remote_sandbox(task.stack, self.address.rank)
        return self.root

    async def _upload_runner(self) -> None:
        tmp = f"$HOME/{RUNNER_REMOTE}.$$.tmp"
        cmd = (f'umask 077 && mkdir -p "$HOME/.skyplan/runtime" && cat > "{tmp}" && '
               f'mv -f "{tmp}" "$HOME/{RUNNER_REMOTE}"')
        res = await self._run(cmd, _RUNNER_SRC)
        if res.exit_status != 0:
            raise RuntimeFailure("NodeStartFailed", f"cannot install skyplan's runner on {self.where}: "
                                 f"{_text(res.stderr)}")

    async def _runner(self, op: str, root: str, *, retry: bool = True, **fields: Any) -> dict[str, Any]:
        """One request to the runner's ``serve`` process on the host (started on
        this connection at first use, the runner uploaded first if the host lacks
        this version) and its JSON answer. ``retry``: the request is idempotent,
        so a channel found dead is re-opened once."""
        if self._call_lock is None:
            self._call_lock = asyncio.Lock()
        request = (json.dumps({"op": op, "root": root, **fields}) + "\n").encode()
        uploaded = retried = False
        async with self._call_lock:
            while True:
                try:
                    if self._serve is None:
                        conn = await self._connection()
                        self._serve = await conn.create_process(_SERVE, encoding=None)
                    proc = self._serve
                    proc.stdin.write(request)
                    line = await proc.stdout.readline()
                except asyncio.CancelledError:
                    self._drop_serve()  # an answer may still come: this channel is out of step
                    raise
                except (asyncssh.Error, OSError) as e:
                    self._drop_serve()
                    if retry and not retried:
                        retried = True
                        continue
                    raise self._failure(e) from None
                if line:
                    break
                # The channel ended without an answer: no runner yet, no python3, or a drop.
                try:
                    await asyncio.wait_for(proc.wait(), 5)
                except (asyncio.TimeoutError, asyncssh.Error, OSError):
                    pass
                rc = proc.exit_status
                self._drop_serve()
                if rc == _NO_RUNNER and not uploaded:  # the request never ran: safe to send again
                    uploaded = True
                    await self._upload_runner()
                    continue
                if rc == 127:
                    raise RuntimeFailure("NodeStartFailed", f"python3 is not installed on {self.where}: "
                                         "skyplan's runner needs it (install python3 there)")
                if retry and not retried:
                    retried = True
                    continue
                raise RuntimeFailure("SshUnreachable", f"{self.where}: the connection ended during {op} "
                                     f"(exit {rc})")
        try:
            out = json.loads(line)
        except ValueError:
            raise RuntimeFailure("NodeRuntimeFailed", f"runner {op} on {self.where} answered "
                                 f"{_text(line)[:200]!r}") from None
        if "error" in out:
            raise RuntimeFailure("NodeStartFailed" if op == "start" else "NodeRuntimeFailed",
                                 f"{self.where}: {out['error']}")
        return out

    # --- the protocol ---------------------------------------------------------------

    async def sync(self, workdir: str | None, file_mounts: Mapping[str, str]) -> None:
        root = self._root()
        at_root = {d: src for d, src in file_mounts.items() if self.address.mounts_at_root and d.startswith("/")}
        in_box = {d: src for d, src in file_mounts.items() if d not in at_root}
        # Refuses bad links, missing sources and mounts leaving the sandbox before anything is sent.
        entries = _sync_entries(workdir, in_box)
        placed = [_root_mount(dst, src) for dst, src in sorted(at_root.items())]
        await self._runner("remove", root)  # a fresh sandbox: stops and deletes an earlier one
        r = _sh_path(root)
        try:
            await self._stream(f"umask 077 && mkdir -p {r} && exec tar -x --no-same-owner -f - -C {r}",
                               lambda out: _write_tar(entries, out))
            for dst, src, tree in placed:
                # Written in place: the boot script made these paths the login user's, not their parents.
                d = shlex.quote(dst)
                if tree is None:
                    await self._stream(f"cat > {d}", lambda out, src=src: _copy_file(src, out))
                else:
                    await self._stream(f"mkdir -p {d} 2>/dev/null; exec tar -x --no-same-owner -f - -C {d}",
                                       lambda out, tree=tree: _write_tar(tree, out))
        except RuntimeFailure:
            await self._runner("remove", root)
            raise

    async def _stream(self, command: str, produce: Any) -> None:
        """Run ``command`` on the host with stdin fed by ``produce(file)`` (run in
        a thread: tarfile and file reads block), streamed with back-pressure.
        Raises RuntimeFailure("NodeSyncFailed")."""
        conn = await self._connection()
        try:
            proc = await conn.create_process(command, encoding=None)
        except (asyncssh.Error, OSError) as e:
            self._drop()
            raise self._failure(e) from None
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(maxsize=8)
        cancel = threading.Event()
        producer = threading.Thread(target=_produce, args=(produce, loop, queue, cancel), daemon=True,
                                    name="skyplan-sync")
        producer.start()
        failure: BaseException | None = None
        res: asyncssh.SSHCompletedProcess | None = None
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    failure = item
                    break
                proc.stdin.write(item)
                await proc.stdin.drain()
            if failure is None:
                proc.stdin.write_eof()
                res = await proc.wait()
        except (asyncssh.Error, OSError) as e:
            self._drop()
            raise RuntimeFailure("NodeSyncFailed", f"{self.where}: {self._reason(e)} while sending files") from None
        finally:
            if res is None:  # stopped early: the producer may be waiting on a full queue
                cancel.set()
                proc.close()
                while producer.is_alive():  # let the producer see the end and stop
                    try:
                        queue.get_nowait()
                    except asyncio.QueueEmpty:
                        await asyncio.sleep(0.01)
        if failure is not None:
            raise RuntimeFailure("NodeSyncFailed", str(failure)) from None
        assert res is not None
        if res.exit_status != 0:
            raise RuntimeFailure("NodeSyncFailed", f"`{command.split(' && ')[-1][:80]}` on {self.where} exited "
                                 f"{res.exit_status}: {_text(res.stderr)}")

    async def start(self, task: TaskSpec) -> None:
        root = self._root(task)
        # The spec (envs, secrets) travels inside the request, on the channel: never a command line.
        # Not retried: a start whose answer was lost may have started the task.
        await self._runner("start", root, spec=spec_json(self.address, task), retry=False)

    async def status(self, timeout_s: float = DEFAULT_STATUS_TIMEOUT_S) -> NodeStatus:
        rank = self.address.rank
        try:
            st = await asyncio.wait_for(self._runner("status", self._root()), timeout_s)
        except asyncio.TimeoutError:
            self._drop()  # a half-open connection would time out again
            return NodeStatus(rank, "unreachable", detail=f"SshUnreachable: {self.where}: no answer within "
                              f"{timeout_s:g} s")
        except RuntimeFailure as e:
            return NodeStatus(rank, "unreachable", detail=str(e))
        return node_status(rank, st)

    async def read_log(self, offset: int = 0) -> tuple[bytes, int]:
        out = await self._runner("read", self._root(), offset=int(offset), limit=READ_CHUNK)
        return base64.b64decode(out["data"]), int(out["offset"])

    async def follow(self, offset: int = 0, poll_s: float = 0.5) -> AsyncIterator[bytes]:
        while True:
            st = await self.status()
            data, offset = await self.read_log(offset)
            while data:
                yield data
                data, offset = await self.read_log(offset)
            if st.state == "unreachable":
                raise RuntimeFailure(st.detail.split(":", 1)[0] or "SshUnreachable",
                                     st.detail.split(": ", 1)[-1])
            if st.finished:
                return
            await asyncio.sleep(poll_s)

    async def exec(self, command: str, timeout_s: float | None = None,
                   on_output: Callable[[bytes], None] | None = None) -> ExecResult:
        """``on_output``, if given, gets each chunk of output as it arrives (on
        the loop's thread) and the result's ``output`` is empty."""
        root = self._root()
        fs = "" if self.address.mounts_at_root else f"SKYPLAN_FS_ROOT={_sh_path(root + '/fs')} "
        cmd = f"cd {_sh_path(root + '/workdir')} 2>/dev/null || cd; {fs}exec bash -c {shlex.quote(command)} 2>&1"
        conn = await self._connection()
        try:
            proc = await conn.create_process(cmd, encoding=None, stdin=asyncssh.DEVNULL)
        except (asyncssh.Error, OSError) as e:
            self._drop()
            raise self._failure(e) from None
        try:
            output, _ = await asyncio.wait_for(asyncio.gather(drain(proc.stdout, on_output), proc.wait()), timeout_s)
        except asyncio.TimeoutError:
            proc.close()
            raise RuntimeFailure("NodeExecTimeout", f"`{command}` did not finish on {self.where} within "
                                 f"{timeout_s:g} s") from None
        except (asyncssh.Error, OSError) as e:
            self._drop()
            raise self._failure(e) from None
        code = proc.exit_status if proc.exit_status is not None else 255
        return ExecResult(code, output)

    async def stop(self) -> NodeStatus:
        return node_status(self.address.rank, await self._runner("stop", self._root()))

    async def release_owned(self, owner: str, since: float = 0.0) -> list[str]:
        """Delete the buckets on the host (``~/.skyplan/buckets``) made for managed
        job ``owner`` at or after ``since`` (the runner's ``release_owned``); their names."""
        out = await self._runner("release_owned", "~/.skyplan", owner=owner, since=since)
        return [str(n) for n in out.get("released") or []]

    async def remove(self) -> None:
        await self._runner("remove", self._root())

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            try:
                await asyncio.wait_for(conn.wait_closed(), 5)
            except (asyncio.TimeoutError, OSError, asyncssh.Error):
                pass


def _text(data: Any) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace").strip()
    return (data or "").strip()


# --- the tar stream ---------------------------------------------------------------------


def _tree(src: str, arc: str) -> list[tuple[str, str, str | None]]:
    """(arcname, path, rewritten link text or None) for ``src`` and everything
    under it, placed at ``arc``; links are kept and point at the same file in
    the copy; links leaving ``src`` raise WorkdirLinkError."""
    root = os.path.realpath(src)
    bad = workdir_policy.outside_links(root)
    if bad:
        raise workdir_policy.WorkdirLinkError(src, bad)
    out: list[tuple[str, str, str | None]] = [(arc, root, None)]
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in dirnames + sorted(filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            link = None
            if os.path.islink(path):
                target = os.path.realpath(path)
                if target != root and not target.startswith(root.rstrip(os.sep) + os.sep):
                    raise workdir_policy.WorkdirLinkError(src, [(rel, os.readlink(path))])  # made meanwhile
                link = os.path.relpath(target, os.path.dirname(path))
            out.append((f"{arc}/{PurePosixPath(*Path(rel).parts)}", path, link))
    return out


def _sync_entries(workdir: str | None, file_mounts: Mapping[str, str]) -> list[tuple[str, str, str | None]]:
    """What the sandbox receives, as tar members in order: the workdir, then
    each file mount over it. Raises RuntimeFailure("NodeSyncFailed") for a
    missing source, a bad link or a mount leaving the sandbox, before anything
    reaches the host."""
    try:
        if workdir and not os.path.isdir(workdir):
            raise RuntimeFailure("NodeSyncFailed", f"workdir '{workdir}' is not a directory")
        entries: list[tuple[str, str, str | None]] = []
        if workdir:
            entries = _tree(workdir, "workdir")
        for dst, src in sorted(file_mounts.items()):
            try:
                arc = str(runner.mount_path("/sandbox", dst).relative_to("/sandbox"))
            except runner.SandboxError as e:
                raise RuntimeFailure("NodeSyncFailed", str(e)) from None
            if not os.path.exists(src):
                raise RuntimeFailure("NodeSyncFailed", f"file mount '{dst}': source '{src}' does not exist")
            entries = [e for e in entries if e[0] != arc and not e[0].startswith(arc + "/")]
            if os.path.isdir(src):
                entries += _tree(src, arc)
            else:
                entries.append((arc, os.path.realpath(src), None))
    except workdir_policy.WorkdirLinkError as e:
        raise RuntimeFailure("NodeSyncFailed", f"{e}; {workdir_policy.ADVICE}") from None
    return entries


def _root_mount(dst: str, src: str) -> tuple[str, str, list[tuple[str, str, str | None]] | None]:
    """A mount written at its real path (``mounts_at_root``): (destination,
    source, its tar entries for a directory or None for a file)."""
    path = posixpath.normpath(dst)
    if not path.startswith("/") or path == "/":
        raise RuntimeFailure("NodeSyncFailed", f"file mount '{dst}' is not a path below /")
    if not os.path.exists(src):
        raise RuntimeFailure("NodeSyncFailed", f"file mount '{dst}': source '{src}' does not exist")
    if not os.path.isdir(src):
        return path, src, None
    try:
        tree = [e for e in _tree(src, ".") if e[0] != "."]  # the directory itself is the boot script's
    except workdir_policy.WorkdirLinkError as e:
        raise RuntimeFailure("NodeSyncFailed", f"file mount '{dst}': {e}; {workdir_policy.ADVICE}") from None
    return path, src, tree


class _QueueWriter(io.RawIOBase):
    """A file whose writes go to an asyncio queue on ``loop`` (blocking while it is full)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any], cancel: threading.Event) -> None:
        self.loop, self.queue, self.cancel = loop, queue, cancel

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        if self.cancel.is_set():
            raise OSError("sync cancelled")
        data = bytes(b)
        asyncio.run_coroutine_threadsafe(self.queue.put(data), self.loop).result()
        return len(data)


def _produce(produce: Any, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any],
             cancel: threading.Event) -> None:
    """Producer thread: ``produce(file)`` writes into ``queue`` through a
    buffered file, then None (or the exception that stopped it) ends it."""
    def put(item: Any) -> None:
        if cancel.is_set():
            return
        try:
            asyncio.run_coroutine_threadsafe(queue.put(item), loop).result(timeout=60)
        except Exception:  # noqa: BLE001 - the consumer is gone
            pass

    try:
        out = io.BufferedWriter(_QueueWriter(loop, queue, cancel), buffer_size=_TAR_PIECE)
        produce(out)
        out.flush()
    except BaseException as e:  # noqa: BLE001 - handed to the consumer
        put(e if isinstance(e, Exception) else RuntimeError(str(e)))
        return
    put(None)


def _copy_file(src: str, out: Any) -> None:
    with open(src, "rb") as fh:
        while chunk := fh.read(_TAR_PIECE):
            out.write(chunk)


def _write_tar(entries: list[tuple[str, str, str | None]], out: Any) -> None:
    """``entries`` as a tar stream into ``out``. Modes keep the owner's bits
    only, as the local runner's copies do; owners are not carried."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for arc, path, link in entries:
            ti = tar.gettarinfo(path, arcname=arc)
            if ti.issym():
                if link is None:
                    continue
                ti.linkname = link
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            if not ti.issym():
                ti.mode &= 0o700
            if ti.isreg():
                with open(path, "rb") as fh:
                    tar.addfile(ti, fh)
            else:
                tar.addfile(ti)
