"""The serve executor: how the service controller acts on the world.

The controller (``controller.py``) decides; a ``ServeExecutor`` does. It is
the jobs executor's Protocol (``skyplan.jobs.executor.Executor``: plan,
launch, check, cloud_says, teardown, tick) plus what serving needs:

* ``endpoint(cluster, port)``: where a replica's server answers, from its
  cloud's ``endpoint(outputs, port)`` hook (``CloudBase``): the node's own
  loopback port on clouds whose nodes share this machine (local, sim), the
  head's address and the declared port on VMs and ssh pools; None where the
  cloud cannot tell (yet);
* ``probe(url, cfg)``: one readiness probe, an HTTP GET (or a POST with the
  probe's ``post_data``) of ``cfg.probe_path`` with its headers, bounded by
  ``cfg.probe_timeout_s``; True for a 2xx answer.

``ProvisionServeExecutor`` is the real one: every launch and teardown goes
through ``skyplan.jobs.executor.ProvisionExecutor`` (the planner, the failover
loop, the journal and the Pulumi stacks of ``apply``). The fake is
``skyplan.testing.serve_fakes.FakeServeExecutor``. Nothing here prints.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from skyplan.jobs.executor import Check, CloudSays, ProvisionExecutor, RunLog
from skyplan.jobs.states import Placement

if TYPE_CHECKING:
    from skyplan.planner.plan import Plan
    from skyplan.spec.models import Task

__all__ = ["ServeExecutor", "ProvisionServeExecutor", "probe_url", "Check", "CloudSays", "RunLog"]


class ServeExecutor(Protocol):
    """What the service controller needs done. Every method may be called from
    the controller's worker threads at once for distinct clusters; each one but
    ``launch`` and ``teardown`` is bounded to a few seconds."""

    def plan(self, task: Task, options: Mapping[str, Any]) -> Plan:
        """The task planned against the catalog (``options``: simulate, backend,
        catalog, and ``use_spot``: the replica's market)."""
        ...

    def launch(self, cluster: str, plan: Plan, options: Mapping[str, Any], log: RunLog, *,
               env: Mapping[str, str] | None = None, stop: Callable[[], bool] | None = None) -> Placement:
        """Bring ``cluster`` up on the first candidate of ``plan`` that works and
        start the replica's task (``env`` joins its envs); blocking. Raises as
        ``skyplan.jobs.executor.Executor.launch`` does."""
        ...

    def check(self, cluster: str) -> Check:
        """The task's phase on ``cluster`` (has the server's process ended?), bounded."""
        ...

    def cloud_says(self, cluster: str) -> CloudSays:
        """What the cloud says of the cluster's node(s) (a preempted spot VM: STOPPED or GONE)."""
        ...

    def endpoint(self, cluster: str, port: int) -> str | None:
        """``http://HOST:PORT`` of the replica's server on ``cluster``, or None when unknown."""
        ...

    def probe(self, url: str, cfg: Any) -> bool:
        """One readiness probe of the replica at ``url`` (``cfg``: a ``ServiceConfig``)."""
        ...

    def pump_logs(self, cluster: str, log: RunLog) -> None:
        """Append the task's new output to ``log``."""
        ...

    def teardown(self, cluster: str) -> None:
        """Destroy ``cluster`` and verify nothing is left; a cluster that is not there is fine."""
        ...

    def tick(self) -> None:
        """Called once per controller pass (the sim's scenario preemptions due now)."""
        ...


def probe_url(url: str, cfg: Any) -> bool:
    """One HTTP readiness probe: GET ``url + cfg.probe_path`` (POST with
    ``cfg.probe_post_data`` when it is set), ``cfg.probe_headers`` added,
    bounded by ``cfg.probe_timeout_s``. True for a 2xx answer; any error,
    timeout or other status is False (the controller counts failures)."""
    path = str(getattr(cfg, "probe_path", "/") or "/")
    full = url.rstrip("/") + (path if path.startswith("/") else "/" + path)
    data = getattr(cfg, "probe_post_data", None)
    body = None
    headers = {str(k): str(v) for k, v in (getattr(cfg, "probe_headers", ()) or ())}
    if data is not None:
        body = data.encode() if isinstance(data, str) else bytes(data)
        headers.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(full, data=body, headers=headers, method="POST" if body is not None else "GET")
    timeout = float(getattr(cfg, "probe_timeout_s", 15.0) or 15.0)
    # No proxy from the environment: a probe goes straight to the replica.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as resp:
            resp.read(65536)  # let the server finish its answer; a probe's body is small
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError, ValueError):  # HTTPError (4xx/5xx) is a URLError
        return False
    except Exception:  # noqa: BLE001 - a malformed answer (http.client errors) is a failed probe
        return False


class ProvisionServeExecutor:
    """The real ServeExecutor: ``ProvisionExecutor`` for plan, launch, check,
    cloud_says, pump_logs, teardown and tick; the cluster's cloud for
    ``endpoint``; ``probe_url`` for ``probe``. ``kwargs`` go to ProvisionExecutor
    (``db``, ``check_timeout_s`` ...)."""

    def __init__(self, inner: ProvisionExecutor | None = None, **kwargs: Any) -> None:
        self.inner = inner if inner is not None else ProvisionExecutor(**kwargs)

    def plan(self, task: Task, options: Mapping[str, Any]) -> Plan:
        return self.inner.plan(task, dict(options))

    def launch(self, cluster: str, plan: Plan, options: Mapping[str, Any], log: RunLog, *,
               env: Mapping[str, str] | None = None, stop: Callable[[], bool] | None = None) -> Placement:
        # ``env`` is always given for a replica (``ProvisionExecutor`` derives one
        # only for a managed job's cluster name): an empty mapping, never None.
        return self.inner.launch(cluster, plan, options, log, env=dict(env or {}), stop=stop)

    def check(self, cluster: str) -> Check:
        return self.inner.check(cluster)

    def cloud_says(self, cluster: str) -> CloudSays:
        return self.inner.cloud_says(cluster)

    def endpoint(self, cluster: str, port: int) -> str | None:
        row = self.inner._row(cluster)
        if row is None or row.status != "UP":
            return None
        cloud = self.inner._runner(row)
        hook = getattr(cloud, "endpoint", None) if cloud is not None else None
        if hook is None:
            return None
        try:
            url = hook(row.outputs, int(port))
        except Exception:  # noqa: BLE001 - outputs the hook cannot read: not known yet
            return None
        return str(url) if url else None

    def probe(self, url: str, cfg: Any) -> bool:
        return probe_url(url, cfg)

    def pump_logs(self, cluster: str, log: RunLog) -> None:
        self.inner.pump_logs(cluster, log)

    def adopt(self, cluster: str, log: RunLog) -> None:
        """After a controller restart: ``log`` is the replica's log (teardown pumps it)."""
        self.inner.adopt(cluster, log)

    def teardown(self, cluster: str) -> None:
        self.inner.teardown(cluster)

    def tick(self) -> None:
        self.inner.tick()

    def close(self) -> None:
        self.inner.close()
