"""local/postgres.py: a real server on 127.0.0.1 that tests and the twin start, use and stop."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from local.postgres import PostgresServer
from tests.support.postgres import server_root


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    path = server_root()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_server_listens_on_loopback_only_and_requires_the_password(root: Path) -> None:
    with PostgresServer(root, settings={"fsync": "off"}) as server:
        params = server.params("postgres")
        with psycopg.connect(params.conninfo()) as conn:
            assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(params.conninfo().replace(params.password, "wrong"), connect_timeout=5)
        postmaster = psutil.Process(server._proc.pid)  # type: ignore[union-attr]
        listening = {c.laddr.ip for c in postmaster.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
        assert listening == {"127.0.0.1"}


def test_create_database_is_idempotent_and_env_matches_the_service_contract(root: Path) -> None:
    with PostgresServer(root, settings={"fsync": "off"}) as server:
        first = server.create_database("shop")
        second = server.create_database("shop")
        assert first == second
        assert first.env() == {
            "DATABASE_HOST": "127.0.0.1",
            "DATABASE_PORT": str(server.port),
            "DATABASE_NAME": "shop",
            "DATABASE_USER": "postgres",
            "DATABASE_PASSWORD": server.password,
        }
        with psycopg.connect(first.conninfo()) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("shop",)


def test_restart_keeps_data_and_password_and_stop_leaves_no_process(root: Path) -> None:
    server = PostgresServer(root, settings={"fsync": "off"})
    params = server.start()
    password = server.password
    with psycopg.connect(server.create_database("keep").conninfo(), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t (x int)")
        conn.execute("INSERT INTO t VALUES (42)")
    pid = server._proc.pid  # type: ignore[union-attr]
    server.stop()
    assert not server.running
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE

    server.start()
    try:
        assert server.password == password == params.password
        with psycopg.connect(server.params("keep").conninfo()) as conn:
            assert conn.execute("SELECT x FROM t").fetchall() == [(42,)]
    finally:
        server.stop()


def test_params_before_start_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="not been started"):
        PostgresServer(tmp_path / "never").params("postgres")
