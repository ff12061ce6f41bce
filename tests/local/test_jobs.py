"""The twin's Jobs: the dev graph's bootstrap Job read as the cluster would run it, and run against a real
PostgreSQL so each service's role logs in with its Secret's password and holds exactly its grants."""

from __future__ import annotations

import copy
import io
from functools import cache
from pathlib import Path

import psycopg
import pytest

from local.errors import DeployError
from local.jobs import JOB, JobSpec, job_module, job_specs, run_job
from local.postgres import ConnectionParams
from local.postgres_engine import PostgresEngine, database_specs
from local.processes import LogSink
from local.stack import capture_stack
from services.common.dbroles import BOOTSTRAP_MODULE, SERVICE_ROLES, password_env
from sim.capture import Graph
from tests.support.postgres import execute, postgres_server


@cache
def _dev_graph(state: str) -> Graph:
    return capture_stack("dev", Path(state))


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory) -> Graph:
    return _dev_graph(str(tmp_path_factory.mktemp("jobs-graph")))


def secret_values(graph: Graph, name: str) -> dict[str, str]:
    return next(r for r in graph.of_type("kubernetes:core/v1:Secret")
                if r.inputs["metadata"]["name"] == name).inputs["stringData"]


def test_the_bootstrap_job_gets_the_masters_login_and_each_services_password_translated(graph: Graph) -> None:
    rds = graph.one("aws:rds/instance:Instance")
    address = rds.outputs["address"]
    [job] = job_specs(graph, {f"{address}:5432": "127.0.0.1:61000", address: "127.0.0.1"})
    assert job.module == BOOTSTRAP_MODULE and job.namespace == "shop"
    assert (job.env["DATABASE_HOST"], job.env["DATABASE_PORT"]) == ("127.0.0.1", "61000")
    assert (job.env["DATABASE_USER"], job.env["DATABASE_PASSWORD"]) == ("shop", rds.inputs["password"])
    for svc in SERVICE_ROLES:
        assert job.env[password_env(svc)] == secret_values(graph, f"shop-db-{svc}")["password"]


def test_a_job_whose_command_is_not_a_module_of_this_checkout_fails_naming_it() -> None:
    with pytest.raises(DeployError, match=r"Job shop/x: command \['sh', '-c', 'true'\] is not `python -m"):
        job_module(["sh", "-c", "true"], "Job shop/x")
    with pytest.raises(DeployError, match=r"module services\.nowhere is not in this checkout"):
        job_module(["python", "-m", "services.nowhere"], "Job shop/x")


def test_a_job_reading_a_secret_key_the_graph_lacks_fails_naming_it(graph: Graph) -> None:
    broken = copy.deepcopy(graph.one(JOB))
    for entry in broken.inputs["spec"]["template"]["spec"]["containers"][0]["env"]:
        if entry["name"] == password_env("product"):
            entry["valueFrom"]["secretKeyRef"]["name"] = "shop-db"
            entry["valueFrom"]["secretKeyRef"]["key"] = "product-password"
    changed = Graph([broken if r.type == JOB else r for r in graph.resources], graph.exports, graph.region)
    with pytest.raises(DeployError, match=r"PRODUCT_DATABASE_PASSWORD reads secretKeyRef shop-db/product-password"):
        job_specs(changed, {})


def test_a_failing_job_is_retried_backoff_limit_times_then_fails_with_its_log() -> None:
    spec = JobSpec(name="bootstrap-x", namespace="shop", module=BOOTSTRAP_MODULE, env={}, backoff_limit=1,
                   deadline_seconds=60)
    out = io.StringIO()
    with pytest.raises(DeployError) as caught:
        run_job(spec, LogSink(out))
    assert "failed 2 times (backoffLimit 1)" in str(caught.value)
    assert "INVENTORY_DATABASE_PASSWORD is missing" in str(caught.value)
    assert out.getvalue().count("exited with 2") == 2


def test_the_twins_postgres_runs_the_graphs_bootstrap_so_each_service_logs_in_as_its_role(
        graph: Graph, tmp_path: Path) -> None:
    """The engine's own provisioning (an RDS-like master) and the graph's Job, on a real server."""
    [db] = database_specs(graph)
    with postgres_server() as server:
        port = server.port
        assert port is not None
        with psycopg.connect(server.params("postgres").conninfo(), autocommit=True) as conn:
            PostgresEngine._provision(conn, db)
        translations = {f"{h}:{db.port}": f"127.0.0.1:{port}" for h in db.hosts} | {h: "127.0.0.1" for h in db.hosts}
        [job] = job_specs(graph, translations)
        assert run_job(job, LogSink(io.StringIO())) == 1
        for svc in SERVICE_ROLES:
            own = secret_values(graph, f"shop-db-{svc}")
            params = ConnectionParams("127.0.0.1", port, db.name, own["username"], own["password"])
            for table in SERVICE_ROLES[svc].tables:
                execute(params, f"SELECT count(*) FROM {table}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            product = secret_values(graph, "shop-db-product")
            execute(ConnectionParams("127.0.0.1", port, db.name, product["username"], product["password"]),
                    "UPDATE inventory SET stock = 0")
        assert run_job(job, LogSink(io.StringIO())) == 1  # a second deploy runs it again, unchanged
