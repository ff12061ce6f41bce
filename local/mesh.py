"""The mesh engine: the graph's Istio VirtualServices and DestinationRules, served by real Envoy.

The specs are the graph's own (`spec` of each custom resource, exactly what istiod would read); `mesh.envoy`
translates them and `local.envoy.EnvoyProcess` runs them. Endpoints come from the graph's Services (selectors) and
the Deployments the services engine runs (pod labels -> subsets), via `mesh.envoy.endpoints_for`.

Two listeners, both the ingress gateway's view (VirtualServices bound to the graph's `Gateway`):
* `meshUrl`: the canary app, as a request for its Service entering through the ingress gateway, answering any Host
  header (`default_host`), so the seed's `curl http://myapp-service/version` works as `curl $MESH_URL/version`;
* `ingressUrl`: the whole ingress gateway (the shop's routes, hosts `*`). The graph's load-balancer hostname of the
  ingress (in exports and in the order functions' `K8S_API_URL`) is translated to it, so the Lambdas reach the
  services through Envoy with the same routes, retries and circuit breaker as in the cluster.

A stack file change re-applies routes and clusters with `EnvoyProcess.apply` (no listener restart, no dropped
request). `<state>/mesh.json` records the admin address, listeners and the applied split for `python -m local
canary`, which reads per-version stats from Envoy's admin API and can `--verify` the split against the weight.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local.envoy import EnvoyError, EnvoyProcess, admin_quantiles, admin_stats
from local.processes import LOOPBACK, free_port
from mesh.common import MESH_GATEWAY
from mesh.envoy import ListenerSpec, ServiceRef, UnsupportedSpec, Workload, cluster_name, endpoints_for, qualify_host

if TYPE_CHECKING:  # the `canary` command imports this module: keep it free of the twin's (boto3, pulumi) imports
    from local.twin import EngineContext
    from sim.capture import Graph

VIRTUAL_SERVICE = "kubernetes:networking.istio.io/v1:VirtualService"
DESTINATION_RULE = "kubernetes:networking.istio.io/v1:DestinationRule"
GATEWAY = "kubernetes:networking.istio.io/v1:Gateway"
K8S_SERVICE = "kubernetes:core/v1:Service"
MESH_FILE = "mesh.json"
CANARY_LISTENER = "canary"
INGRESS_LISTENER = "ingress"
#: A load balancer's DNS name as AWS (and the recording mock) hands it out.
ELB_HOSTNAME = re.compile(r"[a-z0-9][a-z0-9-]*\.elb\.[a-z0-9-]+\.amazonaws\.com")


def plain_numbers(value: Any) -> Any:
    """The engine's protobuf Structs carry every number as a double; Kubernetes reads `90` where we hold `90.0`."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_numbers(v) for v in value]
    return value


def _manifest(res: Any) -> dict[str, Any]:
    i = plain_numbers(res.inputs)
    return {"apiVersion": i.get("apiVersion"), "kind": i.get("kind"), "metadata": i.get("metadata") or {},
            "spec": i.get("spec") or {}}


def _ref(manifest: Mapping[str, Any]) -> str:
    meta = manifest.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name')}"


@dataclass(frozen=True)
class MeshSpecs:
    """The mesh part of one graph."""

    virtual_services: list[dict[str, Any]]
    destination_rules: list[dict[str, Any]]
    services: list[ServiceRef]
    gateway: str | None
    """`<namespace>/<name>` of the ingress Gateway (the first in the graph)."""

    @classmethod
    def from_graph(cls, graph: Graph) -> MeshSpecs:
        services = []
        for res in graph.of_type(K8S_SERVICE):
            meta, spec = res.inputs.get("metadata") or {}, res.inputs.get("spec") or {}
            if spec.get("selector"):
                services.append(ServiceRef(name=str(meta.get("name")), namespace=str(meta.get("namespace") or
                                                                                     "default"),
                                           selector={str(k): str(v) for k, v in spec["selector"].items()}))
        gateways = [_ref(_manifest(r)) for r in graph.of_type(GATEWAY)]
        return cls(virtual_services=[_manifest(r) for r in graph.of_type(VIRTUAL_SERVICE)],
                   destination_rules=[_manifest(r) for r in graph.of_type(DESTINATION_RULE)],
                   services=services, gateway=gateways[0] if gateways else None)

    def bound(self, vs: Mapping[str, Any], gateway: str) -> bool:
        namespace = (vs.get("metadata") or {}).get("namespace") or "default"
        refs = {g if g == MESH_GATEWAY or "/" in g else f"{namespace}/{g}"
                for g in (vs.get("spec") or {}).get("gateways") or [MESH_GATEWAY]}
        return gateway in refs

    def canary(self) -> dict[str, Any] | None:
        """The VirtualService that splits one host between subsets by weight (the canary app), if any."""
        for vs in self.virtual_services:
            for http in (vs.get("spec") or {}).get("http") or []:
                subsets = {(r.get("destination") or {}).get("subset") for r in http.get("route") or []}
                if len(subsets - {None}) >= 2:
                    return vs
        return None


@dataclass(frozen=True)
class SubsetSplit:
    subset: str
    weight: int
    cluster: str
    versions: tuple[str, ...]


def canary_split(vs: Mapping[str, Any], workloads: Sequence[tuple[dict[str, str], dict[str, str]]],
                 destination_rules: Sequence[Mapping[str, Any]]) -> tuple[str, list[SubsetSplit]]:
    """The weighted route's subsets: weight, Envoy cluster, and the `VERSION`s their workloads report."""
    namespace = (vs.get("metadata") or {}).get("namespace") or "default"
    route = next(http for http in (vs.get("spec") or {}).get("http") or []
                 if len({(r.get("destination") or {}).get("subset") for r in http.get("route") or []} - {None}) >= 2)
    splits: list[SubsetSplit] = []
    host = ""
    for entry in route.get("route") or []:
        dest = entry["destination"]
        host = qualify_host(dest["host"], namespace)
        subset = str(dest["subset"])
        labels: dict[str, str] = {}
        for dr in destination_rules:
            dr_ns = (dr.get("metadata") or {}).get("namespace") or "default"
            if qualify_host((dr.get("spec") or {}).get("host", ""), dr_ns) == host:
                labels = next((s.get("labels") or {} for s in dr["spec"].get("subsets") or [] if s["name"] == subset),
                              {})
        versions = sorted({env.get("VERSION", "") for wl_labels, env in workloads
                           if labels and all(wl_labels.get(k) == v for k, v in labels.items())} - {""})
        port = int((dest.get("port") or {}).get("number", 80))
        splits.append(SubsetSplit(subset, int(entry.get("weight", 0)), cluster_name(host, subset, port),
                                  tuple(versions)))
    return host, splits


class MeshEngine:
    """Envoy with the graph's routes; `reconfigure` re-applies them live."""

    name = "mesh"

    def __init__(self, context: EngineContext) -> None:
        self.context = context
        self.envoy: EnvoyProcess | None = None
        self.specs: MeshSpecs | None = None
        self.version = ""
        self._canary_ref: str | None = None
        self._lock = threading.Lock()

    # --- deploy ----------------------------------------------------------------------------------------------
    def deploy(self, graph: Graph) -> None:
        from local.lambdas import DeployError

        specs = MeshSpecs.from_graph(graph)
        listeners: list[ListenerSpec] = []
        canary = specs.canary()
        if canary is not None:
            self._canary_ref = _ref(canary)
            host = qualify_host(canary["spec"]["hosts"][0], canary["metadata"].get("namespace") or "default")
            gateway = specs.gateway if specs.gateway and specs.bound(canary, specs.gateway) else MESH_GATEWAY
            listeners.append(ListenerSpec(name=CANARY_LISTENER, port=free_port(), gateway=gateway,
                                          virtual_services=(self._canary_ref,), default_host=host))
        if specs.gateway and any(specs.bound(vs, specs.gateway) for vs in specs.virtual_services):
            listeners.append(ListenerSpec(name=INGRESS_LISTENER, port=free_port(), gateway=specs.gateway))
        if not listeners:
            self.context.sink.write(self.name, "no VirtualService in the graph is bound to a gateway: Envoy not "
                                               "started")
            return
        self.envoy = EnvoyProcess(self.context.state_dir / "envoy", listeners)
        self.envoy.start()
        try:
            self._apply(specs)
        except UnsupportedSpec as exc:
            self.stop()
            raise DeployError(f"the graph's Istio resources cannot run on Envoy: {exc}") from None
        except BaseException:
            self.stop()  # the twin only stops plugins whose deploy returned
            raise
        ingress = next((s for s in listeners if s.name == INGRESS_LISTENER), None)
        if ingress is not None:
            for hostname in sorted(load_balancer_hostnames(graph)):
                # The NLB listens on 80: `http://<nlb>` and `http://<nlb>:80` both become Envoy's ingress listener.
                # The URL forms too: a Lambda environment value is translated when it equals a key.
                local = f"{LOOPBACK}:{ingress.port}"
                for scheme in ("http://", ""):
                    for suffix in (":80", ""):
                        self.context.translations[f"{scheme}{hostname}{suffix}"] = f"{scheme}{local}"
        for spec in listeners:
            default = f", any Host -> {spec.default_host}" if spec.default_host else ""
            self.context.sink.write(self.name, f"listener {spec.name} on {self.envoy.url(spec.name)} (gateway "
                                               f"{spec.gateway}{default})")

    def _workloads(self) -> list[Workload]:
        return list(self.context.shared.get("workloads") or [])

    def _apply(self, specs: MeshSpecs) -> None:
        assert self.envoy is not None
        endpoints = endpoints_for(specs.services, self._workloads(), specs.destination_rules)
        started = time.monotonic()
        with self._lock:
            self.version = self.envoy.apply(specs.virtual_services, specs.destination_rules, endpoints)
            self.specs = specs
        took = (time.monotonic() - started) * 1000
        summary = self._split_summary()
        self.context.sink.write(self.name, f"routes version {self.version} applied in {took:.0f} ms"
                                + (f": {summary}" if summary else ""))
        self._write_state()

    def _split(self) -> tuple[str, list[SubsetSplit]] | None:
        if self.specs is None or self._canary_ref is None:
            return None
        vs = next((v for v in self.specs.virtual_services if _ref(v) == self._canary_ref), None)
        if vs is None:
            return None
        labels = self.context.shared.get("workload_labels") or {}
        envs = self.context.shared.get("workload_env") or {}
        workloads = [(labels[k], envs.get(k, {})) for k in labels]
        return canary_split(vs, workloads, self.specs.destination_rules)

    def _canary_subset(self) -> str | None:
        """The subset a header-only route sends to (`x-canary: always` -> v2): the canary, whatever its weight."""
        assert self.specs is not None
        vs = next((v for v in self.specs.virtual_services if _ref(v) == self._canary_ref), {})
        for http in (vs.get("spec") or {}).get("http") or []:
            routes = http.get("route") or []
            if http.get("match") and len(routes) == 1 and (routes[0].get("destination") or {}).get("subset"):
                return str(routes[0]["destination"]["subset"])
        return None

    def _split_summary(self) -> str:
        split = self._split()
        if split is None:
            return ""
        return f"{self._canary_ref} " + " / ".join(f"{s.subset} {s.weight}" for s in split[1])

    def _write_state(self) -> None:
        from local.twin import write_json

        assert self.envoy is not None
        split = self._split()
        state = {
            "adminUrl": self.envoy.admin_url,
            "version": self.version,
            "listeners": {spec.name: self.envoy.url(spec.name) for spec in self.envoy.listeners},
            "canary": None if split is None else {
                "virtualService": self._canary_ref, "host": split[0], "canarySubset": self._canary_subset(),
                "subsets": [{"subset": s.subset, "weight": s.weight, "cluster": s.cluster, "versions": list(s.versions)}
                            for s in split[1]],
            },
        }
        write_json(self.context.state_dir / MESH_FILE, state)

    # --- plugin protocol -------------------------------------------------------------------------------------
    def endpoints(self) -> dict[str, str]:
        if self.envoy is None:
            return {}
        out: dict[str, str] = {}
        names = {spec.name for spec in self.envoy.listeners}
        if CANARY_LISTENER in names:
            out["meshUrl"] = self.envoy.url(CANARY_LISTENER)
        if INGRESS_LISTENER in names:
            out["ingressUrl"] = self.envoy.url(INGRESS_LISTENER)
        out["envoyAdminUrl"] = self.envoy.admin_url
        return out

    def reconfigure(self, graph: Graph) -> None:
        """A new graph (the stack file changed): same listeners, new routes and clusters, applied live."""
        if self.envoy is None:
            return
        try:
            self._apply(MeshSpecs.from_graph(graph))
        except (UnsupportedSpec, EnvoyError, ValueError) as exc:
            self.context.sink.write(self.name, f"config change not applied (Envoy keeps version {self.version}): "
                                               f"{exc}")

    def status(self) -> dict[str, Any]:
        if self.envoy is None:
            return {"running": False}
        return {"running": self.envoy.running, "adminUrl": self.envoy.admin_url, "version": self.version,
                "listeners": {spec.name: self.envoy.url(spec.name) for spec in self.envoy.listeners},
                "split": self._split_summary()}

    def stop(self) -> None:
        if self.envoy is not None:
            self.envoy.stop()
            self.envoy = None
        (self.context.state_dir / MESH_FILE).unlink(missing_ok=True)


def load_balancer_hostnames(graph: Graph) -> set[str]:
    """Every load-balancer DNS name the graph hands out (exports, function environments, Service statuses).

    The twin has one ingress (the Istio gateway's NLB), so each of them means Envoy's ingress listener.
    """
    from local.lambdas import FUNCTION

    texts: list[str] = [json.dumps(graph.exports, default=str)]
    for fn in graph.of_type(FUNCTION):
        texts.append(json.dumps((fn.inputs.get("environment") or {}).get("variables") or {}))
    for svc in graph.of_type(K8S_SERVICE):
        texts.append(json.dumps(svc.outputs.get("status") or {}))
    return {m.group(0) for text in texts for m in ELB_HOSTNAME.finditer(text)}


# --- `python -m local canary` -------------------------------------------------------------------------------

def read_state(state_dir: Path) -> dict[str, Any] | None:
    path = state_dir / MESH_FILE
    return json.loads(path.read_text()) if path.exists() else None


def per_version_stats(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Requests, errors (5xx answers and connection failures) and p50/p99 upstream time per canary subset."""
    canary = state.get("canary")
    if not canary:
        return []
    stats = admin_stats(state["adminUrl"])
    quantiles = admin_quantiles(state["adminUrl"])
    rows = []
    for subset in canary["subsets"]:
        prefix = f"cluster.{subset['cluster']}."
        times = quantiles.get(prefix + "upstream_rq_time", {})
        rows.append({
            "subset": subset["subset"], "versions": subset["versions"], "weight": subset["weight"],
            "requests": int(stats.get(prefix + "upstream_rq_total", 0)),
            "errors": int(stats.get(prefix + "upstream_rq_5xx", 0)) + int(stats.get(prefix + "upstream_cx_connect_fail",
                                                                                    0)),
            "p50Ms": times.get(50.0), "p99Ms": times.get(99.0),
        })
    return rows


def format_stats(rows: Sequence[Mapping[str, Any]]) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    lines = [f"{'subset':<8} {'version':<10} {'weight':>6} {'requests':>9} {'errors':>7} {'p50 ms':>7} {'p99 ms':>7}"]
    for row in rows:
        lines.append(f"{row['subset']:<8} {','.join(row['versions']) or '-':<10} {row['weight']:>6} "
                     f"{row['requests']:>9} {row['errors']:>7} {ms(row['p50Ms']):>7} {ms(row['p99Ms']):>7}")
    return "\n".join(lines)


def _log_pmf(k: int, n: int, p: float) -> float:
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + k * math.log(p) + (n - k) * math.log1p(-p))


def binomial_interval(n: int, p: float, confidence: float = 0.999) -> tuple[int, int]:
    """The central acceptance interval [lo, hi] of Binomial(n, p): each tail outside it holds <= (1-confidence)/2."""
    if p <= 0.0:
        return 0, 0
    if p >= 1.0:
        return n, n
    tail = (1.0 - confidence) / 2
    pmf = [math.exp(_log_pmf(k, n, p)) for k in range(n + 1)]
    lo, acc = 0, 0.0
    while lo < n and acc + pmf[lo] <= tail:
        acc += pmf[lo]
        lo += 1
    hi, acc = n, 0.0
    while hi > 0 and acc + pmf[hi] <= tail:
        acc += pmf[hi]
        hi -= 1
    return lo, hi


@dataclass(frozen=True)
class Verdict:
    counts: dict[str, int]
    """Response body `version` (or `HTTP <status>` / the error) -> count, like `sort | uniq -c`."""
    failures: int
    canary_subset: str
    canary_requests: int
    weight: int
    interval: tuple[int, int]

    @property
    def consistent(self) -> bool:
        lo, hi = self.interval
        return self.failures == 0 and lo <= self.canary_requests <= hi


def verify(state: Mapping[str, Any], requests_total: int, *, concurrency: int = 4) -> Verdict:
    """Send `requests_total` GETs to meshUrl/version and check the canary's share against its weight."""
    import requests

    canary = state.get("canary")
    if not canary:
        raise RuntimeError("the twin's mesh has no weighted VirtualService (no canary to verify)")
    url = state["listeners"][CANARY_LISTENER] + "/version"
    local = threading.local()

    def one(_: int) -> str:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        try:
            response = session.get(url, timeout=15)
        except requests.RequestException as exc:
            return f"error {type(exc).__name__}"
        if response.status_code != 200:
            return f"HTTP {response.status_code}"
        return str(response.json().get("version"))

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        answers = Counter(pool.map(one, range(requests_total)))
    subsets = canary["subsets"]
    canary_subset = next((s for s in subsets if s["subset"] == canary.get("canarySubset")), subsets[-1])
    canary_versions = set(canary_subset["versions"])
    known = {v for s in subsets for v in s["versions"]}
    failures = sum(n for answer, n in answers.items() if answer not in known)
    hits = sum(n for answer, n in answers.items() if answer in canary_versions)
    weight = int(canary_subset["weight"])
    return Verdict(counts=dict(sorted(answers.items())), failures=failures, canary_subset=canary_subset["subset"],
                   canary_requests=hits, weight=weight,
                   interval=binomial_interval(requests_total, weight / 100))


def format_verdict(verdict: Verdict, requests_total: int) -> str:
    lines = [f"{count:>7} {answer}" for answer, count in verdict.counts.items()]
    lo, hi = verdict.interval
    share = verdict.canary_requests / requests_total * 100 if requests_total else 0.0
    lines.append(f"{verdict.canary_subset}: {verdict.canary_requests}/{requests_total} = {share:.1f}% for weight "
                 f"{verdict.weight}; 99.9% binomial interval [{lo}, {hi}] requests; failed requests "
                 f"{verdict.failures} -> {'consistent' if verdict.consistent else 'NOT consistent'}")
    return "\n".join(lines)
