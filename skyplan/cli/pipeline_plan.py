"""`skyplan plan PIPELINE`: each task of a pipeline planned on its own.

A pipeline's tasks run one after another, each on its own cluster, so each is
planned against the catalog exactly as a task file would be: one table per
task under a ``Task i/N`` heading (with ``--explain``, its explanation), or,
with ``--json``, one document holding one plan per task, each with the plan
file's shape (``schemas/plan-pipeline.schema.json``).

A plan file holds one task, and a cluster is one task's, so ``--out``,
``-c``/``--detailed-exitcode`` and ``--secret`` are refused for a pipeline:
plan or apply its tasks one at a time for those.
"""

from __future__ import annotations

import sys
from typing import Any

from skyplan.errors import UsageError


def plan_pipeline(pipeline: Any, catalog: Any, *, as_json: bool, top: int, explain: bool, memory: Any,
                  refused: dict[str, Any]) -> None:
    """Plan and print every task of ``pipeline`` (a ``skyplan.spec.Pipeline``).
    ``refused``: flag -> its value; any flag given raises UsageError first."""
    given = [flag for flag, value in refused.items() if value]
    if given:
        n = len(pipeline.tasks)
        raise UsageError(
            f"{pipeline.source} is a pipeline of {n} tasks: {', '.join(given)} "
            f"{'takes' if len(given) == 1 else 'take'} a single task",
            hint="plan the pipeline without it to see every task's candidates; for a plan file or a "
                 "cluster, put the task in a file of its own",
        )
    from skyplan.cli import views
    from skyplan.planner import explain as explain_fn, make_plan

    n = len(pipeline.tasks)
    plans = []
    for i, task in enumerate(pipeline.tasks, 1):
        plan = make_plan(task, catalog, memory=memory)
        if as_json:
            doc = plan.to_json()
            if explain:
                doc["explain"] = views.explain_json(explain_fn(task, catalog))
            plans.append(doc)
            continue
        if i > 1:
            sys.stdout.write("\n")
        title = f"Pipeline '{pipeline.name}'" if pipeline.name else "Pipeline"
        sys.stdout.write(f"{title}, task {i} of {n}:\n")
        views.render_plan(plan, top=top)
        if explain:
            views.render_explain(explain_fn(task, catalog))
    if as_json:
        from skyplan.contract import document

        views.write_json(document(pipeline=pipeline.name, plans=plans))
