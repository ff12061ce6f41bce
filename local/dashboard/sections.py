"""The page's sections, each from the reader the CLI uses for the same numbers (no second copy of a reader).

* canary: `local.canary.per_version_stats` on `<state>/mesh.json` (what `python -m local canary` prints: the
  graph's VirtualService weights as the mesh engine applied them, Envoy's per-subset requests, errors, p50/p99);
* serverless: the Lambda and S3 events engines' `status()` (what `python -m local status` prints) and the
  functions' REPORT lines; the failure queue's depth from moto (SQS GetQueueAttributes);
* shop: stock from the inventory's own database, found with the service's settings model from the env the twin
  gives it (its API has no list of stock, and reading it per product each second would fill the console with
  access-log lines and count as shop traffic); the circuit breakers from Envoy's admin stats
  (`local.envoy.admin_stats`);
* rollout: `<state>/rollout.json` when a rollout writes one;
* traces: the recent orders' waterfalls from `local.traces.waterfall` (what `python -m local trace` prints).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from local.envoy import admin_stats
from local.facts import ServiceWorkload
from local.s3events import INVOKE_CONFIG
from local.state import ROLLOUT_FILE
from services.inventory.settings import Settings as InventorySettings
from sim.capture import Graph

INVENTORY_MODULE = "services.inventory"
#: Envoy's per-cluster gauges that are 1 while a circuit breaker of the default priority is open.
BREAKER_GAUGES = ("cx_open", "rq_open", "rq_pending_open", "rq_retry_open")


def function_rows(lambda_status: Mapping[str, Mapping[str, Any]], durations: Mapping[str, Mapping[str, Any]],
                  alive: Any) -> list[dict[str, Any]]:
    """One row per function: the engine's counters, its live workers, p50/p99 of its recent runs."""
    rows = []
    for name, fn in sorted(lambda_status.items()):
        rows.append({"name": name, "invocations": fn.get("invocations", 0), "errors": fn.get("errors", 0),
                     "timeouts": fn.get("timeouts", 0), "workers": sum(1 for pid in fn.get("pids", []) if alive(pid)),
                     **durations.get(name, {"p50Ms": None, "p99Ms": None, "runs": 0})})
    return rows


def failure_queues(graph: Graph | None) -> list[dict[str, str]]:
    """The SQS on-failure destinations of the graph's asynchronous invoke configs (the image pipeline's DLQ)."""
    if graph is None:
        return []
    out = []
    for cfg in graph.of_type(INVOKE_CONFIG):
        destination = str((((cfg.inputs.get("destinationConfig") or {}).get("onFailure") or {})
                           .get("destination")) or "")
        if destination.startswith("arn:aws:sqs:"):
            out.append({"function": str(cfg.inputs.get("functionName")), "queue": destination.rsplit(":", 1)[-1]})
    return out


def queue_depths(sqs: Any, queues: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
    rows = []
    for entry in queues:
        url = sqs.get_queue_url(QueueName=entry["queue"])["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        rows.append({"queue": entry["queue"], "depth": int(attrs["ApproximateNumberOfMessages"]),
                     "inFlight": int(attrs["ApproximateNumberOfMessagesNotVisible"])})
    return rows


def service_env(services_status: Mapping[str, Any], workloads: Sequence[ServiceWorkload],
                module: str) -> Mapping[str, str] | None:
    """The environment the services engine gives the Deployment running `module` (None if none runs)."""
    keys = [key for key, d in (services_status.get("deployments") or {}).items() if d.get("module") == module]
    return next((w.env for w in workloads if w.key in keys), None)


def inventory_conninfo(env: Mapping[str, str]) -> str:
    """The inventory's database, read with the service's own settings model from the env the twin gives it."""
    # Validated from that env alone (not this process's environment), as the service's process reads it.
    settings = InventorySettings.model_validate({k: v for k, v in env.items() if k in InventorySettings.model_fields})
    return make_conninfo(host=settings.DATABASE_HOST, port=settings.DATABASE_PORT, dbname=settings.DATABASE_NAME,
                         user=settings.DATABASE_USER, password=settings.DATABASE_PASSWORD.get_secret_value(),
                         connect_timeout=2, application_name="twin-dashboard")


#: The inventory service's table (`services/common/schema.py`); the page only reads it, in one statement.
STOCK_SQL = "SELECT product_id, stock FROM inventory ORDER BY product_id"


def stock_levels(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(STOCK_SQL)
        return [{"productId": product, "stock": stock} for product, stock in cur.fetchall()]


def breakers(admin_url: str, skip: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Per Envoy cluster (except `skip`): hosts healthy/total, hosts ejected by outlier detection, open breakers,
    and requests refused by a full pending queue."""
    stats = admin_stats(admin_url)
    suffix = ".membership_total"
    names = sorted(k[len("cluster."):-len(suffix)] for k in stats if k.startswith("cluster.") and k.endswith(suffix))
    rows = []
    for name in names:
        if name in skip:
            continue
        prefix = f"cluster.{name}."
        # istiod's naming, `outbound|<port>|<subset>|<host>` (`mesh.envoy.common.cluster_name`)
        _, port, subset, host = name.split("|") if name.count("|") == 3 else ("", "", "", name)
        rows.append({
            "cluster": name, "host": host, "subset": subset or None, "port": port,
            "healthy": int(stats.get(prefix + "membership_healthy", 0)),
            "total": int(stats.get(prefix + "membership_total", 0)),
            "ejected": int(stats.get(prefix + "outlier_detection.ejections_active", 0)),
            "open": [g for g in BREAKER_GAUGES if stats.get(prefix + f"circuit_breakers.default.{g}")],
            "overflows": int(stats.get(prefix + "upstream_rq_pending_overflow", 0)),
        })
    return rows


def rollout(state_dir: Path) -> dict[str, Any] | None:
    """What a running (or finished) rollout wrote: its steps, the current weight, its decisions so far."""
    path = state_dir / ROLLOUT_FILE
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else None
