"""call history: one row per call and account involved

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "call_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account", sa.String(32), nullable=False),
        sa.Column("call_id", sa.Text(), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("other_number", sa.String(64), nullable=False, server_default=""),
        sa.Column("other_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("answered_at", sa.Float(), nullable=True),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("duration", sa.Float(), nullable=False, server_default="0"),
        sa.Column("device", sa.String(64), nullable=True),
        sa.Column("device_position", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(24), nullable=False),
        sa.Column("forwarded_to", sa.String(64), nullable=True),
        sa.Column("forward_reason", sa.String(24), nullable=True),
        sa.Column("seen", sa.Boolean(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name="pk_call_history"),
        sa.UniqueConstraint("account", "call_id", "direction", name="uq_call_history_account"),
    )
    op.create_index("ix_call_history_account_started", "call_history", ["account", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_call_history_account_started", table_name="call_history")
    op.drop_table("call_history")
