"""The database's least privilege on real PostgreSQL: each service's role can run exactly its own queries (the
repositories' real SQL), nothing of another service's, no DDL, no roles; the bootstrap is re-runnable and rotates a
password. The plan under test is `services.common.dbroles`, the statements `services.common.bootstrap`."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest
from psycopg import errors

from local.postgres import ConnectionParams, PostgresServer
from services.common.bootstrap import bootstrap, service_passwords
from services.common.db import SchemaNotReady, check_grants
from services.common.dbroles import SERVICE_ROLES, password_env, role_name
from services.inventory import repository as inventory_repo
from services.notification import repository as notification_repo
from services.product import repository as product_repo
from tests.support.postgres import ShopDatabase, bootstrapped_database, execute, run_bootstrap

DENIED = (errors.InsufficientPrivilege,)


@pytest.fixture(scope="module")
def shop(postgres: PostgresServer) -> ShopDatabase:
    return bootstrapped_database(postgres, "roles")


def as_role(shop: ShopDatabase, service: str, statement: str, args: Any = None) -> list[tuple[Any, ...]]:
    return execute(shop.role(service), statement, args)


def run_async(params: ConnectionParams, work: Callable[[psycopg.AsyncConnection], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        async with await psycopg.AsyncConnection.connect(params.conninfo(), autocommit=True) as conn:
            return await work(conn)

    return asyncio.run(go())


# --- Each role can do exactly its queries ---------------------------------------------------------------------

def test_inventory_role_runs_its_repository_reserve_release_and_reads(shop: ShopDatabase) -> None:
    params = shop.role("inventory")
    reserved = run_async(params, lambda c: inventory_repo.reserve(c, order_id="roles-o1", product_id="prod-0001",
                                                                   quantity=2))
    assert reserved.quantity == 2
    assert run_async(params, lambda c: inventory_repo.release(c, order_id="roles-o1")) == "released"
    assert run_async(params, lambda c: inventory_repo.get_stock(c, product_id="prod-0001")) == 120


def test_product_role_reads_the_catalogue(shop: ShopDatabase) -> None:
    rows, more = run_async(shop.role("product"), lambda c: product_repo.list_products(c, limit=3, after=None))
    assert [r.id for r in rows] == ["prod-0001", "prod-0002", "prod-0003"] and more
    assert run_async(shop.role("product"), lambda c: product_repo.get_product(c, product_id="prod-0002")) is not None


def test_notification_role_inserts_once_and_lists(shop: ShopDatabase) -> None:
    params = shop.role("notification")
    for _ in range(2):  # the second is the ON CONFLICT DO NOTHING path, which needs no UPDATE
        run_async(params, lambda c: notification_repo.create(c, user_id="u-roles", message="m", order_id="n-o1"))
    rows, _ = run_async(params, lambda c: notification_repo.list_for_user(c, user_id="u-roles", limit=5, before=None))
    assert [r.order_id for r in rows] == ["n-o1"]


@pytest.mark.parametrize("service", sorted(SERVICE_ROLES))
def test_each_role_passes_its_own_grants_check(shop: ShopDatabase, service: str) -> None:
    run_async(shop.role(service), lambda c: check_grants(c, SERVICE_ROLES[service]))


def test_a_role_fails_another_services_grants_check_naming_what_is_missing(shop: ShopDatabase) -> None:
    with pytest.raises(SchemaNotReady, match=r"SELECT on inventory; UPDATE on inventory \(stock, updated_at\)"):
        run_async(shop.role("product"), lambda c: check_grants(c, SERVICE_ROLES["inventory"]))


# --- Nothing of another service's, nothing beyond the plan -------------------------------------------------------

@pytest.mark.parametrize(("service", "statement"), [
    ("product", "UPDATE inventory SET stock = 0 WHERE product_id = 'prod-0001'"),
    ("product", "SELECT * FROM reservations"),
    ("product", "UPDATE products SET price = 0 WHERE id = 'prod-0001'"),
    ("product", "INSERT INTO products (id, name, price, currency) VALUES ('x', 'x', 1, 'EUR')"),
    ("product", "DELETE FROM products"),
    ("notification", "SELECT * FROM reservations"),
    ("notification", "SELECT stock FROM inventory"),
    ("notification", "UPDATE notifications SET message = 'changed'"),
    ("notification", "DELETE FROM notifications"),
    ("inventory", "SELECT * FROM notifications"),
    ("inventory", "UPDATE products SET price = 0"),
    ("inventory", "INSERT INTO inventory (product_id, stock) VALUES ('new', 5)"),
    ("inventory", "UPDATE inventory SET product_id = 'renamed' WHERE product_id = 'prod-0001'"),
    ("inventory", "UPDATE reservations SET quantity = 99"),
    ("inventory", "DELETE FROM reservations"),
    ("inventory", "TRUNCATE inventory"),
])
def test_a_role_cannot_touch_what_its_plan_does_not_grant(shop: ShopDatabase, service: str, statement: str) -> None:
    with pytest.raises(DENIED):
        as_role(shop, service, statement)


@pytest.mark.parametrize("service", sorted(SERVICE_ROLES))
@pytest.mark.parametrize("statement", [
    "CREATE TABLE stolen (x int)",
    "CREATE TEMPORARY TABLE stolen (x int)",
    "CREATE SCHEMA mine",
    "CREATE ROLE sneaky LOGIN PASSWORD 'sneaky-password-1234'",
    "CREATE DATABASE mine",
    "ALTER TABLE inventory ADD COLUMN x int",
    "DROP TABLE products",
])
def test_no_role_can_create_tables_schemas_roles_or_databases(shop: ShopDatabase, service: str,
                                                             statement: str) -> None:
    with pytest.raises((errors.InsufficientPrivilege, errors.UndefinedTable)) as caught:
        as_role(shop, service, statement)
    # DROP/ALTER of a table the role may not see at all would be UndefinedTable; every table here is visible
    assert isinstance(caught.value, errors.InsufficientPrivilege), caught.value


def test_a_role_cannot_connect_to_another_database(postgres: PostgresServer, shop: ShopDatabase) -> None:
    other = bootstrapped_database(postgres, "roles_other")
    mine = shop.role("inventory")
    elsewhere = ConnectionParams(mine.host, mine.port, other.master.dbname, mine.user, mine.password)
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        execute(elsewhere, "SELECT 1")


def test_a_table_created_later_by_the_owner_is_invisible_to_every_role(shop: ShopDatabase) -> None:
    execute(shop.master, "CREATE TABLE IF NOT EXISTS audit_later (x int)")
    for service in SERVICE_ROLES:
        with pytest.raises(DENIED):
            as_role(shop, service, "SELECT * FROM audit_later")


def test_roles_have_no_attributes_beyond_login(shop: ShopDatabase) -> None:
    names = [role_name(shop.master.dbname, s) for s in SERVICE_ROLES]
    rows = execute(shop.master, "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolinherit, rolcanlogin, "
                                "rolreplication, rolbypassrls FROM pg_roles WHERE rolname = ANY(%s)", (names,))
    assert sorted(rows) == sorted((n, False, False, False, False, True, False, False) for n in names)


# --- The bootstrap: re-runnable, rotating, refusing bad input -------------------------------------------------

def test_bootstrap_twice_and_concurrently_keeps_one_schema_the_same_grants_and_the_data(
        postgres: PostgresServer) -> None:
    shop = bootstrapped_database(postgres, "roles_rerun")
    execute(shop.master, "UPDATE inventory SET stock = 7 WHERE product_id = 'prod-0001'")
    grants_sql = ("SELECT grantee, table_name, privilege_type FROM information_schema.role_table_grants "
                  "WHERE table_schema = 'public' AND grantee <> current_user ORDER BY 1, 2, 3")
    before = execute(shop.master, grants_sql)
    failures: list[BaseException] = []

    def again() -> None:
        try:
            run_bootstrap(shop.master, shop.passwords)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=again) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert execute(shop.master, grants_sql) == before
    assert execute(shop.master, "SELECT stock FROM inventory WHERE product_id = 'prod-0001'") == [(7,)]
    assert as_role(shop, "product", "SELECT count(*) FROM products") == [(8,)]


def test_bootstrap_rotates_a_password_and_revokes_a_grant_made_by_hand(postgres: PostgresServer) -> None:
    shop = bootstrapped_database(postgres, "roles_rotate")
    product = shop.role("product").user
    execute(shop.master, f'GRANT UPDATE ON products TO "{product}"')  # drift: someone granted by hand
    rotated = {**shop.passwords, "product": "a-brand-new-password-after-rotation"}
    run_bootstrap(shop.master, rotated)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        as_role(shop, "product", "SELECT 1")
    now = ShopDatabase(shop.master, rotated)
    assert execute(now.role("product"), "SELECT count(*) FROM products") == [(8,)]
    with pytest.raises(DENIED):
        execute(now.role("product"), "UPDATE products SET price = 0")
    assert as_role(shop, "inventory", "SELECT count(*) FROM inventory") == [(8,)]  # the others' are unchanged


def test_bootstrap_refuses_a_missing_password_and_changes_nothing(postgres: PostgresServer) -> None:
    shop = bootstrapped_database(postgres, "roles_missing")
    with psycopg.connect(shop.master.conninfo(), autocommit=True) as conn, \
            pytest.raises(ValueError, match="no password for the roles of notification"):
        bootstrap(conn, passwords={k: v for k, v in shop.passwords.items() if k != "notification"}, seed=True)


def test_the_jobs_environment_names_each_missing_or_short_password() -> None:
    env = {password_env("inventory"): "x" * 20, password_env("product"): "short"}
    with pytest.raises(ValueError) as caught:
        service_passwords(env)
    assert str(caught.value) == ("PRODUCT_DATABASE_PASSWORD is shorter than 16 characters; "
                                 "NOTIFICATION_DATABASE_PASSWORD is missing")


def test_identifiers_and_passwords_are_quoted_not_formatted(postgres: PostgresServer) -> None:
    """A password full of quotes and a database name that needs quoting still bootstrap (sql.Literal/Identifier)."""
    master = postgres.create_database("roles_Quoted-db")
    passwords = {s: f"it's a \"quoted\"; DROP TABLE x; -- {s}" for s in SERVICE_ROLES}
    run_bootstrap(master, passwords)
    product = ShopDatabase(master, passwords).role("product")
    assert product.user == "roles_quoted_db_product"
    assert execute(product, "SELECT count(*) FROM products") == [(8,)]


def test_role_names_longer_than_postgres_keeps_are_refused() -> None:
    with pytest.raises(ValueError, match="at most 63 bytes"):
        role_name("d" * 60, "notification")
    with pytest.raises(ValueError, match="no database role is planned for service 'myapp'"):
        role_name("shop", "myapp")


def test_an_rds_like_master_without_superuser_bootstraps_and_reruns(postgres: PostgresServer) -> None:
    """RDS's master user is no superuser: it has CREATEROLE and CREATEDB and owns the database it created."""
    master_name = f"master_{postgres.port}_{id(postgres) % 10_000}"
    superuser = postgres.params("postgres")
    with psycopg.connect(superuser.conninfo(), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (master_name,)).fetchone():
            conn.execute(psycopg.sql.SQL("CREATE ROLE {} LOGIN CREATEROLE CREATEDB PASSWORD {}").format(
                psycopg.sql.Identifier(master_name), psycopg.sql.Literal("master-password-123")))
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {} OWNER {}").format(
            psycopg.sql.Identifier(f"rdslike_{master_name}"), psycopg.sql.Identifier(master_name)))
    master = ConnectionParams(superuser.host, superuser.port, f"rdslike_{master_name}", master_name,
                              "master-password-123")
    passwords = {s: f"{s}-first-password-xyz" for s in SERVICE_ROLES}
    run_bootstrap(master, passwords)
    rotated = {s: f"{s}-second-password-xyz" for s in SERVICE_ROLES}
    run_bootstrap(master, rotated)  # the ALTER ROLE path, as the roles' creator (PostgreSQL 16 gives it ADMIN)
    shop = ShopDatabase(master, rotated)
    assert execute(shop.role("inventory"), "SELECT count(*) FROM inventory") == [(8,)]
    with pytest.raises(DENIED):
        execute(shop.role("notification"), "SELECT * FROM reservations")
    owner = execute(master, "SELECT tableowner FROM pg_tables WHERE tablename = 'inventory'")
    assert owner == [(master_name,)]
