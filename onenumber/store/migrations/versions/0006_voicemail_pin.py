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


# Plain ALTER TABLE (SQLite >= 3.35 for DROP COLUMN, PostgreSQL): a batch rebuild of `accounts`
# would drop the table, and with foreign keys on, SQLite's implicit DELETE cascades to every
# account's DIDs and devices (as 0003 notes).
def upgrade() -> None:
    op.add_column("accounts", sa.Column("voicemail_pin", sa.String(12), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE accounts DROP COLUMN voicemail_pin")
