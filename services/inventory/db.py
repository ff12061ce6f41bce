"""Inventory schema (created idempotently at start) and the seeded stock."""

from __future__ import annotations

from psycopg import AsyncConnection, sql

from services.common.catalogue import CATALOGUE
from services.common.db import Migration, run_migration

# Distinct per service: several services may share one database (the twin does).
MIGRATION_LOCK_KEY = 7_301_001

SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS inventory (
        product_id text PRIMARY KEY,
        stock integer NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT inventory_stock_non_negative CHECK (stock >= 0)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS reservations (
        order_id text PRIMARY KEY,
        product_id text NOT NULL REFERENCES inventory (product_id),
        quantity integer NOT NULL CHECK (quantity > 0),
        stock_after integer NOT NULL,
        status text NOT NULL DEFAULT 'reserved' CHECK (status IN ('reserved', 'released')),
        reserved_at timestamptz NOT NULL DEFAULT now(),
        released_at timestamptz
    )
    """,
)


def migration(*, seed: bool) -> Migration:
    async def migrate(conn: AsyncConnection) -> None:
        statements: list[str] = list(SCHEMA)
        if seed:
            # ON CONFLICT DO NOTHING: a restart never resets stock that orders already consumed.
            values = sql.SQL(", ").join(
                sql.SQL("({}, {})").format(sql.Literal(item.id), sql.Literal(item.stock)) for item in CATALOGUE
            )
            statement = sql.SQL(
                "INSERT INTO inventory (product_id, stock) VALUES {} ON CONFLICT (product_id) DO NOTHING"
            )
            statements.append(statement.format(values).as_string(conn))
        await run_migration(conn, lock_key=MIGRATION_LOCK_KEY, statements=statements)

    return migrate
