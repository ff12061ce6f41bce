"""A Deployment's replicas as the kubelet keeps them, with fake processes, a fake probe and a fake clock:
readiness gates the endpoints, a dead replica leaves them after the control plane's lag and restarts with a
doubling backoff, failed probes take a live one out."""

from __future__ import annotations

import io
from dataclasses import dataclass

from local.processes import LogSink
from local.replicas import BACKOFF_MAX, ENDPOINT_LAG, Probe, ReplicaSet, backoff


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeProcess:
    pid: int
    code: int | None = None

    def poll(self) -> int | None:
        return self.code


@dataclass(frozen=True)
class FakeProbe(Probe):
    answering: frozenset[int] = frozenset()

    def answers(self, url: str, timeout: float | None = None) -> bool:
        return int(url.rsplit(":", 1)[1]) in self.answering


def _set(probe: FakeProbe, clock: Clock) -> tuple[ReplicaSet, list[FakeProcess]]:
    started: list[FakeProcess] = []

    def start(port: int) -> FakeProcess:
        started.append(FakeProcess(pid=1000 + len(started)))
        return started[-1]

    replicas = ReplicaSet("shop/inventory-v1", [5001, 5002], probe, start, LogSink(io.StringIO()), "inventory",
                          clock=clock)
    for index in range(2):
        replicas.start(index)
    return replicas, started


def test_a_replica_joins_the_endpoints_only_once_its_probe_answers() -> None:
    clock = Clock()
    replicas, _ = _set(FakeProbe(period=5, answering=frozenset({5001})), clock)
    assert replicas.tick() is True
    assert [r.port for r in replicas.ready()] == [5001]
    replicas.probe = FakeProbe(period=5, answering=frozenset({5001, 5002}))
    clock.now += 0.2
    assert replicas.tick() is True and len(replicas.ready()) == 2


def test_a_dead_replica_leaves_after_the_lag_and_restarts_on_its_port_with_backoff() -> None:
    clock = Clock()
    replicas, started = _set(FakeProbe(period=5, answering=frozenset({5001, 5002})), clock)
    replicas.tick()
    started[0].code = -9
    assert replicas.tick() is False and len(replicas.ready()) == 2  # still an endpoint: the mesh sees the failures
    clock.now += ENDPOINT_LAG
    assert replicas.tick() is True and [r.port for r in replicas.ready()] == [5002]
    clock.now += backoff(1)
    replicas.tick()
    assert len(started) == 3 and replicas.replicas[0].pid == started[2].pid and replicas.replicas[0].port == 5001
    clock.now += 0.2
    assert replicas.tick() is True and len(replicas.ready()) == 2
    assert replicas.status()["processes"][0]["restarts"] == 1
    assert [backoff(n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0] and backoff(20) == BACKOFF_MAX


def test_failed_probes_take_a_live_replica_out_of_the_endpoints() -> None:
    clock = Clock()
    replicas, _ = _set(FakeProbe(period=5, failure_threshold=2, answering=frozenset({5001, 5002})), clock)
    replicas.tick()
    replicas.probe = FakeProbe(period=5, failure_threshold=2, answering=frozenset({5002}))
    clock.now += 5
    assert replicas.tick() is False and len(replicas.ready()) == 2  # one failure is not enough
    clock.now += 5
    assert replicas.tick() is True and [r.port for r in replicas.ready()] == [5002]
