"""The database schema as SQLAlchemy Core tables (the shape Alembic's migrations create).

Keep this in step with migrations/versions/: a schema change is a new migration plus the
matching change here. Depends on SQLAlchemy only.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

accounts = Table(
    "accounts",
    metadata,
    Column("number", String(32), primary_key=True),
    Column("display_name", String(200), nullable=False),
    Column("password_hash", String(300), nullable=True),  # scrypt (store/logins.py)
    Column("ring_mode", String(16), nullable=False, server_default="ordered"),
    Column("stage_seconds", Integer, nullable=False, server_default="10"),
    Column("no_answer_seconds", Integer, nullable=False, server_default="30"),
    Column("fwd_unconditional", String(64), nullable=True),
    Column("fwd_busy", String(64), nullable=True),
    Column("fwd_no_answer", String(64), nullable=True),
    Column("decline", String(16), nullable=False, server_default="everywhere"),
    Column("dnd", Boolean, nullable=False, server_default="0"),
    Column("selected_device", Integer, nullable=True),
    Column("custom_cli", String(64), nullable=True),
    Column("voicemail_pin", String(12), nullable=True),  # NULL: the server-wide setting
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

dids = Table(
    "dids",
    metadata,
    Column("did", String(32), primary_key=True),
    Column(
        "account",
        String(32),
        ForeignKey("accounts.number", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
)

devices = Table(
    "devices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account", String(32), ForeignKey("accounts.number", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("ring_order", Integer, nullable=False, server_default="1"),
    Column("enabled", Boolean, nullable=False, server_default="1"),
    Column("label", String(200), nullable=False, server_default=""),
    Column("auth_username", String(64), nullable=False, unique=True),
    Column("secret", String(128), nullable=False),
    Column("internet", Boolean, nullable=False, server_default="0"),
    Column("credential_expires_at", Float, nullable=True),
    Column("call_waiting", Boolean, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # credential rotation (0004): the secret before the last rotation keeps working until
    # previous_secret_until (the overlap window); secret_rotated_at dates the current secret
    Column("previous_secret", String(128), nullable=True),
    Column("previous_secret_until", Float, nullable=True),
    Column("secret_rotated_at", Float, nullable=True),
    UniqueConstraint("account", "position"),
    CheckConstraint("position >= 0 AND position <= 7", name="position_range"),
)

# No foreign key to accounts: the server writes bindings in batches and one binding of an
# account removed a moment ago must not fail the whole batch; remove_account cleans up.
bindings = Table(
    "bindings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account", String(32), nullable=False),
    Column("key", Text, nullable=False),
    Column("auth_username", String(64), nullable=False),
    Column("contact", Text, nullable=False),
    Column("expires_at", Float, nullable=False, index=True),
    Column("transport", String(8), nullable=False),
    Column("source_host", String(255), nullable=False),
    Column("source_port", Integer, nullable=False),
    Column("local_host", String(255), nullable=False, server_default=""),
    Column("local_port", Integer, nullable=False, server_default="0"),
    Column("instance", Text, nullable=True),
    Column("reg_id", Integer, nullable=True),
    Column("flow", Text, nullable=True),
    Column("path", Text, nullable=False, server_default="[]"),  # JSON list of Path values
    Column("user_agent", Text, nullable=False, server_default=""),
    Column("call_id", Text, nullable=False, server_default=""),
    Column("cseq", Integer, nullable=False, server_default="0"),
    Column("q", Float, nullable=True),
    Column("outbound", Boolean, nullable=False, server_default="0"),
    Column("params", Text, nullable=False, server_default=""),
    UniqueConstraint("account", "key"),
)

settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

trunks = Table(
    "trunks",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("port", Integer, nullable=False, server_default="5060"),
    Column("transport", String(8), nullable=False, server_default="udp"),
    Column("prefix", String(32), nullable=False, server_default=""),
)

# One row per call and account involved (SPEC "History"), written in batches by the history
# subscriber; (account, call_id, direction) makes a replayed batch a no-op.
call_history = Table(
    "call_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account", String(32), nullable=False),
    Column("call_id", Text, nullable=False),
    Column("direction", String(8), nullable=False),  # in | out
    Column("other_number", String(64), nullable=False, server_default=""),
    Column("other_name", String(200), nullable=False, server_default=""),
    Column("started_at", Float, nullable=False),
    Column("answered_at", Float, nullable=True),
    Column("ended_at", Float, nullable=True),
    Column("duration", Float, nullable=False, server_default="0"),
    Column("device", String(64), nullable=True),  # auth username that placed or answered it
    Column("device_position", Integer, nullable=True),
    Column("outcome", String(24), nullable=False),
    Column("forwarded_to", String(64), nullable=True),
    Column("forward_reason", String(24), nullable=True),
    Column("seen", Boolean, nullable=False, server_default="0"),
    UniqueConstraint("account", "call_id", "direction"),
    Index("ix_call_history_account_started", "account", "started_at"),
)

# Logins (store/logins.py): admins, browser sessions (id = sha256 of the cookie token, so a
# leaked table gives no live cookie) and API tokens (stored as sha256, shown once).
admins = Table(
    "admins",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("password_hash", String(300), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(8), nullable=False),  # admin | user
    Column("subject", String(64), nullable=False),  # admin username or account number
    Column("csrf", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False, index=True),
    Column("last_seen_at", Float, nullable=False),
    CheckConstraint("kind IN ('admin', 'user')", name="kind"),
    Index("ix_web_sessions_subject", "kind", "subject"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("role", String(8), nullable=False),  # admin | user
    Column("account", String(32), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    CheckConstraint("role IN ('admin', 'user')", name="role"),
)

# One-time provisioning links (0004): only the SHA-256 of the token is stored.
provisioning_links = Table(
    "provisioning_links",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("device_id", Integer, ForeignKey("devices.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float, nullable=True),
)

# Voicemail messages (SPEC "Voicemail"): the row is written when recording starts
# (complete = false) and updated when it ends; the WAV lives at `path`. Deleting a message
# removes its WAV and keeps the row marked deleted.
voicemail_messages = Table(
    "voicemail_messages",
    metadata,
    Column("id", String(64), primary_key=True, autoincrement=False),
    Column("account", String(32), nullable=False),
    Column("caller_number", String(64), nullable=False, server_default=""),
    Column("caller_name", String(200), nullable=False, server_default=""),
    Column("started_at", Float, nullable=False),
    Column("duration", Float, nullable=False, server_default="0"),
    Column("path", Text, nullable=False),
    Column("heard", Boolean, nullable=False, server_default="0"),
    Column("urgent", Boolean, nullable=False, server_default="0"),
    Column("complete", Boolean, nullable=False, server_default="0"),
    Column("deleted", Boolean, nullable=False, server_default="0"),
    Index("ix_voicemail_messages_account_started", "account", "started_at"),
)

# One row (id = 1): `revision` goes up by one with every configuration write.
meta = Table(
    "meta",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("revision", Integer, nullable=False),
)
