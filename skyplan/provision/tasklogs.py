"""Task output of clusters that run on this machine (local, sim), read from the
stack outputs recorded at apply time. Never prints; yields lines."""

from __future__ import annotations

from typing import Any, Iterator


def has_logs(outputs: dict[str, Any]) -> bool:
    return bool(outputs.get("sandbox"))


def read_cluster(outputs: dict[str, Any]) -> Iterator[str]:
    """Every node's combined log as it is now, node by node."""
    from skyplan.clouds.local.logs import log_paths

    nodes = log_paths(outputs["sandbox"])
    for n in nodes:
        prefix = f"(node-{n.rank}) " if len(nodes) > 1 else ""
        try:
            with open(n.combined, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    yield prefix + (line if line.endswith("\n") else line + "\n")
        except FileNotFoundError:
            continue


def follow_cluster(outputs: dict[str, Any]) -> Iterator[str]:
    """Rank 0's combined log, until the task has finished on every node."""
    from skyplan.clouds.local.logs import follow, job_status, log_paths

    sandbox = outputs.get("sandbox")
    if not sandbox:
        return
    nodes = log_paths(sandbox)
    if not nodes:
        return
    for line in follow(nodes[0].combined, lambda: job_status(sandbox).finished):
        yield line + "\n"


def final_status(outputs: dict[str, Any]) -> dict[str, Any] | None:
    from skyplan.clouds.local.logs import job_status

    sandbox = outputs.get("sandbox")
    if not sandbox:
        return None
    return job_status(sandbox).to_json()
