"""initial schema: accounts, dids, devices, bindings, settings, trunks, meta

Revision ID: 0001
Revises:
Create Date: 2025-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("portal_password_hash", sa.String(300), nullable=True),
        sa.Column("ring_mode", sa.String(16), nullable=False, server_default="ordered"),
        sa.Column("stage_seconds", sa.Integer(), nullable=False, server_default="10"),
        sa.Column("no_answer_seconds", sa.Integer(), nullable=False, server_default="30"),
        sa.Column("fwd_unconditional", sa.String(64), nullable=True),
        sa.Column("fwd_busy", sa.String(64), nullable=True),
        sa.Column("fwd_no_answer", sa.String(64), nullable=True),
        sa.Column("decline", sa.String(16), nullable=False, server_default="everywhere"),
        sa.Column("dnd", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("selected_device", sa.Integer(), nullable=True),
        sa.Column("custom_cli", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("number", name="pk_accounts"),
    )
    op.create_table(
        "dids",
        sa.Column("did", sa.String(32), nullable=False),
        sa.Column("account", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(["account"], ["accounts.number"], name="fk_dids_account_accounts", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("did", name="pk_dids"),
    )
    op.create_index("ix_dids_account", "dids", ["account"])
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ring_order", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default="1"),
        sa.Column("label", sa.String(200), nullable=False, server_default=""),
        sa.Column("auth_username", sa.String(64), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("internet", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("credential_expires_at", sa.Float(), nullable=True),
        sa.Column("call_waiting", sa.Boolean(), nullable=False, server_default="1"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("position >= 0 AND position <= 7", name="ck_devices_position_range"),
        sa.ForeignKeyConstraint(
            ["account"], ["accounts.number"], name="fk_devices_account_accounts", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_devices"),
        sa.UniqueConstraint("account", "position", name="uq_devices_account_position"),
        sa.UniqueConstraint("auth_username", name="uq_devices_auth_username"),
    )
    op.create_table(
        "bindings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account", sa.String(32), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("auth_username", sa.String(64), nullable=False),
        sa.Column("contact", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("transport", sa.String(8), nullable=False),
        sa.Column("source_host", sa.String(255), nullable=False),
        sa.Column("source_port", sa.Integer(), nullable=False),
        sa.Column("local_host", sa.String(255), nullable=False, server_default=""),
        sa.Column("local_port", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("instance", sa.Text(), nullable=True),
        sa.Column("reg_id", sa.Integer(), nullable=True),
        sa.Column("flow", sa.Text(), nullable=True),
        sa.Column("path", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("user_agent", sa.Text(), nullable=False, server_default=""),
        sa.Column("call_id", sa.Text(), nullable=False, server_default=""),
        sa.Column("cseq", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("q", sa.Float(), nullable=True),
        sa.Column("outbound", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("params", sa.Text(), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name="pk_bindings"),
        sa.UniqueConstraint("account", "key", name="uq_bindings_account_key"),
    )
    op.create_index("ix_bindings_expires_at", "bindings", ["expires_at"])
    op.create_table(
        "settings",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_settings"),
    )
    op.create_table(
        "trunks",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False, server_default="5060"),
        sa.Column("transport", sa.String(8), nullable=False, server_default="udp"),
        sa.Column("prefix", sa.String(32), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("name", name="pk_trunks"),
    )
    meta = op.create_table(
        "meta",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_meta"),
    )
    op.bulk_insert(meta, [{"id": 1, "revision": 1}])


def downgrade() -> None:
    for table in ("meta", "trunks", "settings", "bindings", "devices", "dids", "accounts"):
        op.drop_table(table)
