"""PostgreSQL for tests: one real server per test session (per xdist worker), a fresh database per user.

Built on `local.postgres.PostgresServer`, the same runner the twin uses. Durability is traded for speed
(fsync off): a test database never has to survive a power cut.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from local.postgres import ConnectionParams, PostgresServer

FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
_counter = itertools.count(1)


@contextmanager
def postgres_server(root: Path, *, port: int | None = None) -> Iterator[PostgresServer]:
    """A started server in `root` (127.0.0.1, free port unless given); stopped and reaped on exit."""
    server = PostgresServer(root, port=port, settings=FAST_SETTINGS)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def fresh_database(server: PostgresServer, prefix: str) -> ConnectionParams:
    """A new empty database, unique within this process (xdist workers each have their own server)."""
    return server.create_database(f"{prefix}_{os.getpid()}_{next(_counter)}")


def execute(params: ConnectionParams, statement: str, args: tuple | dict | None = None) -> list[tuple]:  # type: ignore[type-arg]
    """Run one statement in autocommit and return its rows (empty when it returns none)."""
    with psycopg.connect(params.conninfo(), autocommit=True) as conn:
        cur = conn.execute(statement, args)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []
