"""logins: account passwords, admins, web sessions, API tokens

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

`accounts.portal_password_hash` (never written before this revision) becomes
`accounts.password_hash`: there is one login system for the web phone and the portal.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain RENAME COLUMN (SQLite >= 3.25, PostgreSQL): a batch rebuild of `accounts` would drop
    # the table, and with foreign keys on that cascades to dids and devices
    op.execute("ALTER TABLE accounts RENAME COLUMN portal_password_hash TO password_hash")
    op.create_table(
        "admins",
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("username", name="pk_admins"),
    )
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(64), nullable=False),  # sha256 (hex) of the cookie token
        sa.Column("kind", sa.String(8), nullable=False),  # admin | user
        sa.Column("subject", sa.String(64), nullable=False),  # admin username or account number
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("last_seen_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_web_sessions"),
        sa.CheckConstraint("kind IN ('admin', 'user')", name="ck_web_sessions_kind"),
    )
    op.create_index("ix_web_sessions_expires_at", "web_sessions", ["expires_at"])
    op.create_index("ix_web_sessions_subject", "web_sessions", ["kind", "subject"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),  # sha256 (hex) of the token
        sa.Column("role", sa.String(8), nullable=False),  # admin | user
        sa.Column("account", sa.String(32), nullable=True),  # the user's account (role user)
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
        sa.CheckConstraint("role IN ('admin', 'user')", name="ck_api_tokens_role"),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
    op.drop_index("ix_web_sessions_subject", table_name="web_sessions")
    op.drop_index("ix_web_sessions_expires_at", table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_table("admins")
    op.execute("ALTER TABLE accounts RENAME COLUMN password_hash TO portal_password_hash")
