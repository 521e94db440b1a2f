"""Planner: candidates from the catalog, ranked by cost; the Plan value and file."""

from skyplan.planner.candidates import Candidate, enumerate_candidates, explain, explain_empty
from skyplan.planner.plan import (
    FORMAT_VERSION,
    Plan,
    bind_secrets,
    check_fresh,
    dumps,
    make_plan,
    plan_from_json,
    read_plan,
    write_plan,
)

__all__ = [
    "Candidate",
    "FORMAT_VERSION",
    "Plan",
    "bind_secrets",
    "check_fresh",
    "dumps",
    "enumerate_candidates",
    "explain",
    "explain_empty",
    "make_plan",
    "plan_from_json",
    "read_plan",
    "write_plan",
]
