"""accounts.voicemail_pin: each box's own PIN (NULL: the server-wide voicemail_pin setting)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:  # SQLite: batch mode, as it cannot ALTER much
        batch.add_column(sa.Column("voicemail_pin", sa.String(12), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("voicemail_pin")
