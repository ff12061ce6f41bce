"""The twin: capture the stack's graph, deploy it onto the local engines, keep it running, stop it cleanly.

The engines run in the order of `local.lineup.ENGINES`; each deploys its part of the graph and hands the engines
after it a typed record (`local.facts`). Stop runs the other way; moto snapshots the data first. The state folder's
files are `local.state`'s.

Startup is the sum of the slow parts, so they overlap: every engine's `prepare` runs before the capture (moto boots,
the Lambda fork server imports its libraries), and a `concurrent` engine (moto's stores) deploys on a pool thread
while the engines after it deploy on the main thread, until one reads its record. The others deploy on the main
thread: a child may die with the thread that started it (Envoy's launcher asks for a parent-death signal), and a
pool thread ends when its work does.
"""

from __future__ import annotations

import importlib
import json
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.config import PROJECT_DIR
from local import registry
from local.aws import AwsEngine
from local.engine import Engine, EngineSettings
from local.errors import DeployError
from local.facts import EngineFacts, Facts, translate
from local.function_spec import check_functions
from local.lambdas import LambdaEngine
from local.lineup import ENGINES, check_order
from local.processes import LogSink
from local.stack import Program, capture_stack, main_program, stack_file
from local.state import ENDPOINTS_FILE, OUTPUTS_FILE, TWIN_FILE, pid_alive, write_json
from sim.capture import Graph

#: How often twin.json (what `python -m local status` reads) is rewritten while the twin runs.
STATUS_REFRESH_SECONDS = 1.0


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
    max_replicas: int = 0       # processes per Deployment at most (0: the graph's replicas)
    watch_config: bool = True
    program: Program | None = None
    config_dir: Path = PROJECT_DIR
    """Where Pulumi.yaml and Pulumi.<stack>.yaml are read (and watched); the program stays `__main__.py`."""
    started_at: float | None = None
    """Wall-clock start of the command (process creation), so `ready in N s` counts the interpreter's start too."""

    def engine_settings(self) -> EngineSettings:
        return EngineSettings(state_dir=self.state_dir, gateway_port=self.port, aws_port=self.aws_port,
                              strict_parameters=self.strict_parameters, max_workers=self.max_workers,
                              fork_server=self.fork_server, retry_delays=self.retry_delays,
                              max_replicas=self.max_replicas)


class Twin:
    def __init__(self, options: Options, sink: LogSink) -> None:
        self.options = options
        self.sink = sink
        self.state_dir = options.state_dir
        self.graph: Graph | None = None
        check_order()
        settings = options.engine_settings()
        self.engines: tuple[Engine, ...] = tuple(cls.build(settings, sink) for cls in ENGINES)
        self.facts = Facts()
        self.started: list[Engine] = []
        """Engines that may hold something (prepared or deploying): all of them are stopped, even after a failure."""
        self.ready_seconds: float | None = None
        self._stop_watch = threading.Event()
        self._status_writer: threading.Thread | None = None
        self._up = False
        self.dashboard: Any = None
        """The live page (`local.dashboard.Dashboard`), started once the engines are deployed."""

    # --- up ----------------------------------------------------------------------------------------------------
    def capture(self) -> Graph:
        return capture_stack(self.options.stack, self.state_dir, program=self.options.program or main_program(),
                             project_dir=self.options.config_dir)

    def up(self) -> dict[str, str]:
        started = time.monotonic()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._refuse_second_twin()
        self._up = True
        for engine in self.engines:
            self.started.append(engine)  # before prepare: what it starts is stopped too
            engine.prepare()
        # The page's web stack (~1 s of imports) loads while the program is captured, like an engine's prepare.
        threading.Thread(target=importlib.import_module, args=("local.dashboard",), name="dashboard-import",
                         daemon=True).start()
        steps: list[str] = []
        with self._timed(steps, "capture"):
            graph = self.graph = self.capture()
        self._check(graph)
        self.facts = self._deploy(graph, steps)
        self._start_dashboard()
        endpoints = self.endpoints()
        write_json(self.state_dir / ENDPOINTS_FILE, endpoints)
        write_json(self.state_dir / OUTPUTS_FILE, self.outputs())
        self.sink.write("twin", "deployed: " + ", ".join(steps))
        self.ready_seconds = time.time() - self.options.started_at if self.options.started_at else \
            time.monotonic() - started
        self._write_twin_file()
        # What runs changes under the twin (workers added, replicas restarted): `status` reads this file.
        self._status_writer = threading.Thread(target=self._refresh_twin_file, name="status-writer", daemon=True)
        self._status_writer.start()
        if self.options.watch_config:
            threading.Thread(target=self._watch_config, name="config-watch", daemon=True).start()
        return endpoints

    def _start_dashboard(self) -> None:
        """The live page beside the engines: its failure to start is logged, never a failed deploy."""
        from local.dashboard import Dashboard, TwinView  # its web stack loads only for `up`

        view = TwinView(state_dir=self.state_dir, statuses=self._statuses, facts=lambda: self.facts,
                        graph=lambda: self.graph, stack=self.options.stack)
        try:
            self.dashboard = Dashboard(view, self.sink).start()
        except Exception as exc:
            self.sink.write("dashboard", f"not started: {exc!r}")

    def _check(self, graph: Graph) -> None:
        """Faithfulness checks before anything deploys: what the twin does with each type, wiring, environments."""
        for p in registry.plan(graph):
            if p.action == "unknown":
                self.sink.write("twin", f"{p.type} {p.name}: {p.detail}")
        problems = registry.check_wiring(graph)
        if problems:
            raise DeployError("the graph's wiring would fail in the cloud:\n  " + "\n  ".join(problems))
        for warning in check_functions(graph):
            self.sink.write("twin", f"warning: {warning}")

    def _deploy(self, graph: Graph, steps: list[str]) -> Facts:
        facts = Facts()
        pending: dict[type[EngineFacts], tuple[Engine, float, Future[EngineFacts]]] = {}

        def join(kinds: tuple[type[EngineFacts], ...]) -> None:
            nonlocal facts
            for kind in kinds:
                if kind in pending:
                    engine, since, future = pending.pop(kind)
                    waited = time.monotonic()
                    facts = facts.add(future.result())
                    now = time.monotonic()
                    steps.append(f"{engine.name} {now - since:.1f} s in parallel (waited {now - waited:.1f} s)")

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="deploy") as pool:
            for engine in self.engines:
                join(engine.reads)
                if engine.concurrent:
                    pending[engine.provides] = (engine, time.monotonic(), pool.submit(engine.deploy, graph, facts))
                    continue
                with self._timed(steps, engine.name):
                    facts = facts.add(engine.deploy(graph, facts))
            join(tuple(pending))
        return facts

    @contextmanager
    def _timed(self, steps: list[str], name: str) -> Iterator[None]:
        since = time.monotonic()
        yield
        steps.append(f"{name} {time.monotonic() - since:.1f} s")

    def _refuse_second_twin(self) -> None:
        path = self.state_dir / TWIN_FILE
        if path.exists():
            info = json.loads(path.read_text())
            if pid_alive(int(info.get("pid", 0))) and int(info.get("pid", 0)) != os.getpid():
                raise DeployError(f"a twin (pid {info['pid']}) already runs on state folder {self.state_dir}; "
                                  "stop it first (Ctrl-C, or kill that pid)")

    def endpoints(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for engine in self.engines:
            out.update(engine.endpoints())
        if self.dashboard is not None:
            out.update(self.dashboard.endpoints())
        return out

    def outputs(self) -> dict[str, Any]:
        assert self.graph is not None
        return translate(self.graph.exports, self.facts.translations)

    def function_names(self) -> list[str]:
        return list(self._statuses().get(LambdaEngine.name, {}))

    def _statuses(self) -> dict[str, dict[str, Any]]:
        return {e.name: e.status() for e in self.engines}

    def _write_twin_file(self) -> None:
        statuses = self._statuses()
        moto = statuses.pop(AwsEngine.name, {})
        write_json(self.state_dir / TWIN_FILE, {
            "pid": os.getpid(), "stack": self.options.stack, "startedAt": time.time(),
            "readySeconds": self.ready_seconds, "endpoints": self.endpoints(),
            "translations": self.facts.translations, "functions": statuses.pop(LambdaEngine.name, {}),
            "tables": moto.get("tables", []), "buckets": moto.get("buckets", []), "motoPid": moto.get("pid"),
            "plugins": {name: status for name, status in statuses.items() if status},
        })

    def _refresh_twin_file(self) -> None:
        while not self._stop_watch.wait(STATUS_REFRESH_SECONDS):
            try:
                if self._up:
                    self._write_twin_file()
            except Exception as exc:  # an engine mid-stop; the next round writes it
                self.sink.write("twin", f"status not refreshed: {exc!r}", console=False)

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
        """A re-captured graph after a stack file change: every engine in order re-applies what it can live (mesh
        weights, services); a change to a resource of an engine that cannot is reported (restart to apply)."""
        old = self.graph
        self.graph = graph
        for engine in self.engines:
            self.facts = self.facts.add(engine.reconfigure(graph, self.facts))
        if old is not None:
            fixed = {t for e in self.engines if not e.live for t in e.types}
            changed = [r.name for r in graph.resources if r.type in fixed
                       and r.inputs != next((o.inputs for o in old.resources if o.urn == r.urn), None)]
            if changed:
                self.sink.write("twin", f"config change touches {', '.join(changed)}: restart the twin to apply")
        write_json(self.state_dir / OUTPUTS_FILE, self.outputs())

    # --- down --------------------------------------------------------------------------------------------------
    def down(self) -> None:
        """Stop every engine that was prepared, the other way round; one failing does not keep the rest running."""
        self._stop_watch.set()
        if self._status_writer is not None:
            self._status_writer.join(timeout=5)  # it must not write twin.json after it is removed
        if not self._up:
            return
        steps: list[str] = []
        if self.dashboard is not None:  # first: it reads the engines
            with self._timed(steps, "dashboard"):
                self.dashboard.stop()
            self.dashboard = None
        try:
            for engine in reversed(self.started):
                try:
                    with self._timed(steps, engine.name):
                        engine.stop()
                except Exception as exc:
                    self.sink.write("twin", f"stopping {engine.name} failed: {exc!r}")
        finally:
            self.started.clear()
            self.sink.write("twin", "stop: " + ", ".join(steps))
            (self.state_dir / TWIN_FILE).unlink(missing_ok=True)
            self._up = False

