"""Serve: services, their versions, replicas and events (skyplan.serve.store).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "services",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("live_name", sa.String(255)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("endpoint", sa.String(255)),
        sa.Column("controller_pid", sa.Integer),
        sa.Column("down_requested", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("options", sa.Text, nullable=False),
        sa.Column("metrics", sa.Text),
        sa.Column("next_replica", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("deleted_at", sa.Float),
        sa.UniqueConstraint("live_name", name="uq_services_live_name"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_services_name", "services", ["name", "id"])
    op.create_table(
        "service_versions",
        sa.Column("service_id", sa.Integer, sa.ForeignKey("services.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("task_json", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "replicas",
        sa.Column("service_id", sa.Integer, sa.ForeignKey("services.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("replica_id", sa.Integer, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("use_spot", sa.Boolean, nullable=False),
        sa.Column("fallback", sa.Boolean, nullable=False),
        sa.Column("cluster", sa.String(255), nullable=False),
        sa.Column("cloud", sa.String(64)),
        sa.Column("region", sa.String(255)),
        sa.Column("zone", sa.String(255)),
        sa.Column("instance_type", sa.String(255)),
        sa.Column("endpoint", sa.String(255)),
        sa.Column("resources", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("launched_at", sa.Float),
        sa.Column("ready_at", sa.Float),
        sa.Column("gone", sa.Boolean, nullable=False),
        sa.Column("gone_at", sa.Float),
    )
    op.create_index("ix_replicas_service_gone", "replicas", ["service_id", "gone", "replica_id"])
    op.create_table(
        "serve_events",
        sa.Column("id", big_id, primary_key=True, autoincrement=True),
        sa.Column("service_id", sa.Integer, nullable=False),
        sa.Column("replica_id", sa.Integer),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_serve_events_service", "serve_events", ["service_id", "id"])


def downgrade() -> None:
    for table in ("serve_events", "replicas", "service_versions", "services"):
        op.drop_table(table)
