"""Product schema (created idempotently at start) and the seeded catalogue."""

from __future__ import annotations

from psycopg import AsyncConnection, sql

from services.common.catalogue import CATALOGUE
from services.common.db import Migration, run_migration

MIGRATION_LOCK_KEY = 7_301_002

SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS products (
        id text PRIMARY KEY,
        name text NOT NULL,
        price numeric(12, 2) NOT NULL CHECK (price >= 0),
        currency char(3) NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
)


def migration(*, seed: bool) -> Migration:
    async def migrate(conn: AsyncConnection) -> None:
        statements: list[str] = list(SCHEMA)
        if seed:
            values = sql.SQL(", ").join(
                sql.SQL("({}, {}, {}, {})").format(
                    sql.Literal(item.id), sql.Literal(item.name), sql.Literal(item.price), sql.Literal(item.currency)
                )
                for item in CATALOGUE
            )
            statement = sql.SQL(
                "INSERT INTO products (id, name, price, currency) VALUES {} ON CONFLICT (id) DO NOTHING"
            )
            statements.append(statement.format(values).as_string(conn))
        await run_migration(conn, lock_key=MIGRATION_LOCK_KEY, statements=statements)

    return migrate
