"""The page's sampler: one thread that reads the running twin every second and keeps the latest snapshot.

It reads the twin through `TwinView`, whose calls are current each time (a reconfigure's new records, a component
the twin restarted under a new pid or port), never a copy taken at start. Each section is read on its own: one
that fails (Envoy restarting, a service being replaced) carries its error and the others stay live. The page's
server only ever hands out the last snapshot, already serialised, so no browser waits on a reader and no reader
waits on a browser; the readers themselves only ask the engines for `status()` and the servers over loopback.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from local import canary
from local.dashboard import sections
from local.dashboard.history import CounterHistory, ReportTail
from local.facts import AwsFacts, Facts, LambdaFacts, ServiceFacts
from local.processes import LogSink
from local.state import LOG_FILE, pid_alive
from local.traces.waterfall import recent_waterfalls
from mesh.envoy import COLLECTOR_CLUSTER
from sim.capture import Graph

INTERVAL_SECONDS = 1.0
WINDOW_SECONDS = 60.0
"""The window of a canary's observed share and success rate."""
TRACES_SHOWN = 5
"""Recent order traces drawn as waterfalls (the CLI's `python -m local trace` lists more)."""


@dataclass(frozen=True)
class TwinView:
    """What the page reads of the running twin; every call answers for now."""

    state_dir: Path
    statuses: Callable[[], dict[str, dict[str, Any]]]
    """Each engine's `status()` by engine name (what `python -m local status` shows)."""
    facts: Callable[[], Facts]
    graph: Callable[[], Graph | None]
    stack: str = "dev"


class Sampler:
    def __init__(self, view: TwinView, sink: LogSink, *, interval: float = INTERVAL_SECONDS) -> None:
        self.view = view
        self.sink = sink
        self.interval = interval
        self.requests = CounterHistory()
        self.errors = CounterHistory()
        self.reports = ReportTail(view.state_dir / LOG_FILE)
        self._db: psycopg.Connection[Any] | None = None
        self._db_info = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.seq = 0
        self._json = "{}"
        self._failing: set[str] = set()

    # --- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dashboard-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._close_db()

    def _run(self) -> None:
        # The first sample right away (on this thread: a slow reader never delays the twin's `ready`).
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                return

    def latest(self) -> tuple[int, str]:
        """The last snapshot's number and its JSON."""
        with self._lock:
            return self.seq, self._json

    # --- one sample --------------------------------------------------------------------------------------------
    def sample(self) -> dict[str, Any]:
        now = time.time()
        statuses = self._read("engines", self.view.statuses) or {}
        snapshot: dict[str, Any] = {"at": now, "stack": self.view.stack, "errors": {}}
        for name, read in (("canary", lambda: self._canary(now)), ("rollout", lambda: sections.rollout(
                self.view.state_dir)), ("functions", lambda: self._functions(statuses)),
                ("images", lambda: self._images(statuses)), ("stock", lambda: self._stock(statuses)),
                ("breakers", self._breakers),
                ("traces", lambda: recent_waterfalls(self.view.state_dir, limit=TRACES_SHOWN))):
            try:
                snapshot[name] = read()
                self._recovered(name)
            except Exception as exc:
                snapshot[name] = None
                snapshot["errors"][name] = f"{type(exc).__name__}: {exc}"
                self._failed(name, exc)
        with self._lock:
            self.seq += 1
            snapshot["seq"] = self.seq
            self._json = json.dumps(snapshot, default=str)
        return snapshot

    def _read(self, name: str, read: Callable[[], Any]) -> Any:
        try:
            return read()
        except Exception as exc:
            self._failed(name, exc)
            return None

    def _failed(self, name: str, exc: Exception) -> None:
        if name not in self._failing:  # once per outage, not once a second
            self._failing.add(name)
            self.sink.write("dashboard", f"{name}: not readable now ({type(exc).__name__}: {exc})", console=False)

    def _recovered(self, name: str) -> None:
        if name in self._failing:
            self._failing.discard(name)
            self.sink.write("dashboard", f"{name}: readable again", console=False)

    def _canary(self, now: float) -> dict[str, Any] | None:
        state = canary.read_state(self.view.state_dir)
        if not state or not state.get("canary"):
            return None
        rows = canary.per_version_stats(state)
        self.requests.add(now, {r["subset"]: r["requests"] for r in rows})
        self.errors.add(now, {r["subset"]: r["errors"] for r in rows})
        window = self.requests.window(WINDOW_SECONDS, now)
        window_errors = self.errors.window(WINDOW_SECONDS, now)
        total = sum(window.get(r["subset"], 0.0) for r in rows)
        for row in rows:
            n = window.get(row["subset"], 0.0)
            row["windowRequests"] = int(n)
            row["share"] = round(100 * n / total, 1) if total else None
            row["successRate"] = round(100 * (n - window_errors.get(row["subset"], 0.0)) / n, 1) if n else None
        return {"virtualService": state["canary"]["virtualService"], "host": state["canary"]["host"],
                "windowSeconds": WINDOW_SECONDS, "subsets": rows,
                "chart": self.requests.rates([r["subset"] for r in rows])}

    def _functions(self, statuses: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        lambda_status = statuses.get("lambda") or {}
        self.reports.read()
        lambdas = self.view.facts().get(LambdaFacts)
        durations = {}
        for name in lambda_status:
            component = log_component(lambdas, name)
            durations[name] = self.reports.quantiles(component)
        return sections.function_rows(lambda_status, durations, pid_alive)

    def _images(self, statuses: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
        events = statuses.get("s3-events") or {}
        if not events:
            return None
        aws = self.view.facts().get(AwsFacts)
        queues = sections.failure_queues(self.view.graph())
        return {"processed": events.get("delivered", 0), "failed": events.get("failed", 0),
                "targets": events.get("targets", []),
                "queues": sections.queue_depths(aws.client("sqs"), queues) if aws is not None else []}

    def _stock(self, statuses: dict[str, dict[str, Any]]) -> list[dict[str, Any]] | None:
        workloads = (self.view.facts().get(ServiceFacts) or ServiceFacts()).workloads
        env = sections.service_env(statuses.get("services") or {}, workloads, sections.INVENTORY_MODULE)
        if env is None:
            self._close_db()
            return None
        info = sections.inventory_conninfo(env)
        if self._db is None or self._db.closed or info != self._db_info:
            # A replaced Deployment may point at another database: connect to the one it uses now.
            self._close_db()
            self._db = psycopg.connect(info, autocommit=True)
            self._db_info = info
        try:
            return sections.stock_levels(self._db)
        except psycopg.Error:
            self._close_db()  # the next sample reconnects (PostgreSQL restarted)
            raise

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _breakers(self) -> list[dict[str, Any]] | None:
        state = canary.read_state(self.view.state_dir)
        if not state:
            return None
        # The canary's subsets have their own section; the trace collector is no shop dependency.
        skip = [s["cluster"] for s in (state.get("canary") or {}).get("subsets", [])] + [COLLECTOR_CLUSTER]
        return sections.breakers(state["adminUrl"], skip)


def log_component(lambdas: LambdaFacts | None, name: str) -> str:
    """The prefix the function's runs log under (the Lambda engine's runtime names it; a bare name otherwise)."""
    if lambdas is None:
        return name
    runtime = lambdas.functions.find(name)
    return str(getattr(runtime, "component", name))
