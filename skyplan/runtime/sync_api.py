"""The node runtime from plain (blocking) code.

The runtime's methods are coroutines (``skyplan.runtime.protocol``). Code that
is not async itself (the CLI, a dynamic provider, launch) runs them on one
process-wide event loop, in a daemon thread started on first use::

    from skyplan.runtime import sync_api
    node = sync_api.open_node(address)
    st = sync_api.run(node.status())
    for chunk in sync_api.follow(node):
        ...

Every node opened in a process shares that loop, so a controller watching many
nodes holds one thread, whatever their number; an SSH node keeps its one
connection across calls (``open_node`` returns the same object for the same
address). A forked child (the engine's providers fork) gets a loop of its own
on first use: the parent's thread and connections do not exist there.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from typing import Any, AsyncIterator, Coroutine, Iterator, TypeVar

from skyplan.runtime.protocol import NodeAddress, NodeRuntime, RuntimeFailure

T = TypeVar("T")

#: Threads of the loop's default executor (blocking file and name-lookup work).
IO_THREADS = 4

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None
_nodes: dict[NodeAddress, NodeRuntime] = {}


def _forget_after_fork() -> None:
    """In a forked child: the parent's loop thread and connections do not exist
    here, and the lock may have been held by one of its threads at the fork."""
    global _lock, _loop, _loop_pid
    _lock = threading.Lock()
    _loop, _loop_pid = None, None
    _nodes.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def loop() -> asyncio.AbstractEventLoop:
    """The process's runtime loop, started (in a daemon thread) on first use."""
    global _loop, _loop_pid
    with _lock:
        if _loop is None or _loop_pid != os.getpid() or _loop.is_closed():
            new = asyncio.new_event_loop()
            # Blocking work (file copies, name lookups) runs on a few shared threads, never one per node.
            new.set_default_executor(
                concurrent.futures.ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="skyplan-runtime-io"))
            started = threading.Event()

            def _serve() -> None:
                asyncio.set_event_loop(new)
                new.call_soon(started.set)
                new.run_forever()

            threading.Thread(target=_serve, name="skyplan-runtime", daemon=True).start()
            started.wait()
            _loop, _loop_pid = new, os.getpid()
            _nodes.clear()  # a fork's copies belong to the parent's loop
        return _loop


def run(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` on the runtime loop and return its result (or raise its
    exception). Past ``timeout`` seconds it is cancelled and
    ``RuntimeFailure("RuntimeTimeout", ...)`` is raised. Must not be called
    from the loop's own thread (it would wait on itself)."""
    lp = loop()
    if threading.current_thread().name == "skyplan-runtime":
        coro.close()
        raise RuntimeError("sync_api.run called from the runtime loop; await the coroutine instead")
    fut = asyncio.run_coroutine_threadsafe(coro, lp)
    try:
        return fut.result(timeout)
    except concurrent.futures.TimeoutError:
        fut.cancel()
        raise RuntimeFailure("RuntimeTimeout", f"the operation did not finish within {timeout:g} s") from None
    except BaseException:
        if not fut.done():  # KeyboardInterrupt while waiting: do not leave it running
            fut.cancel()
        raise


def open_node(address: NodeAddress, *, fresh: bool = False) -> NodeRuntime:
    """The runtime of the node at ``address``: the transport its
    ``address.transport`` names. The same address gives the same object (and,
    over SSH, the same connection) for the life of the process, unless
    ``fresh``."""
    loop()  # resets the cache in a forked child
    with _lock:
        node = None if fresh else _nodes.get(address)
        if node is None:
            node = _make(address)
            if not fresh:
                _nodes[address] = node
        return node


def _make(address: NodeAddress) -> NodeRuntime:
    if address.transport == "local":
        from skyplan.runtime.local import LocalNode

        return LocalNode(address)
    if address.transport == "ssh":
        from skyplan.runtime.ssh import SshNode

        return SshNode(address)
    raise RuntimeFailure("RuntimeUnknownTransport", f"no node runtime for transport {address.transport!r}")


def follow(node: NodeRuntime, offset: int = 0, poll_s: float = 0.5) -> Iterator[bytes]:
    """``node.follow(offset)`` as a plain iterator of chunks (blocking between
    them), until the task has ended."""
    agen: AsyncIterator[bytes] = node.follow(offset, poll_s)
    try:
        while True:
            try:
                yield run(agen.__anext__())
            except StopAsyncIteration:
                return
    finally:
        try:
            run(agen.aclose())  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - closing a finished or failed generator
            pass


def close_all() -> None:
    """Close every node opened through ``open_node`` (their connections)."""
    with _lock:
        nodes = list(_nodes.values())
        _nodes.clear()
    for node in nodes:
        try:
            run(node.close(), timeout=10)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
