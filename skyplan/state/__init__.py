"""Local state: clusters and their attempts in SQLite, and per-cluster locks.

The Pulumi backend holds the stacks; this database holds what skyplan knows
about them. An attempt row is written *before* its stack is created, so a
process killed mid-attempt leaves a record that the next run cleans up.
"""

from skyplan.state.db import AttemptRow, ClusterRow, StateDB
from skyplan.state.lock import cluster_lock

__all__ = ["AttemptRow", "ClusterRow", "StateDB", "cluster_lock"]
