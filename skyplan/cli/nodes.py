"""``skyplan exec CLUSTER -- CMD`` and ``skyplan ssh CLUSTER``: a cluster's nodes by hand.

Both reach nodes the way the cluster's cloud says (``Cloud.node_addresses``:
a sandbox here for local and sim, SSH for pools and VMs), so they work the
same on every cloud whose nodes skyplan can reach.

* ``exec`` runs the command through bash in each node's workdir (or one node's,
  ``--node N``), all nodes at once on the node runtime's event loop, and
  prints the output as it arrives, each line prefixed ``(node-N)`` when several
  nodes run it. It exits with the command's exit code: the lowest-ranked
  failing node's, or 255 when a node could not be reached (as ``ssh`` does).
  ``--json``: ``{"event":"output","node","line"}`` per line, then one
  ``summary`` with each node's exit code.
* ``ssh`` replaces itself with the system ``ssh`` client, logged in to node 0
  (or ``--node N``) with skyplan's key, port and known_hosts options, in the
  task's workdir; with a command after ``--`` it runs that instead of a shell.
  On a node of this machine (local, sim) it opens a shell in the sandbox.
  ``--json`` prints that command line (``argv``, and ``cwd`` for a sandbox
  here) instead of running it: for scripts and editors' remote settings.
"""

from __future__ import annotations

import sys
from typing import Any, Iterator, List, Optional

import typer

from skyplan.cli.errors import handle_errors

#: ``exec``'s exit code for a node that could not be reached (as the ssh client's own errors).
EXIT_UNREACHABLE = 255


def _complete_cluster(incomplete: str) -> List[str]:
    from skyplan.cli.completion import cluster_names

    return cluster_names(incomplete)


def cluster_nodes(name: str, node: Optional[int]) -> list[Any]:
    """The ``NodeAddress`` of each node of cluster ``name`` (or of node ``node``)."""
    from skyplan.clouds import registry
    from skyplan.errors import InputError, NotFoundError
    from skyplan.provision.apply import valid_cluster_name
    from skyplan.state import StateDB

    row = StateDB().get_cluster(valid_cluster_name(name))
    if row is None:
        raise NotFoundError(f"no cluster named '{name}'", hint="see `skyplan status`")
    if row.status != "UP":
        raise InputError(f"cluster '{name}' is {row.status}: it has no nodes to reach",
                         hint=f"apply it again, or `skyplan down {name} --yes`")
    found = registry.find(row.cloud)
    addresses = registry.runner(row.cloud, bool(row.simulate)).node_addresses(row.outputs) if found else []
    if not addresses:
        raise InputError(f"cluster '{name}' runs on {registry.display(row.cloud)}, whose nodes skyplan cannot "
                         "reach from here", hint="see `skyplan status` for where it runs")
    if node is None:
        return list(addresses)
    picked = [a for a in addresses if a.rank == node]
    if not picked:
        raise InputError(f"cluster '{name}' has no node {node}",
                         hint=f"its nodes are {', '.join(str(a.rank) for a in addresses)}")
    return picked


def run_everywhere(addresses: list[Any], command: str, timeout_s: float | None) -> Iterator[tuple[int, Any]]:
    """Run ``command`` on every node at once. Yields ``(rank, bytes)`` chunks of output
    as they arrive, then ``(rank, (exit_code, error))`` once per node when it is done."""
    import asyncio
    import queue

    from skyplan.runtime.sync_api import loop, open_node

    q: queue.Queue[tuple[int, Any]] = queue.Queue()

    async def one(a: Any) -> None:
        node = open_node(a)
        try:
            # Chunks arrive on the runtime's loop thread; the queue hands them to this one.
            res = await node.exec(command, timeout_s=timeout_s, on_output=lambda b, r=a.rank: q.put((r, b)))
            if res.output:  # (a transport returns what it did not stream)
                q.put((a.rank, bytes(res.output)))
            q.put((a.rank, (res.exit_code, None)))
        except Exception as exc:  # noqa: BLE001 - a node that failed is reported, the others go on
            q.put((a.rank, (EXIT_UNREACHABLE, str(exc))))

    futures = [asyncio.run_coroutine_threadsafe(one(a), loop()) for a in addresses]
    pending = len(futures)
    try:
        while pending:
            rank, item = q.get()
            if isinstance(item, tuple):
                pending -= 1
            yield rank, item
    finally:
        for f in futures:
            f.cancel()


@handle_errors
def exec_command(
    cluster: str = typer.Argument(..., help="Cluster name.", autocompletion=_complete_cluster),
    command: List[str] = typer.Argument(..., help="The command (after --), run through bash in the workdir."),
    node: Optional[int] = typer.Option(None, "--node", min=0, help="Only this node (rank)."),
    timeout: Optional[float] = typer.Option(None, "--timeout", min=0.1, help="Seconds the command may take."),
    as_json: bool = typer.Option(False, "--json", help="One JSON line per output line, then a summary."),
) -> None:
    """Run a command on every node of a cluster (or one: --node N) and stream its output."""
    addresses = cluster_nodes(cluster, node)
    text = " ".join(command)
    several = len(addresses) > 1
    bufs: dict[int, bytes] = {a.rank: b"" for a in addresses}
    results: dict[int, tuple[int, str | None]] = {}

    def emit(rank: int, line: str) -> None:
        if as_json:
            from skyplan.cli.views import write_json_line
            from skyplan.contract import event

            write_json_line(event("output", node=rank, line=line))
        else:
            sys.stdout.write((f"(node-{rank}) " if several else "") + line + "\n")
        sys.stdout.flush()

    for rank, item in run_everywhere(addresses, text, timeout):
        if isinstance(item, tuple):
            if bufs[rank]:
                emit(rank, bufs[rank].decode("utf-8", "replace"))
                bufs[rank] = b""
            results[rank] = item
            if item[1] and not as_json:
                typer.echo(f"{'(node-%d) ' % rank if several else ''}error: {item[1]}", err=True)
            continue
        bufs[rank] += item
        *lines, bufs[rank] = bufs[rank].split(b"\n")
        for line in lines:
            emit(rank, line.decode("utf-8", "replace"))
    failing = sorted(r for r, (code, _) in results.items() if code != 0)
    code = results[failing[0]][0] if failing else 0
    if as_json:
        from skyplan.cli.views import write_json_line
        from skyplan.contract import event

        write_json_line(event("summary", cluster=cluster, command=text, exit_code=code,
                              nodes=[{"rank": r, "exit_code": results[r][0], "error": results[r][1]}
                                     for r in sorted(results)]))
    elif failing and several:
        typer.echo(f"exit code {code} on node {failing[0]}"
                   + (f" (failed on nodes {', '.join(map(str, failing))})" if len(failing) > 1 else ""), err=True)
    if code:
        raise typer.Exit(code)


def ssh_argv(address: Any, command: List[str]) -> list[str]:
    """The system ssh client's command line for a node (``NodeAddress``)."""
    import shlex

    from skyplan.runtime.ssh import _sh_path

    argv = ["ssh", "-p", str(address.port)]
    if address.identity_file:
        argv += ["-i", str(address.identity_file), "-o", "IdentitiesOnly=yes"]
    if address.known_hosts:
        argv += ["-o", f"UserKnownHostsFile={address.known_hosts}"]
    # A user's machine is checked strictly; a VM skyplan created may be met here first.
    argv += ["-o", f"StrictHostKeyChecking={'accept-new' if address.record_host_key else 'yes'}"]
    workdir = _sh_path(f"{address.sandbox}/workdir") if address.sandbox else '"$HOME"'
    if command:
        remote = f"cd {workdir} 2>/dev/null || cd; {' '.join(command)}"
    else:
        argv.append("-t")
        remote = f"cd {workdir} 2>/dev/null || cd; exec \"${{SHELL:-bash}}\" -l"
    target = f"{address.user}@{address.host}" if address.user else address.host
    return argv + [target, "--", f"bash -c {shlex.quote(remote)}"]


@handle_errors
def ssh_command(
    cluster: str = typer.Argument(..., help="Cluster name.", autocompletion=_complete_cluster),
    command: Optional[List[str]] = typer.Argument(None, help="A command to run instead of a shell (after --)."),
    node: int = typer.Option(0, "--node", min=0, help="The node (rank) to log in to."),
    as_json: bool = typer.Option(False, "--json", help="Print the command line instead of running it."),
) -> None:
    """Open a shell on node 0 of a cluster (or --node N), in the task's workdir."""
    import os
    import shutil

    from skyplan.errors import InputError

    (address,) = cluster_nodes(cluster, node)
    cwd = None
    if address.transport == "local":  # a sandbox on this machine: a shell in its workdir
        workdir = os.path.join(address.sandbox, "workdir")
        cwd = workdir if os.path.isdir(workdir) else address.sandbox
        argv = ["bash", "-c", " ".join(command)] if command else [os.environ.get("SHELL") or "bash", "-l"]
    else:
        argv = ssh_argv(address, list(command or []))
    if as_json:
        from skyplan.cli.views import write_json
        from skyplan.contract import document

        write_json(document(cluster=cluster, node=address.rank, argv=argv, cwd=cwd))
        return
    exe = shutil.which(argv[0])
    if exe is None:
        raise InputError(f"{argv[0]} is not installed", hint="install openssh-client")
    sys.stdout.flush()
    sys.stderr.flush()
    if cwd is not None:
        os.chdir(cwd)
    os.execv(exe, argv)
