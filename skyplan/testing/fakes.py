"""Fakes for unit tests: a catalog over a list of offers, a scripted stack driver.

These stand in for collaborators inside unit tests only; the product itself
always runs the real catalog and the real Pulumi engine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from typing import Any, Callable, Collection, Iterable

from skyplan.catalog.model import CatalogInfo, Offer
from skyplan.provision.protocol import DEFAULT_DESTROY_TIMEOUT_S, EngineEventSink, InterruptedOp, UpResult


class FakeCatalog:
    """The Catalog query API over an explicit list of offers."""

    def __init__(self, offers: Iterable[Offer], fetched_at: str = "2026-01-01") -> None:
        self._offers = list(offers)
        digest = hashlib.sha256(repr(self._offers).encode()).hexdigest()
        self.info = CatalogInfo(source="fake", fetched_at=fetched_at, sha256=digest)

    def offers(self, *, clouds: Collection[str] | None = None, region: str | None = None, zone: str | None = None,
               instance_type: str | None = None, accelerator: str | None = None,
               accelerator_count: float | None = None, cpu_only: bool = False) -> list[Offer]:
        out = []
        for o in self._offers:
            if clouds is not None and o.cloud not in clouds:
                continue
            if region and o.region != region:
                continue
            if zone and o.zone != zone:
                continue
            if instance_type and o.instance_type != instance_type:
                continue
            if cpu_only and o.accelerator:
                continue
            if accelerator is not None:
                if not o.accelerator or o.accelerator.lower() != accelerator.lower():
                    continue
                if accelerator_count is not None and abs(o.accelerator_count - accelerator_count) > 1e-9:
                    continue
            out.append(o)
        return out

    def accelerator_names(self) -> list[str]:
        return sorted({o.accelerator for o in self._offers if o.accelerator})

    def canonical_accelerator(self, name: str) -> str | None:
        for n in self.accelerator_names():
            if n.lower() == name.lower():
                return n
        return None


def offer(cloud: str, instance_type: str, region: str, zone: str | None, *, vcpus: float = 8, mem: float = 32,
          acc: str | None = None, count: float = 0, price: float | None = 1.0,
          spot: float | None = 0.3) -> Offer:
    return Offer(cloud, instance_type, region, zone, vcpus, mem, acc, count if acc else 0, price, spot)


#: Scripts return the driver's own result type (``protocol.UpResult``, whose
#: fields all have defaults but ``ok``); the old name stays for tests.
FakeUp = UpResult


class FakeDriver:
    """A scripted stack driver: ``script(stack) -> UpResult``. It implements the
    same ``protocol.Driver`` as the real StackDriver (a test checks both), records
    every call and tracks which stacks hold resources, so tests can assert
    nothing is left. Thread-safe, like the real one."""

    backend_url: str

    def __init__(self, script: Callable[[str], UpResult], backend_url: str = "file:///fake") -> None:
        self.script = script
        self.backend_url = backend_url
        self.calls: list[tuple[str, str]] = []
        self.live: set[str] = set()
        self.fail_cleanup: set[str] = set()
        self.stack_outputs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def up(self, stack: str, program: Callable[[], None], *, timeout_s: float | None,
           on_event: EngineEventSink | None = None) -> UpResult:
        with self._lock:
            self.calls.append(("up", stack))
        res = self.script(stack)
        with self._lock:
            self.live.add(stack)  # even a failed up may leave a partial stack
            if res.ok:
                self.stack_outputs[stack] = dict(res.outputs)
        return dataclasses.replace(res, stack=res.stack or stack)

    def outputs(self, stack: str) -> dict[str, Any]:
        """The outputs of the stack's last successful up (the program is not run:
        nothing it exports itself is there)."""
        with self._lock:
            self.calls.append(("outputs", stack))
            return dict(self.stack_outputs.get(stack, {}))

    def destroy_and_remove(self, stack: str, *, timeout_s: float | None = DEFAULT_DESTROY_TIMEOUT_S,
                           on_event: EngineEventSink | None = None,
                           resolve_interrupted: Callable[[InterruptedOp], bool] | None = None,
                           forget_interrupted: bool = False) -> None:
        from skyplan.errors import CleanupError

        with self._lock:
            self.calls.append(("destroy", stack))
            if stack in self.fail_cleanup:
                raise CleanupError(f"stack {stack} still has 1 resource after destroy", stack=stack,
                                   resources=[f"urn:fake::{stack}"])
            self.live.discard(stack)

    def list_stacks(self, prefix: str = "") -> list[str]:
        with self._lock:
            return sorted(s for s in self.live if s.startswith(prefix))
