"""The psycopg pool, the check that the bootstrap has given this service's role its grants, and readiness.

The services run no DDL: their roles may not (`services.common.dbroles`), and the schema is the bootstrap's
(`services.common.bootstrap`, a Job that runs as the master user before any Deployment starts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from services.common.dbroles import SERVICE_ROLES, ServiceRole
from services.common.errors import ServiceUnavailable
from services.common.settings import ServiceSettings

logger = logging.getLogger("services.db")


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


class SchemaNotReady(Exception):
    """The role's tables or grants are not there yet (the bootstrap has not run, or a different plan ran)."""


async def check_grants(conn: AsyncConnection, plan: ServiceRole) -> None:
    """Every table of the plan exists and the connected role holds each planned privilege, or `SchemaNotReady`
    naming what is missing. Catalog reads only: nothing is locked, and a role that may not read a table still
    learns whether it exists (as any role can from pg_class)."""
    missing: list[str] = []
    for table in plan.tables:
        cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
        row = await cur.fetchone()
        if not (row and row[0]):
            missing.append(f"table {table}")
    for grant in plan.grants:
        if f"table {grant.table}" in missing:
            continue
        if grant.columns:
            cur = await conn.execute(
                "SELECT bool_and(has_column_privilege(%s, c, %s)) FROM unnest(%s::text[]) AS c",
                (grant.table, grant.privilege, list(grant.columns)))
        else:
            cur = await conn.execute("SELECT has_table_privilege(%s, %s)", (grant.table, grant.privilege))
        row = await cur.fetchone()
        if not (row and row[0]):
            missing.append(f"{grant.privilege} on {grant.table}" + (f" ({', '.join(grant.columns)})"
                                                                     if grant.columns else ""))
    if missing:
        raise SchemaNotReady("; ".join(missing))


class Database:
    """Owns the pool; checks its role's grants in the background until they are in place, then reports ready.

    The process starts (and /health answers) even while PostgreSQL is unreachable, as a pod does while
    RDS is still being created; /ready and every data route answer 503 until the grants check has passed.
    Until then we retry with our own short backoff on direct connections: the pool's reconnect backoff
    doubles without a cap, which would keep a pod unready long after its database came up.
    """

    def __init__(self, settings: ServiceSettings, *, service: str) -> None:
        self.settings = settings
        self.service = service
        self._plan = SERVICE_ROLES[service]
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
        self.granted = asyncio.Event()
        """Set once the grants check passed."""
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._check_until_done(), name=f"{self.service}-grants")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.pool.close()

    async def _check_until_done(self) -> None:
        delay = 0.1
        while True:
            try:
                async with await AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
                    await check_grants(conn, self._plan)
                break
            except psycopg.OperationalError as exc:
                logger.warning("database not reachable yet, retrying", extra={"error": str(exc).strip()[:200]})
            except SchemaNotReady as exc:
                logger.warning("schema or grants not in place yet (has the bootstrap run?), retrying",
                               extra={"missing": str(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        await self.pool.open(wait=False)
        self.granted.set()
        logger.info("schema ready")

    async def ready(self) -> bool:
        if not self.granted.is_set():
            return False
        try:
            async with self.pool.connection(timeout=min(2.0, self.settings.DATABASE_TIMEOUT_SECONDS)) as conn:
                await conn.execute("SELECT 1")
            return True
        except (psycopg.Error, PoolTimeout):
            return False

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection (autocommit; open a transaction where needed), or 503 until the grants check passed."""
        if not self.granted.is_set():
            raise ServiceUnavailable("the database is not ready yet")
        async with self.pool.connection() as conn:
            yield conn
