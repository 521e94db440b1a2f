"""The ssh cloud: machines you already have, in pools of the config file.

``resources: {cloud: ssh, region: POOL}`` places a task on ``num_nodes`` hosts
of the pool (``pools.py``): each host is a zone, so an unreachable or busy
host is a capacity failure of that zone and failover moves on to the next
host. Offers come from the pools, not the catalog (``hardware.py``); a host is
taken in a ledger while a cluster runs on it (``ledger.py``) and the task runs
in a sandbox under ``~/.skyplan/sandboxes/`` on the host, through the node
runtime over SSH (``provider.py``, ``stacks/ssh/program.py``). Like ``local``,
it is a candidate only when a task names it.

Its error texts start with a stable code, from the provider or the runtime.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Callable, Mapping

from skyplan.clouds.capabilities import Capabilities, CloudBase
from skyplan.errors import Classification, Kind, Scope

if TYPE_CHECKING:
    from skyplan.catalog.model import Offer
    from skyplan.clouds.base import LogSource, PreflightResult, ProvisionRequest

# (pattern, code, kind, scope); first match wins; code "*" is the matched text itself.
_RULES: tuple[tuple[str, str, Kind, Scope], ...] = (
    # A machine that is off, gone or firewalled: that host's capacity; the next host is tried.
    (r"SshUnreachable", "SshUnreachable", Kind.CAPACITY, Scope.ZONE),
    (r"SshHostBusy", "SshHostBusy", Kind.CAPACITY, Scope.ZONE),
    # Too few free hosts of the pool's hardware for num_nodes: every host of the pool would say so.
    (r"SshPoolFull", "SshPoolFull", Kind.CAPACITY, Scope.REGION),
    # A host key is one host's: that host is skipped (never retried), the others are checked on their own.
    (r"SshHostKey\w*", "*", Kind.AUTH, Scope.ZONE),
    # A refused login: the pool when its hosts share the user and key (each would refuse alike), else the host.
    (r"SshAuthFailed.*every host of pool", "SshAuthFailed", Kind.AUTH, Scope.REGION),
    (r"SshAuthFailed", "SshAuthFailed", Kind.AUTH, Scope.ZONE),
    (r"SshPoolUnknown|SshHostUnknown", "SshPoolUnknown", Kind.INVALID, Scope.CLOUD),
    # The task's own sources (a missing workdir or mount source, a link leaving it): the same on every host.
    (r"NodeSyncFailed: .*(is not a directory|does not exist|link)|NodeAddressInvalid", "NodeSyncFailed",
     Kind.INVALID, Scope.ALL),
    (r"No space left on device|Disk quota exceeded", "SshDiskFull", Kind.CAPACITY, Scope.ZONE),
    # That host cannot take the sandbox or run the runner (no python3, a failed tar, ...): the next host may.
    (r"NodeSyncFailed|NodeStartFailed|NodeRuntimeFailed", "NodeStartFailed", Kind.CAPACITY, Scope.ZONE),
    (r"RuntimeTimeout|SshTimeout", "SshTimeout", Kind.CAPACITY, Scope.ZONE),
)


class Ssh(CloudBase):
    name = "ssh"
    display = "SSH"
    capabilities = Capabilities(
        has_zones=True,
        offers_spot=False,
        from_catalog=False,
        default_candidate=False,
        has_log_source=True,
        # The ledger is here: an interrupted allocation is found and released, and the
        # hosts it names are reached to remove what a node's create may have started.
        proves_interrupted=True,
        # A fresh sync stops the task and replaces the sandbox; start runs it again.
        reruns_in_place=True,
        # Buckets: directories under ~/.skyplan/buckets on the host, bound like local's (runner.py).
        bucket_store="dir",
    )
    takes_config = True

    # --- config and offers -----------------------------------------------------------------

    def check_config(self, section: Any, config: Any, path: tuple[Any, ...]) -> list[Any]:
        from skyplan.clouds.ssh.pools import check

        return check(section, config, path)

    def own_offers(self) -> tuple[Offer, ...]:
        """One offer per pool host whose hardware is known (configured, or probed and
        cached). InputError when there is no pool, or there are hosts but none has
        known hardware: a task on this cloud could not be checked against anything,
        and the message says what to fix."""
        from skyplan.clouds.ssh.hardware import UNPROBED, pool_offers
        from skyplan.clouds.ssh.pools import pools
        from skyplan.errors import InputError

        hosts = [h for p in pools().values() for h in p.hosts]
        if not hosts:
            from skyplan.config import config_path

            raise InputError(f"a task on the ssh cloud needs a pool of machines, and {config_path()} has none",
                             hint="add `ssh: {pools: {NAME: {hosts: [{host, user, identity_file}]}}}` to it "
                                  "(README: The ssh cloud), then name the pool as the task's region")
        offers = pool_offers(hosts)
        if not offers:
            why = "; ".join(f"{h.zone} (pool {h.pool}): {UNPROBED.get(h.key, 'not probed')}" for h in hosts)
            raise InputError(f"no host of the ssh pools could be probed for its hardware: {why}",
                             hint="make the host reachable (an ssh login with the pool's user, key and "
                                  "known_hosts must work), or state its cpus, memory_gib and accelerators in the "
                                  "config file")
        return offers

    # --- errors ------------------------------------------------------------------------------

    def classify(self, message: str) -> Classification:
        text = message or ""
        for pattern, code, kind, scope in _RULES:
            m = re.search(pattern, text)
            if m:
                return Classification(kind, scope, m.group(0) if code == "*" else code, text)
        return Classification(Kind.UNKNOWN, Scope.ZONE, "unknown", text)

    def sample_error(self, outcome: str, request: ProvisionRequest) -> str:
        # Not simulated; its own texts, for completeness.
        if outcome == "capacity":
            return (f"SshUnreachable: {request.zone} (pool {request.region}): connection refused "
                    f"[Errno 111] Connect call failed")
        if outcome == "auth":
            return f"SshAuthFailed: {request.zone} (pool {request.region}) refused the login"
        return f"ssh cloud: simulated {outcome} failure for {request.stack}"

    # --- the program and its checks -----------------------------------------------------------

    def program(self, request: ProvisionRequest) -> Callable[[], None]:
        def run() -> None:
            from skyplan.clouds import programs

            programs.load(self.name).build(request)

        return run

    def preflight(self) -> PreflightResult:
        """Pools exist in the config file (which parses), and ssh's client is here for `skyplan ssh`."""
        from skyplan.clouds.base import PreflightResult
        from skyplan.clouds.ssh.pools import pools

        found = pools()
        if not found:
            from skyplan.config import config_path

            return PreflightResult(False, reason=f"no ssh pools in {config_path()}",
                                   fix="add `ssh: {pools: {NAME: {hosts: [{host, user, identity_file}]}}}` "
                                       "to the config file (README: The ssh cloud)")
        hosts = sum(len(p.hosts) for p in found.values())
        return PreflightResult(True, details={"credentials": f"{len(found)} pool(s), {hosts} host(s)",
                                             "plugin": "none needed"})

    # --- what it holds ---------------------------------------------------------------------------

    def log_source(self, outputs: Mapping[str, Any]) -> LogSource | None:
        from skyplan.clouds.ssh.nodes import log_source

        return log_source(outputs)

    def node_addresses(self, outputs: Mapping[str, Any]) -> list[Any]:
        from skyplan.clouds.ssh.nodes import addresses

        return addresses(outputs)

    def release_buckets(self, owner: str, since: float, zones: Any) -> tuple[str, ...]:
        """On each pool host among ``zones`` (where the job ran): the runner deletes
        the buckets made there for job ``owner`` (``~/.skyplan/buckets``). A host
        that cannot be reached keeps its buckets."""
        from skyplan.clouds.ssh.nodes import NO_SANDBOX, host_address
        from skyplan.clouds.ssh.pools import pools
        from skyplan.runtime.sync_api import open_node, run

        wanted = {z for z in zones if z}
        out: list[str] = []
        try:
            hosts = [h for p in pools().values() for h in p.hosts if h.zone in wanted]
        except Exception:  # noqa: BLE001 - no readable pools: nothing can be reached
            return ()
        for host in hosts:
            node = open_node(host_address(host, rank=0, sandbox=NO_SANDBOX))
            try:
                out += run(node.release_owned(owner, since), timeout=60)
            except Exception:  # noqa: BLE001 - unreachable: kept, and not named
                continue
        return tuple(dict.fromkeys(out))

    def resolve_interrupted(self, op: Any) -> bool:
        """An allocation or node whose create the engine never saw finish: release
        the hosts its stack holds, or remove the node's remote sandbox."""
        from skyplan.clouds.ssh import provider

        return provider.resolve_interrupted(str(getattr(op, "type", "")), getattr(op, "inputs", None) or {})

    def leftovers(self, stack_prefix: str) -> tuple[tuple[str, str], ...]:
        """Hosts the ledger says the matching stacks still hold."""
        from skyplan.clouds.ssh import ledger

        return tuple((e["stack"], f"host {e.get('zone')} of pool '{e.get('pool')}' (held in {ledger.ledger_path(create=False)})")
                     for e in ledger.held(stack_prefix))

    def remove_leftovers(self, stacks: Iterable[str]) -> None:
        from skyplan.clouds.ssh import provider

        provider.remove_stacks(set(stacks))
