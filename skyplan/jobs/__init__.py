"""Managed jobs: tasks and pipelines that a controller process launches, watches,
recovers from preemption and failure, and tears down.

Layout (the pipeline of the product, one layer up from ``skyplan.provision``):
  * ``states``     the job and task states, events and the typed records (data only);
  * ``store``      SQLAlchemy 2 tables, Alembic migrations, SQLite or PostgreSQL;
  * ``recovery``   pure: strategies, budgets, backoff, candidate order for a relaunch;
  * ``detect``     pure: is an unanswered node preempted? (cloud confirmation, grace);
  * ``controller`` decides (a pure step over typed state) and hands actions to
  * ``executor``   which acts through ``skyplan.provision.launch`` and the node runtime;
  * ``daemon``     the controller as a process: started on demand, stops when idle;
  * ``logs``       every run's output, kept under the job;
  * ``http``       the controller's small HTTP API and the dashboard.
Nothing here prints.
"""
