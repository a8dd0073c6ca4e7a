"""voicemail messages: one row per message, its WAV on disk

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"  # 0003 logins (issue 9); re-chain to 0004 when a 0004 is merged
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "voicemail_messages",
        sa.Column("id", sa.String(64), autoincrement=False, nullable=False),
        sa.Column("account", sa.String(32), nullable=False),
        sa.Column("caller_number", sa.String(64), nullable=False, server_default=""),
        sa.Column("caller_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False, server_default="0"),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("heard", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("urgent", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("complete", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("deleted", sa.Boolean(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name="pk_voicemail_messages"),
    )
    op.create_index("ix_voicemail_messages_account_started", "voicemail_messages", ["account", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_voicemail_messages_account_started", table_name="voicemail_messages")
    op.drop_table("voicemail_messages")
