"""The twin: capture the stack's graph, deploy it onto the local engines, keep it running, stop it cleanly.

Deploy order: moto (data stores, restored from the last snapshot) -> plugin engines (PostgreSQL, services, mesh:
they may add translations, e.g. the ingress load balancer's hostname -> Envoy's URL) -> Lambda workers (their
environment translated) -> API gateway -> S3 events. Stop runs the other way and snapshots the data first.
The state folder (`.local/` by default) holds endpoints.json, outputs.json, twin.json (what runs, for `status`),
secrets.json, data/ (snapshots) and twin.log.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from infra.config import PROJECT_DIR
from local import registry
from local.aws import AwsEngine
from local.gateway import GatewayEngine
from local.lambdas import DeployError, LambdaEngine
from local.processes import LogSink
from local.s3events import S3EventsEngine
from local.stack import Program, capture_stack, main_program, stack_file
from sim.capture import Graph

ENDPOINTS_FILE = "endpoints.json"
OUTPUTS_FILE = "outputs.json"
TWIN_FILE = "twin.json"


@dataclass
class EngineContext:
    """What a plugin engine (mesh, services, PostgreSQL) gets from the twin."""

    sink: LogSink
    state_dir: Path
    aws_endpoint: str
    region: str
    translations: dict[str, str]
    """Identifier in the graph -> the twin's; a plugin adds its own (e.g. an ingress hostname -> Envoy's URL)."""
    lambdas: LambdaEngine
    shared: dict[str, Any] = field(default_factory=dict)
    """What one plugin publishes for the next (the services engine's running workloads, read by the mesh)."""


class PluginEngine(Protocol):
    """The shape of `local.mesh.MeshEngine`, `local.services.ServicesEngine`, `local.postgres_engine.PostgresEngine`."""

    name: str

    def __init__(self, context: EngineContext) -> None: ...
    def deploy(self, graph: Graph) -> None: ...
    def endpoints(self) -> dict[str, str]: ...
    def reconfigure(self, graph: Graph) -> None: ...
    def status(self) -> dict[str, Any]: ...
    def stop(self) -> None: ...


def translate(value: Any, translations: dict[str, str]) -> Any:
    """`value` with every graph identifier (URL, ARN, hostname) replaced by the twin's."""
    if isinstance(value, str):
        for old in sorted(translations, key=len, reverse=True):
            if old and old in value:
                value = value.replace(old, translations[old])
        return value
    if isinstance(value, dict):
        return {k: translate(v, translations) for k, v in value.items()}
    if isinstance(value, list):
        return [translate(v, translations) for v in value]
    return value


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Options:
    stack: str = "dev"
    state_dir: Path = field(default_factory=lambda: PROJECT_DIR / ".local")
    port: int = 3000            # the API gateway (0: a free port)
    aws_port: int = 5000        # moto (0: a free port)
    strict_parameters: bool = False
    max_workers: int = 4
    fork_server: bool = True
    retry_delays: tuple[float, ...] = (1.0, 2.0)
    watch_config: bool = True
    program: Program | None = None
    config_dir: Path = PROJECT_DIR
    """Where Pulumi.yaml and Pulumi.<stack>.yaml are read (and watched); the program stays `__main__.py`."""
    started_at: float | None = None
    """Wall-clock start of the command (process creation), so `ready in N s` counts the interpreter's start too."""


class Twin:
    def __init__(self, options: Options, sink: LogSink) -> None:
        self.options = options
        self.sink = sink
        self.state_dir = options.state_dir
        self.graph: Graph | None = None
        self.aws = AwsEngine(sink, port=options.aws_port, data_dir=self.state_dir / "data")
        self.lambdas = LambdaEngine(sink, max_workers=options.max_workers, fork_server=options.fork_server)
        self.gateway = GatewayEngine(sink, self.lambdas, port=options.port,
                                     strict_parameters=options.strict_parameters)
        self.s3events = S3EventsEngine(sink, self.lambdas, self.aws, retry_delays=options.retry_delays)
        self.plugins: list[PluginEngine] = []
        self.translations: dict[str, str] = {}
        self.config_hooks: list[Callable[[Graph], None]] = []
        self.ready_seconds: float | None = None
        self._stop_watch = threading.Event()
        self._started = False
        self._data_loaded = False

    # --- up ----------------------------------------------------------------------------------------------------
    def capture(self) -> Graph:
        return capture_stack(self.options.stack, self.state_dir, program=self.options.program or main_program(),
                             project_dir=self.options.config_dir)

    def up(self) -> dict[str, str]:
        started = time.monotonic()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._refuse_second_twin()
        self._started = True
        self.aws.start(wait=False)  # moto boots while the program runs under the mocks
        self.lambdas.start_fork_server()  # and the Lambda fork server imports its libraries
        steps: list[str] = []

        def step(name: str, since: float) -> float:
            now = time.monotonic()
            steps.append(f"{name} {now - since:.1f} s")
            return now

        mark = time.monotonic()
        graph = self.graph = self.capture()
        mark = step("capture", mark)
        placements = registry.plan(graph)
        for p in placements:
            if p.action in ("pending", "unknown"):
                self.sink.write("twin", f"{p.type} {p.name}: {p.detail}")
        # Faithfulness checks before anything starts: wiring and each function's environment contract.
        problems = registry.check_wiring(graph)
        if problems:
            raise DeployError("the graph's wiring would fail in the cloud:\n  " + "\n  ".join(problems))
        for warning in LambdaEngine.check(graph):
            self.sink.write("twin", f"warning: {warning}")
        # PostgreSQL, services and the mesh need nothing from moto, so moto's stores are made meanwhile. The plugins
        # deploy on the main thread: a child may die with the thread that started it (Envoy's launcher asks for
        # a parent-death signal), and a pool thread ends when its work does.
        self.translations = {}
        context = EngineContext(self.sink, self.state_dir, self.aws.url, graph.region, self.translations, self.lambdas)
        engines_used = {p.engine for p in placements if p.action == "deployed"}

        def make_data_stores() -> dict[str, int]:
            self.aws.wait_ready()
            self.aws.deploy(graph)
            return self.aws.restore()

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="moto-deploy") as pool:
            data_done = pool.submit(make_data_stores)
            for engine in registry.PLUGINS:
                if engine in engines_used:
                    plugin = registry.load_plugin(engine)(context)
                    self.plugins.append(plugin)  # before deploy: a half-deployed plugin is stopped too
                    plugin.deploy(graph)
                    self.config_hooks.append(plugin.reconfigure)
                    mark = step(f"{plugin.name}", mark)
            restored = data_done.result()
            self._data_loaded = True  # from here on, stopping snapshots the data (never before: it would erase it)
            mark = step("moto stores (in parallel)", mark)
        if restored:
            self.sink.write("twin", "restored " + ", ".join(f"{k} ({n})" for k, n in restored.items()))
        self.translations.update(self.aws.translations())
        self.lambdas.deploy(graph, aws_endpoint=self.aws.url, translations=self.translations)
        mark = step(f"{len(self.lambdas.functions)} functions", mark)
        self.gateway.deploy(graph)
        self.translations.update(self.gateway.translations())
        self.s3events.deploy(graph)
        endpoints = self.endpoints()
        write_json(self.state_dir / ENDPOINTS_FILE, endpoints)
        write_json(self.state_dir / OUTPUTS_FILE, self.outputs())
        step("gateway+events", mark)
        self.sink.write("twin", "deployed: " + ", ".join(steps))
        self.ready_seconds = time.time() - self.options.started_at if self.options.started_at else \
            time.monotonic() - started
        self._write_twin_file()
        if self.options.watch_config:
            threading.Thread(target=self._watch_config, name="config-watch", daemon=True).start()
        return endpoints

    def _refuse_second_twin(self) -> None:
        path = self.state_dir / TWIN_FILE
        if path.exists():
            info = json.loads(path.read_text())
            if pid_alive(int(info.get("pid", 0))) and int(info.get("pid", 0)) != os.getpid():
                raise DeployError(f"a twin (pid {info['pid']}) already runs on state folder {self.state_dir}; "
                                  "stop it first (Ctrl-C, or kill that pid)")

    def endpoints(self) -> dict[str, str]:
        out = {"awsEndpointUrl": self.aws.url, "region": self.graph.region if self.graph else "eu-west-1"}
        if self.gateway.url:
            out["apiUrl"] = self.gateway.url
        for plugin in self.plugins:
            out.update(plugin.endpoints())
        return out

    def outputs(self) -> dict[str, Any]:
        assert self.graph is not None
        return translate(self.graph.exports, self.translations)

    def _write_twin_file(self) -> None:
        functions = {name: {"handler": rt.spec.handler, "memoryMb": rt.spec.memory_mb,
                            "timeoutSeconds": rt.spec.timeout_seconds, "pids": rt.worker_pids()}
                     for name, rt in self.lambdas.functions.items()}
        write_json(self.state_dir / TWIN_FILE, {
            "pid": os.getpid(), "stack": self.options.stack, "startedAt": time.time(),
            "readySeconds": self.ready_seconds, "endpoints": self.endpoints(), "translations": self.translations,
            "functions": functions, "tables": self.aws.tables, "buckets": self.aws.buckets,
            "motoPid": self.aws.proc.pid if self.aws.proc else None,
            "plugins": {p.name: p.status() for p in self.plugins},
        })

    # --- config changes ----------------------------------------------------------------------------------------
    def _watch_config(self) -> None:
        path = stack_file(self.options.stack, self.options.config_dir)
        last = path.stat().st_mtime if path.exists() else 0.0
        while not self._stop_watch.wait(1.0):
            mtime = path.stat().st_mtime if path.exists() else 0.0
            if mtime == last:
                continue
            last = mtime
            try:
                graph = self.capture()
            except Exception as exc:
                self.sink.write("twin", f"{path.name} changed but does not deploy: {exc}")
                continue
            self.apply_config(graph)

    def apply_config(self, graph: Graph) -> None:
        """A re-captured graph after a stack file change: plugins re-apply what they can live (mesh weights)."""
        old = self.graph
        self.graph = graph
        for hook in self.config_hooks:
            hook(graph)
        if old is not None:
            changed = [r.name for r in graph.resources if r.type in registry.ENGINES
                       and r.inputs != next((o.inputs for o in old.resources if o.urn == r.urn), None)]
            if changed:
                self.sink.write("twin", f"config change touches {', '.join(changed)}: restart the twin to apply")
        write_json(self.state_dir / OUTPUTS_FILE, self.outputs())

    # --- down --------------------------------------------------------------------------------------------------
    def down(self) -> None:
        self._stop_watch.set()
        if not self._started:
            return
        steps: list[str] = []
        mark = time.monotonic()

        def step(name: str) -> None:
            nonlocal mark
            now = time.monotonic()
            steps.append(f"{name} {now - mark:.1f} s")
            mark = now

        self.s3events.stop()
        self.gateway.stop()
        step("gateway+events")
        self.lambdas.stop()
        step("functions")
        for plugin in reversed(self.plugins):
            try:
                plugin.stop()
            except Exception as exc:
                self.sink.write("twin", f"stopping {plugin.name} failed: {exc!r}")
            step(plugin.name)
        try:
            if self._data_loaded and self.aws.proc is not None and self.aws.proc.poll() is None:
                counts = self.aws.snapshot()
                self.sink.write("twin", "snapshot " + (", ".join(f"{k} ({n})" for k, n in counts.items()) or "empty")
                                + f" -> {self.aws.data_dir}")
                step("snapshot")
        finally:
            self.aws.stop()
            step("moto")
            self.sink.write("twin", "stop: " + ", ".join(steps))
            (self.state_dir / TWIN_FILE).unlink(missing_ok=True)
            self._started = False
            self._data_loaded = False
