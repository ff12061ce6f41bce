"""The mesh engine: the graph's Istio VirtualServices, DestinationRules and the gateway's RequestAuthentication and
AuthorizationPolicy, served by real Envoy.

The specs are the graph's own (`spec` of each custom resource, exactly what istiod would read); `mesh.envoy`
translates them and `local.envoy.EnvoyProcess` runs them. Endpoints come from the graph's Services (selectors) and
the Deployments the services engine runs (pod labels -> subsets), via `mesh.envoy.endpoints_for`.

Two listeners, both the ingress gateway's view (VirtualServices bound to the graph's `Gateway`):
* `meshUrl`: the canary app, as a request for its Service entering through the ingress gateway, answering any Host
  header (`default_host`), so the seed's `curl http://myapp-service/version` works as `curl $MESH_URL/version`;
* `ingressUrl`: the whole ingress gateway (the shop's routes, hosts `*`). The graph's load-balancer hostname of the
  ingress (in exports and in the order functions' `K8S_API_URL`) is translated to it, so the Lambdas reach the
  services through Envoy with the same routes, retries and circuit breaker as in the cluster. It is the gateway
  workload (the Gateway's namespace and selector), so the policies selecting that workload become its `jwt_authn`
  and `rbac` filters: a caller without the stack's service token is refused here as it would be in the cluster.
  (`meshUrl` is a convenience view that answers any Host; it carries no policy.)

A stack file change re-applies routes and clusters with `EnvoyProcess.apply` (no listener restart, no dropped
request). `<state>/mesh.json` records the admin address, listeners and the applied split for `python -m local
canary` (`local.canary`).
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.canary import CANARY_LISTENER
from local.engine import Engine, EngineSettings
from local.envoy import EnvoyError, EnvoyProcess
from local.errors import DeployError
from local.facts import Facts, MeshFacts, ServiceFacts, TracingFacts
from local.function_spec import FUNCTION
from local.kube import K8S_SERVICE
from local.processes import LOOPBACK, LogSink, free_port
from local.state import MESH_FILE, write_json
from mesh.common import MESH_GATEWAY
from mesh.envoy import (
    ListenerSpec,
    OtlpCollector,
    ServiceRef,
    UnsupportedSpec,
    cluster_name,
    endpoints_for,
    qualify_host,
)
from sim.capture import Graph

VIRTUAL_SERVICE = "kubernetes:networking.istio.io/v1:VirtualService"
DESTINATION_RULE = "kubernetes:networking.istio.io/v1:DestinationRule"
GATEWAY = "kubernetes:networking.istio.io/v1:Gateway"
REQUEST_AUTHENTICATION = "kubernetes:security.istio.io/v1:RequestAuthentication"
AUTHORIZATION_POLICY = "kubernetes:security.istio.io/v1:AuthorizationPolicy"
TYPES = (VIRTUAL_SERVICE, DESTINATION_RULE, GATEWAY, REQUEST_AUTHENTICATION, AUTHORIZATION_POLICY)
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
    request_authentications: list[dict[str, Any]] = field(default_factory=list)
    authorization_policies: list[dict[str, Any]] = field(default_factory=list)
    """Every one in the graph; `mesh.envoy` keeps those selecting the gateway workload (the sidecars' stay
    cloud-only)."""
    gateway_workload: tuple[str, tuple[tuple[str, str], ...]] | None = None
    """The ingress Gateway's workload: its namespace and the pod labels its `selector` names."""

    @classmethod
    def from_graph(cls, graph: Graph) -> MeshSpecs:
        services = []
        for res in graph.of_type(K8S_SERVICE):
            meta, spec = res.inputs.get("metadata") or {}, res.inputs.get("spec") or {}
            if spec.get("selector"):
                services.append(ServiceRef(name=str(meta.get("name")), namespace=str(meta.get("namespace") or
                                                                                     "default"),
                                           selector={str(k): str(v) for k, v in spec["selector"].items()}))
        gateways = [_manifest(r) for r in graph.of_type(GATEWAY)]
        workload = None
        if gateways:
            # The gateway pods run in the Gateway's namespace (the Helm release's) with the labels it selects.
            namespace = gateways[0]["metadata"].get("namespace") or "default"
            labels = tuple(sorted((str(k), str(v)) for k, v in (gateways[0]["spec"].get("selector") or {}).items()))
            workload = (namespace, labels)
        return cls(virtual_services=[_manifest(r) for r in graph.of_type(VIRTUAL_SERVICE)],
                   destination_rules=[_manifest(r) for r in graph.of_type(DESTINATION_RULE)],
                   services=services, gateway=_ref(gateways[0]) if gateways else None,
                   request_authentications=[_manifest(r) for r in graph.of_type(REQUEST_AUTHENTICATION)],
                   authorization_policies=[_manifest(r) for r in graph.of_type(AUTHORIZATION_POLICY)],
                   gateway_workload=workload)

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


class MeshEngine(Engine):
    """Envoy with the graph's routes; `reconfigure` re-applies them live."""

    name = "mesh"
    types = TYPES
    provides = MeshFacts
    reads = (TracingFacts, ServiceFacts)
    live = True

    def __init__(self, sink: LogSink, *, state_dir: Path) -> None:
        self.sink = sink
        self.state_dir = state_dir
        self.envoy: EnvoyProcess | None = None
        self.specs: MeshSpecs | None = None
        self.services = ServiceFacts()
        self.version = ""
        self._canary_ref: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def build(cls, settings: EngineSettings, sink: LogSink) -> MeshEngine:
        return cls(sink, state_dir=settings.state_dir)

    # --- deploy ----------------------------------------------------------------------------------------------
    def deploy(self, graph: Graph, facts: Facts) -> MeshFacts:
        self.services = facts.get(ServiceFacts) or ServiceFacts()
        if self.services.live is not None:
            self.services.live.subscribe(self._workloads_changed)  # replicas die, restart, pass readiness
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
            # The ingress listener is the gateway workload: its RequestAuthentication/AuthorizationPolicy apply.
            namespace, labels = specs.gateway_workload or (None, ())
            listeners.append(ListenerSpec(name=INGRESS_LISTENER, port=free_port(), gateway=specs.gateway,
                                          workload_namespace=namespace, workload_labels=labels))
        if not listeners:
            if any(graph.of_type(t) for t in TYPES):
                self.sink.write(self.name, "no VirtualService in the graph is bound to a gateway: Envoy not started")
            return MeshFacts()
        self.envoy = EnvoyProcess(self.state_dir / "envoy", listeners, tracing=collector(facts))
        self.envoy.start()
        try:
            self._apply(specs)
        except UnsupportedSpec as exc:
            self.stop()
            raise DeployError(f"the graph's Istio resources cannot run on Envoy: {exc}") from None
        except BaseException:
            self.stop()  # Envoy does not outlive a failed deploy
            raise
        translations: dict[str, str] = {}
        ingress = next((s for s in listeners if s.name == INGRESS_LISTENER), None)
        if ingress is not None:
            for hostname in sorted(load_balancer_hostnames(graph)):
                # The NLB listens on 80: `http://<nlb>` and `http://<nlb>:80` both become Envoy's ingress listener.
                # The URL forms too: a Lambda environment value is translated when it equals a key.
                local = f"{LOOPBACK}:{ingress.port}"
                for scheme in ("http://", ""):
                    for suffix in (":80", ""):
                        translations[f"{scheme}{hostname}{suffix}"] = f"{scheme}{local}"
        for spec in listeners:
            default = f", any Host -> {spec.default_host}" if spec.default_host else ""
            self.sink.write(self.name, f"listener {spec.name} on {self.envoy.url(spec.name)} (gateway "
                                       f"{spec.gateway}{default})")
        return MeshFacts(listeners={spec.name: self.envoy.url(spec.name) for spec in listeners},
                         translations=translations)

    def _apply(self, specs: MeshSpecs) -> None:
        assert self.envoy is not None
        workloads = [w.workload for w in self._workloads()]
        endpoints = endpoints_for(specs.services, workloads, specs.destination_rules)
        started = time.monotonic()
        with self._lock:
            self.version = self.envoy.apply(specs.virtual_services, specs.destination_rules, endpoints,
                                            request_authentications=specs.request_authentications,
                                            authorization_policies=specs.authorization_policies)
            self.specs = specs
        took = (time.monotonic() - started) * 1000
        summary = self._split_summary()
        self.sink.write(self.name, f"routes version {self.version} applied in {took:.0f} ms"
                        + (f": {summary}" if summary else ""))
        self._write_state()

    def _workloads(self) -> tuple[Any, ...]:
        live = self.services.live
        return live.current() if live is not None else self.services.workloads

    def _workloads_changed(self) -> None:
        """The ready replicas changed: the same routes and clusters, the endpoints the processes have now."""
        if self.envoy is not None and self.specs is not None:
            try:
                self._apply(self.specs)
            except (UnsupportedSpec, EnvoyError, ValueError) as exc:
                self.sink.write(self.name, f"endpoints not updated (Envoy keeps version {self.version}): {exc}")

    def _split(self) -> tuple[str, list[SubsetSplit]] | None:
        if self.specs is None or self._canary_ref is None:
            return None
        vs = next((v for v in self.specs.virtual_services if _ref(v) == self._canary_ref), None)
        if vs is None:
            return None
        workloads = [(dict(w.workload.labels), dict(w.env)) for w in self._workloads()]
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
        write_json(self.state_dir / MESH_FILE, state)

    # --- the engine contract -------------------------------------------------------------------------------------
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

    def reconfigure(self, graph: Graph, facts: Facts) -> None:
        """A new graph (the stack file changed): same listeners, new routes and clusters, applied live, to the
        workloads the services engine runs now."""
        self.services = facts.get(ServiceFacts) or ServiceFacts()
        if self.envoy is None:
            return None
        try:
            self._apply(MeshSpecs.from_graph(graph))
        except (UnsupportedSpec, EnvoyError, ValueError) as exc:
            self.sink.write(self.name, f"config change not applied (Envoy keeps version {self.version}): {exc}")
        return None

    def status(self) -> dict[str, Any]:
        if self.envoy is None:
            return {}
        return {"running": self.envoy.running, "adminUrl": self.envoy.admin_url, "version": self.version,
                "listeners": {spec.name: self.envoy.url(spec.name) for spec in self.envoy.listeners},
                "split": self._split_summary()}

    def stop(self) -> None:
        if self.envoy is not None:
            self.envoy.stop()
            self.envoy = None
        (self.state_dir / MESH_FILE).unlink(missing_ok=True)


def collector(facts: Facts) -> OtlpCollector | None:
    """Envoy's OTLP receiver: the twin's collector whatever the graph's provider says (the twin always traces)."""
    tracing = facts.get(TracingFacts)
    if tracing is None or not tracing.otlp_endpoint:
        return None
    address = urllib.parse.urlsplit(tracing.otlp_endpoint)
    return OtlpCollector(host=address.hostname or LOOPBACK, port=address.port or 4318)


def load_balancer_hostnames(graph: Graph) -> set[str]:
    """Every load-balancer DNS name the graph hands out (exports, function environments, Service statuses).

    The twin has one ingress (the Istio gateway's NLB), so each of them means Envoy's ingress listener.
    """
    texts: list[str] = [json.dumps(graph.exports, default=str)]
    for fn in graph.of_type(FUNCTION):
        texts.append(json.dumps((fn.inputs.get("environment") or {}).get("variables") or {}))
    for svc in graph.of_type(K8S_SERVICE):
        texts.append(json.dumps(svc.outputs.get("status") or {}))
    return {m.group(0) for text in texts for m in ELB_HOSTNAME.finditer(text)}
