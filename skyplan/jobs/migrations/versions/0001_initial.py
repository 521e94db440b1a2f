"""The jobs schema: jobs, tasks, events, runs and the controller row.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("finished", sa.Boolean, nullable=False),
        sa.Column("submitted_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float),
        sa.Column("recoveries", sa.Integer, nullable=False),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("options", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_jobs_finished_id", "jobs", ["finished", "job_id"])
    op.create_index("ix_jobs_status_id", "jobs", ["status", "job_id"])
    op.create_index("ix_jobs_name_id", "jobs", ["name", "job_id"])
    op.create_table(
        "tasks",
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.job_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("task_index", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("task_id", sa.String(512), nullable=False),
        sa.Column("cluster", sa.String(255)),
        sa.Column("placement", sa.Text),
        sa.Column("recoveries", sa.Integer, nullable=False),
        sa.Column("restarts_on_errors", sa.Integer, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("resources", sa.Text, nullable=False),
        sa.Column("task_json", sa.Text, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("ended_at", sa.Float),
        sa.Column("run_seconds", sa.Float, nullable=False),
        sa.Column("running_since", sa.Float),
    )
    op.create_table(
        "events",
        sa.Column("id", big_id, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.Integer, nullable=False),
        sa.Column("task_index", sa.Integer, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_events_job", "events", ["job_id", "task_index", "id"])
    op.create_table(
        "runs",
        sa.Column("job_id", sa.Integer, primary_key=True),
        sa.Column("task_index", sa.Integer, primary_key=True),
        sa.Column("run_no", sa.Integer, primary_key=True),
        sa.Column("cluster", sa.String(255), nullable=False),
        sa.Column("log_path", sa.Text, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float),
        sa.Column("placement", sa.Text),
        sa.Column("outcome", sa.Text),
    )
    controller = op.create_table(
        "controller",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("owner", sa.String(255)),
        sa.Column("expires_at", sa.Float),
        sa.Column("info", sa.Text),
    )
    op.bulk_insert(controller, [{"id": 1, "owner": None, "expires_at": None, "info": None}])


def downgrade() -> None:
    for table in ("controller", "runs", "events", "tasks", "jobs"):
        op.drop_table(table)
