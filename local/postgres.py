"""A real PostgreSQL server from `pgserver`'s binaries, on 127.0.0.1 and a free port.

pgserver's own `PostgresServer` listens on a Unix socket only and stops on interpreter exit; the services
(and the twin's Envoy-fronted processes) need TCP, and tests need a server they start and stop
themselves. So this runner uses pgserver only for its binaries: `initdb` once per data folder, then the
`postmaster` as a child process we own (its pid, its log file), stopped with a fast shutdown.

Layout under `root`: `data/` (PGDATA), `password` (the superuser password, kept so a restarted twin
reconnects with the same one), `postgres.log`, and the Unix socket.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import sql

LOOPBACK = "127.0.0.1"
SUPERUSER = "postgres"
# PostgreSQL refuses to run as root; when we are root the postmaster runs as this system user
# (the same one pgserver itself creates for the same reason).
SYSTEM_USER = "pgserver"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ConnectionParams:
    """Where one database lives; `env()` gives the services' DATABASE_* variables."""

    host: str
    port: int
    dbname: str
    user: str
    password: str = field(repr=False)

    def conninfo(self) -> str:
        return psycopg.conninfo.make_conninfo(
            host=self.host, port=self.port, dbname=self.dbname, user=self.user, password=self.password
        )

    def env(self) -> dict[str, str]:
        """The env-var contract of `services/*/settings.py`."""
        return {
            "DATABASE_HOST": self.host,
            "DATABASE_PORT": str(self.port),
            "DATABASE_NAME": self.dbname,
            "DATABASE_USER": self.user,
            "DATABASE_PASSWORD": self.password,
        }


class PostgresServer:
    """One PostgreSQL cluster in `root`, listening on 127.0.0.1 only.

    `start()` initialises the data folder the first time and returns the `postgres` database's params;
    `create_database(name)` is idempotent; `stop()` shuts down and reaps the postmaster.
    """

    def __init__(
        self,
        root: Path,
        *,
        port: int | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.data_dir = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self._requested_port = port
        # max_connections leaves room for several services' pools plus a 64-way benchmark.
        self._settings = {"max_connections": "200", **(settings or {})}
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: object | None = None
        self.port: int | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> ConnectionParams:
        if self._proc is not None and self._proc.poll() is None:
            return self.params(SUPERUSER)
        self.root.mkdir(parents=True, exist_ok=True)
        run_as = self._run_as_user()
        self._initdb(run_as)
        self.port = self._requested_port or _free_port()
        args = [str(self._bin("postgres")), "-D", str(self.data_dir), "-h", LOOPBACK, "-p", str(self.port)]
        args += ["-k", str(self.root)]
        for key, value in self._settings.items():
            args += ["-c", f"{key}={value}"]
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log = log
        self._proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # our own process group: a Ctrl-C to the parent doesn't half-kill it
            user=run_as,
        )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self.params(SUPERUSER)

    def stop(self, timeout: float = 15.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            # SIGINT is PostgreSQL's "fast" shutdown: roll back open transactions, checkpoint, exit.
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]
            self._log = None

    def restart(self, timeout: float = 60.0) -> ConnectionParams:
        """Start again on the same port and data after the postmaster exited (a crash, an operator's restart)."""
        port = self.port
        self.stop()
        self._requested_port = port
        return self.start(timeout)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- databases -------------------------------------------------------------------------------------
    def params(self, dbname: str) -> ConnectionParams:
        if self.port is None:
            raise RuntimeError("the server has not been started")
        return ConnectionParams(LOOPBACK, self.port, dbname, SUPERUSER, self.password)

    def create_database(self, name: str) -> ConnectionParams:
        """Create `name` unless it exists; return its connection params."""
        with psycopg.connect(self.params(SUPERUSER).conninfo(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.params(name)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.params(SUPERUSER).conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    @property
    def password(self) -> str:
        return (self.root / "password").read_text().strip()

    # -- internals -------------------------------------------------------------------------------------
    @staticmethod
    def _bin(name: str) -> Path:
        with warnings.catch_warnings():
            # importing pgserver probes XDG_RUNTIME_DIR for its own (unused here) lock file
            warnings.simplefilter("ignore")
            from pgserver._commands import POSTGRES_BIN_PATH

        return Path(POSTGRES_BIN_PATH) / name

    def _run_as_user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(SYSTEM_USER)
        # The postmaster (not root) must traverse to its data folder and to pgserver's binaries.
        ensure_prefix_permissions(self.root)
        ensure_prefix_permissions(self._bin("postgres"))
        self.root.chmod(0o755)
        return SYSTEM_USER

    def _initdb(self, run_as: str | None) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        password_file = self.root / "password"
        if not password_file.exists():
            password_file.write_text(secrets.token_urlsafe(18) + "\n")
        password_file.chmod(0o644 if run_as else 0o600)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        if run_as:
            import shutil

            shutil.chown(self.data_dir, user=run_as, group=run_as)
            shutil.chown(self.root, user=run_as, group=run_as)
        done = subprocess.run(
            [
                str(self._bin("initdb")),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--pwfile",
                str(password_file),
                "--auth-local=trust",
                # TCP clients must present the password, as they would against RDS.
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            user=run_as,
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed in {self.data_dir}: {done.stderr.decode(errors='replace').strip()}")
        password_file.chmod(0o600)  # only initdb (possibly as the system user) needed to read it

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                raise RuntimeError(f"postgres exited early; see {self.log_path}:\n{self._tail_log()}")
            try:
                with psycopg.connect(self.params(SUPERUSER).conninfo(), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                last = exc
                time.sleep(0.1)
        raise TimeoutError(f"postgres did not accept connections within {timeout}s: {last}")

    def _tail_log(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextmanager
def running_postgres(root: Path, **kwargs: object) -> Iterator[PostgresServer]:
    """Start a server in `root` for the duration of the block; always stopped after."""
    server = PostgresServer(root, **kwargs)  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.stop()
