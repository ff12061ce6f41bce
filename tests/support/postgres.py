"""PostgreSQL for tests: one real server per test session (per xdist worker), a fresh database per user.

Built on `local.postgres.PostgresServer`, the same runner the twin uses. Durability is traded for speed
(fsync off): a test database never has to survive a power cut.
"""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from local.postgres import ConnectionParams, PostgresServer
from services.common.bootstrap import bootstrap
from services.common.dbroles import SERVICE_ROLES, role_name

FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
_counter = itertools.count(1)


def server_root() -> Path:
    """A fresh folder for a server's data, outside pytest's tmp tree.

    As root, the postmaster runs as an unprivileged user that must traverse to its data folder, and
    pytest (any concurrent run, xdist workers included) resets `/tmp/pytest-of-root` to 0700.
    """
    return Path(tempfile.mkdtemp(prefix="serverless-mesh-pg-"))


@contextmanager
def postgres_server(*, port: int | None = None) -> Iterator[PostgresServer]:
    """A started server in a fresh folder (127.0.0.1, free port unless given); stopped, reaped, removed on exit."""
    root = server_root()
    server = PostgresServer(root, port=port, settings=FAST_SETTINGS)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def fresh_database(server: PostgresServer, prefix: str) -> ConnectionParams:
    """A new empty database, unique within this process (xdist workers each have their own server)."""
    return server.create_database(f"{prefix}_{os.getpid()}_{next(_counter)}")


def execute(params: ConnectionParams, statement: str, args: tuple | dict | None = None) -> list[tuple]:  # type: ignore[type-arg]
    """Run one statement in autocommit and return its rows (empty when it returns none)."""
    with psycopg.connect(params.conninfo(), autocommit=True) as conn:
        cur = conn.execute(statement, args)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


@dataclass(frozen=True)
class ShopDatabase:
    """A database the bootstrap has run in: the master's params (tests arrange and inspect data with them) and
    each service role's, which is what a service connects with."""

    master: ConnectionParams
    passwords: dict[str, str] = field(repr=False)

    def role(self, service: str) -> ConnectionParams:
        m = self.master
        return ConnectionParams(m.host, m.port, m.dbname, role_name(m.dbname, service), self.passwords[service])


def run_bootstrap(master: ConnectionParams, passwords: dict[str, str], *, seed: bool = True) -> None:
    with psycopg.connect(master.conninfo(), autocommit=True) as conn:
        bootstrap(conn, passwords=passwords, seed=seed)


def bootstrapped_database(server: PostgresServer, prefix: str, *, seed: bool = True) -> ShopDatabase:
    """A fresh database with the schema, the service roles (fresh passwords) and their grants."""
    master = fresh_database(server, prefix)
    passwords = {service: secrets.token_urlsafe(18) for service in SERVICE_ROLES}
    run_bootstrap(master, passwords, seed=seed)
    return ShopDatabase(master, passwords)
