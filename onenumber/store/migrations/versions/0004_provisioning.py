"""device credential rotation (previous secret and its overlap window) and provisioning links

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("devices", sa.Column("previous_secret", sa.String(128), nullable=True))
    op.add_column("devices", sa.Column("previous_secret_until", sa.Float(), nullable=True))
    op.add_column("devices", sa.Column("secret_rotated_at", sa.Float(), nullable=True))
    # the age of an existing secret is unknown: scheduled rotation counts it from the upgrade
    op.execute(sa.text("UPDATE devices SET secret_rotated_at = :now").bindparams(now=time.time()))
    op.create_table(
        "provisioning_links",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("used_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_provisioning_links_device_id_devices", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_hash", name="pk_provisioning_links"),
    )
    op.create_index("ix_provisioning_links_device_id", "provisioning_links", ["device_id"])


def downgrade() -> None:
    op.drop_index("ix_provisioning_links_device_id", table_name="provisioning_links")
    op.drop_table("provisioning_links")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("secret_rotated_at")
        batch.drop_column("previous_secret_until")
        batch.drop_column("previous_secret")
