"""The database bootstrap: the only code that connects as the master user. It creates the schema, one login role
per service (`services.common.dbroles`) with its password, and exactly the grants the plan lists; then it exits.

Re-runnable, as a Job that runs on every change of its spec must be: roles are created if missing and otherwise
altered (a new password is a rotation), tables are created if missing, and each role's table privileges are first
revoked and then granted from the plan, so a grant dropped from the plan is gone after the next run. All of it is one
transaction under an advisory lock: two runs at once serialise, and a run that fails changes nothing.

Besides the grants, PUBLIC (every role) loses what PostgreSQL gives it by default: CONNECT and TEMPORARY on the
database, CREATE on schema `public` (granted before PostgreSQL 15) and EXECUTE on the owner's future functions.
Tables are owner-only by default, so a table a later run (or a person) creates is invisible to every service role
until the plan grants it.

Every identifier and password is composed with `psycopg.sql` (`Identifier`, `Literal`), never by string formatting.

`python -m services.common.bootstrap`: DATABASE_* are the master's (the master Secret), `<SERVICE>_DATABASE_PASSWORD`
each service's (its own Secret), SEED_CATALOGUE seeds the catalogue's products and stock (existing rows are kept).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql
from pydantic import Field

from services.common.catalogue import CATALOGUE
from services.common.dbroles import SERVICE_ROLES, ServiceRole, password_env, role_name
from services.common.logging import configure_logging
from services.common.schema import SCHEMA
from services.common.settings import ServiceSettings

logger = logging.getLogger("services.bootstrap")

#: One key for every run against a database: runs of one database serialise, other databases' runs don't wait.
LOCK_KEY = 7_301_000
MIN_PASSWORD_LENGTH = 16


class BootstrapSettings(ServiceSettings):
    """The master's DATABASE_* (from ServiceSettings), whether to seed, how long to wait for the server."""

    SEED_CATALOGUE: bool = True
    BOOTSTRAP_TIMEOUT_SECONDS: float = Field(default=300.0, gt=0)


def service_passwords(environ: Mapping[str, str]) -> dict[str, str]:
    """Each planned service's password from `<SERVICE>_DATABASE_PASSWORD`; a missing or short one is an error."""
    passwords, problems = {}, []
    for service in SERVICE_ROLES:
        value = environ.get(password_env(service), "")
        if len(value) < MIN_PASSWORD_LENGTH:
            problems.append(f"{password_env(service)} is {'missing' if not value else 'shorter than 16 characters'}")
        passwords[service] = value
    if problems:
        raise ValueError("; ".join(problems))
    return passwords


# --- Statements ---------------------------------------------------------------------------------------------

def role_statement(role: str, password: str, *, exists: bool) -> sql.Composed:
    """CREATE a missing role, ALTER an existing one: either way it logs in with `password` and may not create
    databases or roles, nor inherit another role's privileges."""
    if exists:
        return sql.SQL("ALTER ROLE {} WITH LOGIN NOINHERIT NOCREATEDB NOCREATEROLE PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(password))
    return sql.SQL("CREATE ROLE {} WITH LOGIN NOINHERIT NOCREATEDB NOCREATEROLE PASSWORD {}").format(
        sql.Identifier(role), sql.Literal(password))


def public_statements(database: str) -> list[sql.Composed]:
    """Take from PUBLIC what PostgreSQL hands every role by default."""
    return [
        sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)),
        sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC").format(),
        sql.SQL("ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC").format(),
    ]


def grant_statements(database: str, plan: ServiceRole) -> list[sql.Composed]:
    """The role's privileges exactly as planned: everything on the schema's tables and sequences revoked (column
    grants go with their table's), then CONNECT, USAGE and each planned grant."""
    role = sql.Identifier(role_name(database, plan.service))
    statements = [
        sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(role),
        sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {}").format(role),
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), role),
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role),
    ]
    for grant in plan.grants:
        columns = sql.SQL(" ({})").format(sql.SQL(", ").join(map(sql.Identifier, grant.columns))) \
            if grant.columns else sql.SQL("")
        statements.append(sql.SQL("GRANT {}{} ON TABLE {} TO {}").format(
            sql.SQL(grant.privilege), columns, sql.Identifier(grant.table), role))
    return statements


def seed_statements() -> list[sql.Composed]:
    """The catalogue's products and stock; ON CONFLICT DO NOTHING: a rerun never resets stock orders consumed."""
    products = sql.SQL(", ").join(
        sql.SQL("({}, {}, {}, {})").format(sql.Literal(i.id), sql.Literal(i.name), sql.Literal(i.price),
                                           sql.Literal(i.currency)) for i in CATALOGUE)
    stock = sql.SQL(", ").join(sql.SQL("({}, {})").format(sql.Literal(i.id), sql.Literal(i.stock)) for i in CATALOGUE)
    return [
        sql.SQL("INSERT INTO products (id, name, price, currency) VALUES {} ON CONFLICT (id) DO NOTHING").format(
            products),
        sql.SQL("INSERT INTO inventory (product_id, stock) VALUES {} ON CONFLICT (product_id) DO NOTHING").format(
            stock),
    ]


# --- The run ------------------------------------------------------------------------------------------------

def bootstrap(conn: psycopg.Connection[Any], *, passwords: Mapping[str, str], seed: bool) -> None:
    """Schema, roles and grants in the database `conn` is connected to (as its owner), in one transaction."""
    missing = sorted(set(SERVICE_ROLES) - set(passwords))
    if missing:
        raise ValueError(f"no password for the roles of {', '.join(missing)}")
    database = str(conn.info.dbname)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        for statement in SCHEMA:
            conn.execute(statement)  # type: ignore[arg-type]  # literal DDL, no parameters
        if seed:
            for composed in seed_statements():
                conn.execute(composed)
        for composed in public_statements(database):
            conn.execute(composed)
        for service, plan in SERVICE_ROLES.items():
            role = role_name(database, service)
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None
            conn.execute(role_statement(role, passwords[service], exists=exists))
            for composed in grant_statements(database, plan):
                conn.execute(composed)
            logger.info("role ready", extra={"role": role, "new": not exists, "grants": len(plan.grants)})


def connect_until_ready(settings: BootstrapSettings) -> psycopg.Connection[Any]:
    """The master's connection, retried until the server answers (its pod, or its sidecar, may still be starting)."""
    from services.common.db import conninfo

    deadline = time.monotonic() + settings.BOOTSTRAP_TIMEOUT_SECONDS
    delay = 0.2
    while True:
        try:
            return psycopg.connect(conninfo(settings, "db-bootstrap"), autocommit=True)
        except psycopg.OperationalError as exc:
            if time.monotonic() + delay > deadline:
                raise
            logger.warning("database not reachable yet, retrying", extra={"error": str(exc).strip()[:200]})
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def main(environ: Mapping[str, str] = os.environ) -> int:
    settings = BootstrapSettings()
    configure_logging("db-bootstrap", settings.LOG_LEVEL)
    try:
        passwords = service_passwords(environ)
    except ValueError as exc:
        logger.error("bad bootstrap environment", extra={"error": str(exc)})
        return 2
    try:
        with connect_until_ready(settings) as conn:
            bootstrap(conn, passwords=passwords, seed=settings.SEED_CATALOGUE)
    except psycopg.Error as exc:
        logger.error("bootstrap failed", extra={"error": str(exc).strip()[:500]})
        return 1
    logger.info("bootstrap done", extra={"database": settings.DATABASE_NAME, "roles": len(passwords)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
