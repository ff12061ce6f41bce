"""The services engine: each `kubernetes:apps/v1:Deployment` in the graph runs as `replicas` local processes.

The image names the code: `<registry>/<project>-<stack>/myapp:1.0.0` runs `python -m services.myapp` from this
checkout (the same entry point the image's Dockerfile runs). The container's environment is the graph's: literal
values, `valueFrom.secretKeyRef` / `configMapKeyRef` resolved against the graph's Secrets and ConfigMaps, and graph
identifiers translated (the RDS address and port become the local PostgreSQL's); only `HOST` (127.0.0.1, never
0.0.0.0) and `PORT` (a free port) are the twin's own. A Deployment is ready when its readinessProbe path answers
2xx, as the kubelet decides.

Replicas: a Deployment runs `replicas` processes (at most `--max-replicas`, for small machines), each its own
endpoint, supervised as the kubelet does (`local.replicas`: readiness-gated, restarted with backoff when one dies);
`replicas: 0` runs none. The deploy waits for the first replica of each Deployment (so the twin is ready as soon as
every service answers) and starts the others right after; they join the endpoints when their probe answers.
The ready replicas (namespace, pod labels, address, env) are handed on as `ServiceFacts` to the mesh engine, which
selects them with the graph's Services and DestinationRule subsets, and is told (`ServiceFacts.live`) whenever the
ready set changes, so Envoy's endpoints follow the processes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.config import PROJECT_DIR
from local.engine import Engine, EngineSettings
from local.errors import DeployError
from local.facts import Facts, PostgresFacts, ServiceFacts, ServiceWorkload, TracingFacts, exporter_env
from local.kube import CONFIG_MAP, K8S_SECRET, K8S_SERVICE, config_maps, container_env, k8s_secrets
from local.processes import LOOPBACK, LogSink, free_port, start_process, stop_process
from local.replicas import Probe, ReplicaSet
from mesh.envoy import Workload
from sim.capture import Graph, Resource

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICES_DIR = PROJECT_DIR / "services"
READY_TIMEOUT_SECONDS = 90.0
#: How often the supervisor looks at the replicas: the kubelet's PLEG relists containers every second, so a dead
#: pod stays an endpoint about that long, and the mesh's outlier detection sees its failures first, as in a cluster.
SUPERVISE_SECONDS = 1.0
#: An old process outlives its replacement's start by this long, so the mesh re-routes before it goes.
DRAIN_SECONDS = 5.0
#: Variables the twin passes through from its own environment (everything else comes from the graph).
PASSTHROUGH = ("PATH", "LANG", "LC_ALL", "TZ", "HOME", "TMPDIR", "SYSTEMROOT")


def _plain_number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


@dataclass(frozen=True)
class DeploymentSpec:
    """What the twin needs of one Deployment: which code, which env, which labels, how to probe it."""

    name: str
    namespace: str
    replicas: int
    module: str
    image: str
    labels: dict[str, str]
    env: dict[str, str] = field(repr=False)
    ready_path: str
    resource_name: str
    probe: Probe = field(default_factory=Probe)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def service_module(image: str, where: str) -> str:
    """`.../myapp:1.0.0` (or `@sha256:...`) -> `services.myapp`, which must exist in this checkout."""
    last = image.rsplit("/", 1)[-1]
    name = last.split("@", 1)[0].split(":", 1)[0]
    if not name or not (SERVICES_DIR / name / "__main__.py").exists():
        raise DeployError(f"{where}: image {image!r} names service {name!r}, but services/{name}/__main__.py "
                          "does not exist")
    return f"services.{name}"


def deployment_specs(graph: Graph, translations: Mapping[str, str]) -> list[DeploymentSpec]:
    secrets, maps = k8s_secrets(graph), config_maps(graph)
    return [_spec(r, secrets, maps, translations) for r in graph.of_type(DEPLOYMENT)]


def _spec(res: Resource, secrets: dict[tuple[str, str], dict[str, str]],
          config_maps: dict[tuple[str, str], dict[str, str]], translations: Mapping[str, str]) -> DeploymentSpec:
    meta = res.inputs.get("metadata") or {}
    name = str(meta.get("name") or res.outputs.get("metadata", {}).get("name") or res.name)
    namespace = str(meta.get("namespace") or "default")
    where = f"Deployment {namespace}/{name}"
    spec = res.inputs.get("spec") or {}
    template = spec.get("template") or {}
    containers = (template.get("spec") or {}).get("containers") or []
    if not containers:
        raise DeployError(f"{where}: no containers")
    container = containers[0]
    image = str(container.get("image") or "")
    module = service_module(image, where)
    env = container_env(container, namespace, secrets, config_maps, translations, where)
    probe = (container.get("readinessProbe") or {}).get("httpGet") or {}
    replicas = spec.get("replicas")
    return DeploymentSpec(
        name=name, namespace=namespace, replicas=int(_plain_number(replicas)) if replicas is not None else 1,
        module=module, image=image, labels={str(k): str(v) for k, v in
                                            ((template.get("metadata") or {}).get("labels") or {}).items()},
        env=env, ready_path=str(probe.get("path") or "/"), resource_name=res.name,
        probe=Probe.from_container(container),
    )


@dataclass
class RunningDeployment:
    spec: DeploymentSpec
    replicas: ReplicaSet
    started: float = field(default_factory=time.monotonic)

    @property
    def url(self) -> str:
        return self.replicas.replicas[0].url

    def workloads(self) -> list[ServiceWorkload]:
        """One per ready replica: the endpoints the mesh may route to."""
        return [ServiceWorkload(key=self.spec.key, env=dict(self.spec.env), workload=Workload(
            namespace=self.spec.namespace, labels=dict(self.spec.labels), address=(LOOPBACK, r.port)))
            for r in self.replicas.ready()]


IMAGE = "docker-build:index:Image"


class ServicesEngine(Engine):
    """One process per Deployment with replicas > 0; logs prefixed by the Deployment's name."""

    name = "services"
    # An image build is not an engine of its own: the Deployment that pulls it (by digest) runs its code from source.
    types = (DEPLOYMENT, K8S_SERVICE, K8S_SECRET, CONFIG_MAP, IMAGE)
    provides = ServiceFacts
    reads = (TracingFacts, PostgresFacts)  # the collector; the database's address, in the translations
    live = True

    def __init__(self, sink: LogSink, *, max_replicas: int = 0) -> None:
        self.sink = sink
        self.max_replicas = max_replicas
        """At most this many processes per Deployment (0: the graph's `replicas`)."""
        self.running: dict[str, RunningDeployment] = {}
        self.scaled_to_zero: list[str] = []
        self._retiring: list[RunningDeployment] = []
        self._lock = threading.RLock()
        self._listeners: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None
        self.telemetry_env: dict[str, str] = {}
        """Where the processes export their spans (the twin's collector)."""

    @classmethod
    def build(cls, settings: EngineSettings, sink: LogSink) -> ServicesEngine:
        return cls(sink, max_replicas=settings.max_replicas)

    # --- lifecycle -------------------------------------------------------------------------------------------
    def deploy(self, graph: Graph, facts: Facts) -> ServiceFacts:
        specs = deployment_specs(graph, facts.translations)
        self.telemetry_env = exporter_env(facts)
        try:
            started = [self._start(spec) for spec in specs if self._wanted(spec)]
            self._wait_ready(started)
        except BaseException:
            self.stop()  # no process outlives a failed deploy
            raise
        self._scale_out(started)
        self._supervisor = threading.Thread(target=self._supervise, name="services-supervisor", daemon=True)
        self._supervisor.start()
        return self._facts()

    def _wanted(self, spec: DeploymentSpec) -> bool:
        if spec.replicas > 0:
            if self._count(spec) < spec.replicas:
                self.sink.write(self.name, f"{spec.key}: {spec.replicas} replicas in the graph, "
                                           f"{self._count(spec)} processes (--max-replicas)")
            return True
        self.scaled_to_zero.append(spec.key)
        self.sink.write(self.name, f"{spec.key}: replicas 0, not started")
        return False

    def _count(self, spec: DeploymentSpec) -> int:
        return min(spec.replicas, self.max_replicas) if self.max_replicas > 0 else spec.replicas

    def _process(self, spec: DeploymentSpec, port: int) -> subprocess.Popen[bytes]:
        env = {k: os.environ[k] for k in PASSTHROUGH if k in os.environ}
        env.update(spec.env)
        env.update(self.telemetry_env)
        # Kubernetes sets HOST=0.0.0.0 for the sidecar; the twin never opens a port beyond loopback.
        env.update({"HOST": LOOPBACK, "PORT": str(port), "PYTHONUNBUFFERED": "1"})
        return start_process([sys.executable, "-m", spec.module], spec.name, self.sink, env=env, cwd=PROJECT_DIR)

    def _start(self, spec: DeploymentSpec) -> RunningDeployment:
        """The Deployment's replica set with its first replica started (`_scale_out` starts the others)."""
        replicas = ReplicaSet(spec.key, [free_port() for _ in range(self._count(spec))], spec.probe,
                              lambda port: self._process(spec, port), self.sink, spec.name)
        replicas.start(0)
        running = RunningDeployment(spec, replicas)
        with self._lock:
            self.running[spec.key] = running
        return running

    def _scale_out(self, runs: list[RunningDeployment]) -> None:
        for run in runs:
            for replica in run.replicas.replicas[1:]:
                if replica.proc is None:
                    run.replicas.start(replica.index)

    # --- supervision (the kubelet's part) ---------------------------------------------------------------------
    def current(self) -> tuple[ServiceWorkload, ...]:
        """The ready replicas now (`ServiceFacts.live`)."""
        with self._lock:
            runs = list(self.running.values())
        return tuple(w for run in runs for w in run.workloads())

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call `listener` (on the supervisor's thread) whenever the set of ready replicas changes."""
        with self._lock:
            if listener not in self._listeners:
                self._listeners.append(listener)

    def _supervise(self) -> None:
        while not self._stop.wait(SUPERVISE_SECONDS):
            with self._lock:
                runs = list(self.running.values())
            changed = False
            for run in runs:
                try:
                    changed |= run.replicas.tick()
                except Exception as exc:  # one replica's trouble must not stop the supervision of the rest
                    self.sink.write(self.name, f"{run.spec.key}: supervision failed: {exc!r}")
            if changed and not self._stop.is_set():
                for listener in list(self._listeners):
                    try:
                        listener()
                    except Exception as exc:
                        self.sink.write(self.name, f"endpoints change not applied: {exc!r}")

    def _wait_ready(self, started: list[RunningDeployment]) -> None:
        errors: list[str] = []

        def wait(run: RunningDeployment) -> None:
            try:
                first = run.replicas.replicas[0]
                _wait_probe(run, READY_TIMEOUT_SECONDS)
                first.ready, first.next_probe = True, time.monotonic() + run.spec.probe.period
                first.ready_seconds = time.monotonic() - run.started
                self.sink.write(self.name, f"{run.spec.key}: {run.spec.module} on {run.url} ready in "
                                           f"{first.ready_seconds:.1f} s ({len(run.replicas.replicas)} "
                                           "replicas)")
            except (TimeoutError, RuntimeError) as exc:
                errors.append(f"Deployment {run.spec.key} ({run.spec.module}): {exc}")

        threads = [threading.Thread(target=wait, args=(run,)) for run in started]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise DeployError("; ".join(errors))

    def _facts(self) -> ServiceFacts:
        with self._lock:
            runs = list(self.running.values())
        return ServiceFacts(workloads=tuple(w for run in runs for w in run.workloads()), live=self)

    def reconfigure(self, graph: Graph, facts: Facts) -> ServiceFacts | None:
        """New Deployments start (ready before the mesh routes to them), removed or scaled-to-zero ones stop after
        the mesh has re-routed (DRAIN_SECONDS), changed ones are replaced the same way (make before break)."""
        try:
            specs = {s.key: s for s in deployment_specs(graph, facts.translations)}
        except DeployError as exc:
            self.sink.write(self.name, f"config change not applied: {exc}")
            return None
        with self._lock:
            current = dict(self.running)
        retire: list[RunningDeployment] = []
        started: list[RunningDeployment] = []
        self.scaled_to_zero = [k for k, s in specs.items() if s.replicas <= 0]
        for key, run in current.items():
            spec = specs.get(key)
            if spec is None or spec.replicas <= 0 or spec != run.spec:
                retire.append(run)
                with self._lock:
                    del self.running[key]
        for key, spec in specs.items():
            if spec.replicas > 0 and key not in self.running:
                started.append(self._start(spec))
        if not retire and not started:
            return None
        try:
            self._wait_ready(started)
        except DeployError as exc:
            self.sink.write(self.name, f"config change: {exc}")
        self._scale_out(started)
        new_facts = self._facts()
        for run in retire:
            self.sink.write(self.name, f"{run.spec.key}: stopping in {DRAIN_SECONDS:g} s (removed, scaled "
                                               "to zero or replaced)")
        if retire:
            timer = threading.Timer(DRAIN_SECONDS, _stop_all, args=(retire,))
            timer.daemon = True
            timer.start()
            self._retiring += retire
        return new_facts

    def endpoints(self) -> dict[str, str]:
        return {}

    def status(self) -> dict[str, Any]:
        with self._lock:
            runs = list(self.running.values())
        if not runs and not self.scaled_to_zero:
            return {}
        return {
            "deployments": {
                run.spec.key: {"module": run.spec.module, "image": run.spec.image,
                               "replicasInGraph": run.spec.replicas, **run.replicas.status(),
                               "labels": run.spec.labels}
                for run in runs
            },
            "scaledToZero": list(self.scaled_to_zero),
        }

    def stop(self) -> None:
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=10)  # no restart races the stop
        with self._lock:
            runs = list(self.running.values()) + self._retiring
            self.running.clear()
        procs = [proc for run in runs for proc in run.replicas.processes()]
        # SIGTERM all first (each uvicorn drains in parallel), then reap each.
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            stop_process(proc)


def _stop_all(runs: list[RunningDeployment]) -> None:
    for run in runs:
        run.replicas.stop()


def _wait_probe(run: RunningDeployment, timeout: float) -> None:
    """Poll the readiness path until it answers 2xx (a 503 'not ready' keeps waiting), like the kubelet."""
    url = run.url + run.spec.ready_path
    proc = run.replicas.replicas[0].proc
    assert proc is not None
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with code {proc.returncode} before it was ready (see its log lines)")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if 200 <= response.status < 300:
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            last = str(exc)
        time.sleep(0.1)
    raise TimeoutError(f"readiness probe {url} not ready within {timeout:g} s (last: {last})")
