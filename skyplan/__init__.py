"""skyplan: declarative plan/apply for cloud compute.

The pipeline is visible in the package layout:
spec -> catalog -> planner -> provision (stack driver, failover) -> state.
"""

__version__ = "0.1.0"
