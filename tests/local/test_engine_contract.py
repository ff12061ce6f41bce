"""The engine contract in-process, with recording engines: the lineup's order, typed records handed on, the
concurrent engine on a pool thread, translations in outputs, and stop reaching every engine after a failed deploy."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from local import lineup, registry, twin
from local.engine import Engine, EngineSettings
from local.errors import DeployError
from local.facts import AwsFacts, EngineFacts, Facts, GatewayFacts, ServiceFacts
from local.processes import LogSink
from sim.capture import Graph


@dataclass(frozen=True, kw_only=True)
class StoreFacts(EngineFacts):
    thread: str


@dataclass(frozen=True, kw_only=True)
class WorkerFacts(EngineFacts):
    store_thread: str


class Recording(Engine):
    """Records each contract call in the class's `calls` (shared by one test's engines)."""

    calls: ClassVar[list[str]] = []

    @classmethod
    def build(cls, settings: EngineSettings, sink: LogSink) -> Recording:
        return cls()

    def prepare(self) -> None:
        self.calls.append(f"prepare {self.name}")

    def endpoints(self) -> dict[str, str]:
        return {f"{self.name}Url": f"http://{self.name}"}

    def status(self) -> dict[str, Any]:
        return {}

    def stop(self) -> None:
        self.calls.append(f"stop {self.name}")


class Store(Recording):
    name = "store"
    provides = StoreFacts
    concurrent = True

    def deploy(self, graph: Graph, facts: Facts) -> StoreFacts:
        self.calls.append("deploy store")
        return StoreFacts(thread=threading.current_thread().name, translations={"graph-queue": "twin-queue"})


class Worker(Recording):
    name = "worker"
    provides = WorkerFacts
    reads = (StoreFacts,)

    def deploy(self, graph: Graph, facts: Facts) -> WorkerFacts:
        self.calls.append("deploy worker")
        return WorkerFacts(store_thread=facts.require(StoreFacts).thread)


class Broken(Recording):
    name = "broken"
    provides = WorkerFacts

    def deploy(self, graph: Graph, facts: Facts) -> WorkerFacts:
        raise DeployError("broken cannot run this graph")


@pytest.fixture
def make_twin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    def make(*engines: type[Engine]) -> twin.Twin:
        Recording.calls = []
        monkeypatch.setattr(twin, "ENGINES", engines)
        monkeypatch.setattr(twin, "check_order", lambda: lineup.check_order(engines))
        monkeypatch.setattr(twin.Twin, "capture",
                            lambda self: Graph(resources=[], exports={"queue": "graph-queue/1"}, region="eu-west-1"))
        return twin.Twin(twin.Options(state_dir=tmp_path, watch_config=False), LogSink(io.StringIO()))

    return make


def test_the_lineup_reads_only_records_of_engines_before_it() -> None:
    lineup.check_order()
    names = [e.name for e in lineup.ENGINES]
    assert names.index("moto") < names.index("lambda") < names.index("gateway") < names.index("s3-events")
    assert names.index("postgres") < names.index("services") < names.index("mesh") < names.index("lambda")
    assert names[0] == "traces"  # the collector: everything after it exports spans to it
    with pytest.raises(AssertionError, match="Worker reads StoreFacts"):
        lineup.check_order((Worker, Store))


def test_every_type_an_engine_deploys_is_in_the_plan_table() -> None:
    for engine in lineup.ENGINES:
        assert engine.types, engine.name
        for type_token in engine.types:
            assert registry.ENGINES[type_token][0] == engine.name


def test_a_later_record_of_the_same_kind_replaces_the_earlier_in_place() -> None:
    first = AwsFacts(endpoint_url="http://a", region="r", client=lambda s: None, translations={"x": "a", "y": "a"})
    facts = Facts().add(first).add(ServiceFacts(translations={"y": "services"}))
    facts = facts.add(AwsFacts(endpoint_url="http://b", region="r", client=lambda s: None, translations={"x": "b"}))
    assert [type(p) for p in facts.parts] == [AwsFacts, ServiceFacts]
    assert facts.translations == {"x": "b", "y": "services"}
    assert facts.get(GatewayFacts) is None
    with pytest.raises(DeployError, match="GatewayFacts"):
        facts.require(GatewayFacts)


def test_a_concurrent_engine_deploys_on_a_pool_thread_and_its_record_reaches_its_reader(make_twin: Any) -> None:
    t = make_twin(Store, Worker)
    endpoints = t.up()
    try:
        worker = t.facts.require(WorkerFacts)
        assert worker.store_thread.startswith("deploy") and worker.store_thread != threading.main_thread().name
        # Every engine's endpoints, and the live page the twin serves beside them.
        assert endpoints == {"storeUrl": "http://store", "workerUrl": "http://worker",
                             "dashboardUrl": t.dashboard.url}
        assert t.outputs() == {"queue": "twin-queue/1"}
        assert Recording.calls[:2] == ["prepare store", "prepare worker"]
    finally:
        t.down()
    assert Recording.calls[-2:] == ["stop worker", "stop store"]


def test_a_failed_deploy_still_stops_every_engine_that_was_prepared(make_twin: Any) -> None:
    t = make_twin(Store, Broken, Worker)
    with pytest.raises(DeployError, match="broken cannot run"):
        t.up()
    t.down()
    assert "deploy worker" not in Recording.calls
    assert [c for c in Recording.calls if c.startswith("stop")] == ["stop worker", "stop broken", "stop store"]
