"""The psycopg pool, schema migration under an advisory lock, and the readiness check."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from services.common.errors import ServiceUnavailable
from services.common.settings import ServiceSettings

logger = logging.getLogger("services.db")

Migration = Callable[[AsyncConnection], Awaitable[None]]


def conninfo(settings: ServiceSettings, application_name: str) -> str:
    return psycopg.conninfo.make_conninfo(
        host=settings.DATABASE_HOST,
        port=settings.DATABASE_PORT,
        dbname=settings.DATABASE_NAME,
        user=settings.DATABASE_USER,
        password=settings.DATABASE_PASSWORD.get_secret_value(),
        connect_timeout=max(1, int(settings.DATABASE_TIMEOUT_SECONDS)),
        application_name=application_name,
    )


async def run_migration(conn: AsyncConnection, *, lock_key: int, statements: Sequence[str]) -> None:
    """Apply idempotent DDL in one transaction, serialised across replicas by an advisory lock.

    `CREATE TABLE IF NOT EXISTS` alone is not safe when several replicas start at once (two of them can
    both decide the table is missing and one fails on the catalog's unique index), hence the lock; the
    xact variant releases it at commit even if the pod dies mid-way.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
        for statement in statements:
            await conn.execute(statement)  # type: ignore[arg-type]


class Database:
    """Owns the pool; migrates in the background until the database answers, then reports ready.

    The process starts (and /health answers) even while PostgreSQL is unreachable, as a pod does while
    RDS is still being created; /ready and every data route answer 503 until the migration has run.
    Until then we retry with our own short backoff on direct connections: the pool's reconnect backoff
    doubles without a cap, which would keep a pod unready long after its database came up.
    """

    def __init__(self, settings: ServiceSettings, *, service: str, migrate: Migration) -> None:
        self.settings = settings
        self.service = service
        self._migrate = migrate
        self._conninfo = conninfo(settings, service)
        self.pool = AsyncConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=settings.DATABASE_POOL_SIZE,
            timeout=settings.DATABASE_TIMEOUT_SECONDS,
            kwargs={"autocommit": True},
            # A connection that died with a database restart is replaced instead of handed out.
            check=AsyncConnectionPool.check_connection,
            open=False,
            name=service,
        )
        self.migrated = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._migrate_until_done(), name=f"{self.service}-migrate")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.pool.close()

    async def _migrate_until_done(self) -> None:
        delay = 0.1
        while True:
            try:
                async with await AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
                    await self._migrate(conn)
                break
            except psycopg.OperationalError as exc:
                logger.warning("database not reachable yet, retrying", extra={"error": str(exc).strip()[:200]})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        await self.pool.open(wait=False)
        self.migrated.set()
        logger.info("schema ready")

    async def ready(self) -> bool:
        if not self.migrated.is_set():
            return False
        try:
            async with self.pool.connection(timeout=min(2.0, self.settings.DATABASE_TIMEOUT_SECONDS)) as conn:
                await conn.execute("SELECT 1")
            return True
        except (psycopg.Error, PoolTimeout):
            return False

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection (autocommit; open a transaction where one is needed), or 503 before migration."""
        if not self.migrated.is_set():
            raise ServiceUnavailable("the database is not ready yet")
        async with self.pool.connection() as conn:
            yield conn
