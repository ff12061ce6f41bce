"""The PostgreSQL engine: the graph's database (RDS instance, or the in-cluster StatefulSet) as one local server.

One `PostgresServer` (pgserver's binaries) in `<state>/postgres/` serves every database the graph declares, with the
graph's database name, user and password (the stack's `dbPassword`, which the twin supplies); its data folder
survives restarts. The graph's host names (the RDS address, or the in-cluster Service's DNS name) are translated to
127.0.0.1, and `host:port` to the local port, so a service whose Deployment says `DATABASE_HOST=<rds address>`,
`DATABASE_PORT=5432` reaches this server (`local.services` translates the pair together).

The graph's user is the master, created as RDS creates it (LOGIN, CREATEROLE, CREATEDB, owner of the database, no
superuser). Then the graph's Jobs run (`local.jobs`): the database bootstrap, with the master's Secret, creates the
schema and each service's role with the password from that service's Secret, exactly as in the cluster. So every
service process logs in as its own role, and the twin enforces the same grants.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from local.engine import Engine, EngineSettings
from local.errors import DeployError
from local.facts import Facts, PostgresFacts
from local.jobs import JOB, job_specs, run_job
from local.kube import K8S_SERVICE, env_value, k8s_secrets
from local.postgres import LOOPBACK, PostgresServer
from local.processes import LogSink
from sim.capture import Graph, Resource

RDS_INSTANCE = "aws:rds/instance:Instance"
STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"
DEFAULT_PORT = 5432


@dataclass(frozen=True)
class DatabaseSpec:
    """One database as the graph declares it: where clients are told to connect, and with what."""

    source: str
    """The resource it comes from (`aws:rds/instance:Instance shop-services-db-rds`)."""
    hosts: tuple[str, ...]
    port: int
    name: str
    user: str
    password: str = field(repr=False)


def _int(value: Any, default: int) -> int:
    return int(value) if value not in (None, "") else default


def _rds(res: Resource) -> DatabaseSpec:
    i, o = res.inputs, res.outputs
    port = _int(i.get("port"), DEFAULT_PORT)
    address = str(o.get("address") or "")
    if not address:
        raise DeployError(f"{RDS_INSTANCE} {res.name}: no address in the graph")
    for key in ("dbName", "username", "password"):
        if not i.get(key):
            raise DeployError(f"{RDS_INSTANCE} {res.name}: {key} is not set (the services could not connect)")
    return DatabaseSpec(source=f"{res.type} {res.name}", hosts=(address,), port=port, name=str(i["dbName"]),
                        user=str(i["username"]), password=str(i["password"]))


def _stateful_set(res: Resource, graph: Graph) -> DatabaseSpec | None:
    """The official `postgres` image's contract: POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB."""
    meta = res.inputs.get("metadata") or {}
    namespace = str(meta.get("namespace") or "default")
    spec = res.inputs.get("spec") or {}
    template = spec.get("template") or {}
    containers = (template.get("spec") or {}).get("containers") or []
    container = next((c for c in containers if "postgres" in str(c.get("image", "")).rsplit("/", 1)[-1]), None)
    if container is None:
        return None
    where = f"{res.type} {res.name}"
    secrets = k8s_secrets(graph)
    env = {str(e["name"]): env_value(e, namespace, secrets, {}, where) for e in container.get("env") or []}
    user = env.get("POSTGRES_USER") or "postgres"
    password = env.get("POSTGRES_PASSWORD")
    if not password:
        raise DeployError(f"{where}: POSTGRES_PASSWORD is not set (the image refuses to start without it)")
    labels = (template.get("metadata") or {}).get("labels") or {}
    hosts: list[str] = []
    port = DEFAULT_PORT
    for svc in graph.of_type(K8S_SERVICE):
        svc_meta, svc_spec = svc.inputs.get("metadata") or {}, svc.inputs.get("spec") or {}
        selector = svc_spec.get("selector") or {}
        if str(svc_meta.get("namespace") or "default") != namespace or not selector:
            continue
        if all(labels.get(k) == v for k, v in selector.items()):
            name = str(svc_meta.get("name"))
            hosts += [f"{name}.{namespace}.svc.cluster.local", f"{name}.{namespace}.svc", f"{name}.{namespace}"]
            port = _int(((svc_spec.get("ports") or [{}])[0]).get("port"), DEFAULT_PORT)
    if not hosts:
        raise DeployError(f"{where}: no Service in namespace {namespace} selects its pods (labels {labels})")
    return DatabaseSpec(source=where, hosts=tuple(hosts), port=port, name=env.get("POSTGRES_DB") or user,
                        user=user, password=password)


def database_specs(graph: Graph) -> list[DatabaseSpec]:
    specs = [_rds(r) for r in graph.of_type(RDS_INSTANCE)]
    specs += [s for r in graph.of_type(STATEFUL_SET) if (s := _stateful_set(r, graph)) is not None]
    return specs


WATCH_SECONDS = 0.5


class PostgresEngine(Engine):
    """Every database of the graph on one local PostgreSQL server (data in `<state>/postgres/data`)."""

    name = "postgres"
    types = (RDS_INSTANCE, STATEFUL_SET, JOB)
    provides = PostgresFacts
    live = True

    def __init__(self, sink: LogSink, *, state_dir: Path) -> None:
        self.sink = sink
        self.server = PostgresServer(state_dir / "postgres")
        self.specs: list[DatabaseSpec] = []
        self.jobs: dict[str, int] = {}
        """Job key -> how many pods it took to complete."""
        self.restarts = 0
        self._stopping = threading.Event()
        self._watchdog: threading.Thread | None = None

    @classmethod
    def build(cls, settings: EngineSettings, sink: LogSink) -> PostgresEngine:
        return cls(sink, state_dir=settings.state_dir)

    def deploy(self, graph: Graph, facts: Facts) -> PostgresFacts:
        self.specs = database_specs(graph)
        if not self.specs:
            return PostgresFacts(url=None)
        self.server.start(timeout=60.0)
        assert self.server.port is not None
        try:
            with psycopg.connect(self.server.params("postgres").conninfo(), autocommit=True) as conn:
                for spec in self.specs:
                    self._provision(conn, spec)
        except BaseException:
            self.stop()  # the server is not left running on a half-provisioned graph
            raise
        translations: dict[str, str] = {}
        for spec in self.specs:
            for host in spec.hosts:
                translations[f"{host}:{spec.port}"] = f"{LOOPBACK}:{self.server.port}"
                translations[host] = LOOPBACK
            self.sink.write(self.name, f"{spec.source}: database {spec.name}, user {spec.user} on "
                                       f"{LOOPBACK}:{self.server.port} (data in {self.server.data_dir})")
        try:
            # After the database, before any Deployment: as the Jobs' and the services' depends_on order them.
            self.jobs = {job.key: run_job(job, self.sink) for job in job_specs(graph, translations)}
        except BaseException:
            self.stop()
            raise
        self._watchdog = threading.Thread(target=self._watch, name="postgres-watchdog", daemon=True)
        self._watchdog.start()
        return PostgresFacts(url=self._url(), databases=tuple(s.name for s in self.specs), translations=translations)

    def _watch(self) -> None:
        """A postmaster that exits is started again on the same port and data, as the StatefulSet's pod or the RDS
        instance comes back after a crash or a reboot; the services' pools reconnect on their own."""
        while not self._stopping.wait(WATCH_SECONDS):
            if self.server.running:
                continue
            self.restarts += 1
            self.sink.write(self.name, f"PostgreSQL exited; starting it again on port {self.server.port} "
                                       f"(restart {self.restarts})")
            try:
                self.server.restart()
            except Exception as exc:
                self.sink.write(self.name, f"PostgreSQL did not start again: {exc}")

    def _url(self) -> str:
        return f"postgresql://{LOOPBACK}:{self.server.port}"

    @staticmethod
    def _provision(conn: psycopg.Connection[Any], spec: DatabaseSpec) -> None:
        """The master user with the graph's password (set again on every start: the stack secret may have changed),
        and the database owned by it, as RDS's master user owns `dbName`. Like RDS's master it may create roles
        and databases but is no superuser, so the bootstrap meets the same limits it meets in the cloud."""
        role = sql.Identifier(spec.user)
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (spec.user,)).fetchone()
        verb = sql.SQL("ALTER ROLE" if exists else "CREATE ROLE")
        conn.execute(sql.SQL("{} {} WITH LOGIN CREATEROLE CREATEDB NOSUPERUSER PASSWORD {}").format(
            verb, role, sql.Literal(spec.password)))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (spec.name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(spec.name), role))

    def endpoints(self) -> dict[str, str]:
        if not self.server.running:
            return {}
        return {"postgresUrl": self._url()}

    def reconfigure(self, graph: Graph, facts: Facts) -> None:
        new = database_specs(graph)
        if new != self.specs:
            self.sink.write(self.name, "the databases in the graph changed: restart the twin to apply")
        return None

    def status(self) -> dict[str, Any]:
        if not self.specs:
            return {}
        return {"port": self.server.port, "running": self.server.running, "pid": self.server.pid,
                "restarts": self.restarts, "dataDir": str(self.server.data_dir), "jobs": dict(self.jobs),
                "databases": [{"name": s.name, "user": s.user, "graphHosts": list(s.hosts), "source": s.source}
                              for s in self.specs]}

    def stop(self) -> None:
        self._stopping.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout=70)  # not mid-restart while the server stops
        self.server.stop()
