"""A forked child never finalizes an object it inherited (``forked.run``): another
thread of the parent may hold a lock such a finalizer needs at the moment of the
fork (SQLite's allocator mutex, under a jobs controller whose threads use SQLite
all the time), and in the child that lock is never released."""

from __future__ import annotations

import gc
import threading

from skyplan.provision import forked


def _collect(emit) -> str:  # noqa: ANN001
    gc.collect()
    return "collected"


def test_a_child_does_not_collect_garbage_it_inherited() -> None:
    held = threading.Lock()

    class NeedsTheLock:
        def __del__(self) -> None:
            with held:
                pass

    acquired, release = threading.Event(), threading.Event()

    def holder() -> None:
        with held:
            acquired.set()
            release.wait()

    gc.disable()  # the cycle below must still be garbage, uncollected, at the fork
    thread = threading.Thread(target=holder)
    try:
        cyc = NeedsTheLock()
        cyc.me = cyc  # only the garbage collector frees a cycle
        del cyc
        thread.start()
        acquired.wait(10)
        result = forked.run(_collect, timeout_s=15, grace_s=1)
    finally:
        release.set()
        if thread.is_alive():
            thread.join(10)
        gc.enable()
        gc.collect()
    assert not result.timed_out and result.value == "collected", result
