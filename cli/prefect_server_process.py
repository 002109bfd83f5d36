"""What runs in the local Prefect server's process: ``prefect server start``, with SQLite transactions that lock first.

``cli.prefect_server`` starts ``python -m cli.prefect_server_process server start …``
instead of Prefect's own script, so that this module can give Prefect its
database configuration (``prefect.server.database.dependencies.set_database_config``,
Prefect's injection point for it) before the server makes its first connection.

Why: Prefect opens its SQLite transactions ``BEGIN DEFERRED`` unless a caller asks
for ``with_for_update``. A deferred transaction that reads and then writes holds a
read snapshot; when another connection commits in between (the task-run recorder,
the event persister, an API call or the other loop of the same consumer), SQLite
cannot upgrade it and answers ``database is locked`` at once, without waiting for
``busy_timeout`` (``SQLITE_BUSY_SNAPSHOT``). The automation triggers evaluate every
flow run's end state that way (read the bucket, then increment it), so every job's
end logged tracebacks and the crash-detection automation could lose the events it
counts. ``BEGIN IMMEDIATE`` takes the write lock when the transaction begins, so a
busy database is waited for (Prefect's ``busy_timeout``) instead of failing.
Transactions are Prefect's writes (creates, state changes, automations); plain
reads run outside them and are not affected.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from prefect.server.database.configurations import AioSqliteConfiguration
from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction

__all__ = ["LockFirstSqliteConfiguration", "install", "main"]


class LockFirstSqliteConfiguration(AioSqliteConfiguration):
    """Prefect's SQLite configuration, with every transaction begun ``IMMEDIATE`` (it waits for the lock, never fails on it)."""

    @asynccontextmanager
    async def begin_transaction(
        self, session: AsyncSession, with_for_update: bool = False
    ) -> AsyncGenerator[AsyncSessionTransaction, None]:
        async with super().begin_transaction(session, with_for_update=True) as transaction:
            yield transaction


def install() -> bool:
    """Give this process's Prefect server the lock-first configuration when its database is SQLite; whether it did."""
    from prefect.server.database.dependencies import set_database_config
    from prefect.server.utilities.database import get_dialect
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL

    url = PREFECT_API_DATABASE_CONNECTION_URL.value()
    if not url or get_dialect(url).name != "sqlite":
        return False  # PostgreSQL locks rows itself
    set_database_config(LockFirstSqliteConfiguration(connection_url=url))
    return True


def main() -> None:
    """``prefect <arguments of this process>``, after :func:`install` (Prefect's CLI reads ``sys.argv`` itself)."""
    install()
    from prefect.cli import app

    sys.argv[0] = "prefect"
    app()


if __name__ == "__main__":
    main()
