"""The ssh cloud's program: ``num_nodes`` hosts of a pool, one node on each.

``request.region`` is the pool, ``request.zone`` node 0's host (as the pool
spells it: ``host`` or ``host:port``), ``request.instance_type`` the hardware
label its other nodes' hosts must share (``skyplan/clouds/ssh/hardware.py``).

Exports (the stack's outputs):
  cloud, region, zone, instance_type  the placement
  pool      the pool's name
  hosts     [{pool, zone, key, host, port, user, identity_file, known_hosts}] by rank
  nodes     [{rank, sandbox, ...the host's record}]: what the node runtime reaches
            (``skyplan.clouds.ssh.nodes.addresses``): logs, status, exec, ssh
The providers live in ``skyplan/clouds/ssh/provider.py``.
"""

from __future__ import annotations

from skyplan.clouds.base import ProvisionRequest


def build(request: ProvisionRequest) -> None:
    """The inline program body: call inside a Pulumi program context."""
    import pulumi

    from skyplan.clouds.ssh import hardware, ledger
    from skyplan.clouds.ssh.nodes import host_record, sandbox_path
    from skyplan.clouds.ssh.pools import pools
    from skyplan.clouds.ssh.provider import SshHostAllocation, SshNode, node_props
    from skyplan.errors import InputError

    pool = pools().get(request.region)
    head = pool.host(request.zone or "") if pool is not None else None
    if pool is None or head is None:
        # The config changed since the plan: nothing to allocate.
        raise InputError(f"SshPoolUnknown: pool '{request.region}' has no host '{request.zone}' in the config file "
                         "any more", hint="re-plan the task")
    offers = {o.zone: o for o in hardware.pool_offers(pool.hosts)}
    peers = [host_record(h) for h in pool.hosts
             if h is not head and (o := offers.get(h.zone)) is not None and o.instance_type == request.instance_type]
    shared = len({(h.user, h.identity_file) for h in pool.hosts}) == 1 and len(pool.hosts) > 1
    num_nodes = max(1, int(request.num_nodes))
    alloc = SshHostAllocation("hosts", {
        "ledger": str(ledger.ledger_path().absolute()),
        "cluster": request.cluster,
        "stack": request.stack,
        "pool": pool.name,
        "instance_type": request.instance_type,
        "num_nodes": num_nodes,
        "head": host_record(head),
        "peers": peers,
        "shared_login": shared,
    })
    node_ips = alloc.hosts.apply(lambda hs: [h["host"] for h in hs])
    nodes = [SshNode(f"node-{rank}", node_props(request, rank, alloc.hosts.apply(lambda hs, r=rank: hs[r]), node_ips),
                     pulumi.ResourceOptions(depends_on=[alloc]))
             for rank in range(num_nodes)]
    pulumi.export("cloud", request.cloud)
    pulumi.export("region", request.region)
    pulumi.export("zone", request.zone)
    pulumi.export("instance_type", request.instance_type)
    pulumi.export("pool", pool.name)
    pulumi.export("hosts", alloc.hosts)
    pulumi.export("nodes", [n.host.apply(lambda h, r=rank: {**h, "rank": r, "sandbox": sandbox_path(request.stack, r)})
                            for rank, n in enumerate(nodes)])
