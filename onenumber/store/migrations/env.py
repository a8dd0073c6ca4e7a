"""Alembic environment for OneNumber.

Normally run through `onenumber.store.migrate.upgrade`, which hands us an open connection
in `config.attributes["connection"]`. Run from the `alembic` command line (developers:
`alembic -c onenumber/store/migrations/alembic.ini revision -m ...`), it connects to
$ONENUMBER_DB or the default SQLite file itself.
"""

from __future__ import annotations

import asyncio

from alembic import context

from onenumber.store.tables import metadata

config = context.config


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite needs batch mode for ALTER
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_own_engine() -> None:
    from onenumber.store.db import create_engine, resolve_url

    engine = create_engine(resolve_url(config.get_main_option("sqlalchemy.url") or None))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


connection = config.attributes.get("connection")
if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
elif connection is not None:
    _run(connection)
else:
    asyncio.run(_run_own_engine())
