"""Notification schema (created idempotently at start)."""

from __future__ import annotations

from psycopg import AsyncConnection

from services.common.db import Migration, run_migration

MIGRATION_LOCK_KEY = 7_301_003

SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS notifications (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        order_id text NOT NULL UNIQUE,
        user_id text NOT NULL,
        message text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    # Newest first per user is the only listing: (user_id, id DESC) serves it as an index range scan.
    "CREATE INDEX IF NOT EXISTS notifications_user_newest ON notifications (user_id, id DESC)",
)


def migration() -> Migration:
    async def migrate(conn: AsyncConnection) -> None:
        await run_migration(conn, lock_key=MIGRATION_LOCK_KEY, statements=SCHEMA)

    return migrate
