"""A Deployment's replicas as the kubelet keeps them: N processes, each probed for readiness, restarted when it dies.

Each replica is one process of the Deployment's code on a port of its own (its pod address, kept across restarts as a
pod keeps its IP when its container restarts). Readiness gates traffic: a replica is an endpoint only while its
readinessProbe path answers 2xx; `failureThreshold` failed probes in a row (each `timeoutSeconds`, every
`periodSeconds`) take it out again, and it is probed until it answers. A replica that exits is restarted after a
backoff that doubles from `BACKOFF_START` to `BACKOFF_MAX` (the kubelet's CrashLoopBackOff runs 10 s to 5 min;
the twin's is shorter so a test sees the restart) and resets once a run has lasted `BACKOFF_RESET`.
`tick` does one round of that and says whether the set of ready endpoints changed.
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local.processes import LOOPBACK, LogSink, stop_process

BACKOFF_START = 1.0
BACKOFF_MAX = 30.0
BACKOFF_RESET = 60.0
#: A dead replica stays an endpoint this long after the kubelet notices: the pod's Ready condition, the
#: EndpointSlice controller and istiod's push debounce take a second or two in a cluster, and meanwhile the mesh's
#: retries and outlier detection are what keep requests off it.
ENDPOINT_LAG = 1.5


@dataclass
class Replica:
    index: int
    port: int
    proc: subprocess.Popen[bytes] | None
    started: float
    ready: bool = False
    ready_seconds: float | None = None
    restarts: int = 0
    failures: int = 0
    next_probe: float = 0.0
    restart_at: float | None = None
    last_exit: int | None = None
    gone_at: float | None = None
    """When its exit was noticed, while it is still an endpoint (`ENDPOINT_LAG`)."""

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None


@dataclass(frozen=True)
class Probe:
    """A readinessProbe's httpGet path and timing (Kubernetes' defaults where the graph sets none)."""

    path: str = "/"
    period: float = 10.0
    timeout: float = 1.0
    failure_threshold: int = 3

    @classmethod
    def from_container(cls, container: dict[str, Any]) -> Probe:
        probe = container.get("readinessProbe") or {}
        return cls(path=str((probe.get("httpGet") or {}).get("path") or "/"),
                   period=float(probe.get("periodSeconds") or 10), timeout=float(probe.get("timeoutSeconds") or 1),
                   failure_threshold=int(probe.get("failureThreshold") or 3))

    def answers(self, url: str, timeout: float | None = None) -> bool:
        try:
            with urllib.request.urlopen(url + self.path, timeout=timeout or self.timeout) as response:
                return 200 <= response.status < 300
        except (urllib.error.URLError, ConnectionError, OSError, ValueError):
            return False


def backoff(restarts: int) -> float:
    """Seconds before restart number `restarts` (1, 2, ...): doubling, capped."""
    return min(BACKOFF_MAX, BACKOFF_START * 2 ** max(0, restarts - 1))


class ReplicaSet:
    """The processes of one Deployment; `start_process(port)` starts one replica's process on `port`."""

    def __init__(self, key: str, ports: list[int], probe: Probe, start_process: Callable[[int], Any],
                 sink: LogSink, component: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.key = key
        self.probe = probe
        self._start_process = start_process
        self.sink = sink
        self.component = component
        self.clock = clock
        self.replicas = [Replica(index=i, port=port, proc=None, started=clock()) for i, port in enumerate(ports)]

    def start(self, index: int) -> Replica:
        replica = self.replicas[index]
        replica.gone_at = None
        replica.proc = self._start_process(replica.port)
        replica.started = self.clock()
        replica.ready, replica.failures, replica.restart_at, replica.next_probe = False, 0, None, 0.0
        return replica

    def ready(self) -> list[Replica]:
        return [r for r in self.replicas if r.ready]

    def tick(self) -> bool:
        """Notice exits, restart what is due, probe what is due; True when the ready set changed."""
        changed = False
        for replica in self.replicas:
            changed |= self._tick(replica, self.clock())
        return changed

    def _tick(self, replica: Replica, now: float) -> bool:
        if replica.gone_at is not None and now - replica.gone_at >= ENDPOINT_LAG:
            replica.gone_at, replica.ready = None, False
            return True
        if replica.proc is None:
            if replica.restart_at is not None and now >= replica.restart_at:
                self.start(replica.index)
                self.sink.write(self.component, f"{self.key} replica {replica.index}: restarted (restart "
                                                f"{replica.restarts}, pid {replica.pid})")
            return False
        code = replica.proc.poll()
        if code is not None:
            ran = now - replica.started
            if ran >= BACKOFF_RESET:
                replica.restarts = 0
            replica.restarts += 1
            delay = backoff(replica.restarts)
            replica.proc, replica.last_exit = None, code
            replica.restart_at = now + max(delay, ENDPOINT_LAG if replica.ready else 0.0)
            if replica.ready:
                replica.gone_at = now
            self.sink.write(self.component, f"{self.key} replica {replica.index} exited with code {code} after "
                                            f"{ran:.1f} s: restarting in {delay:g} s")
            return False
        if now < replica.next_probe:
            return False
        ok = self.probe.answers(replica.url)
        # Before it is ready a replica is probed often (it joins as soon as it answers); then every period.
        replica.next_probe = self.clock() + (self.probe.period if ok or replica.ready else 0.2)
        if ok:
            replica.failures = 0
            if not replica.ready:
                replica.ready = True
                replica.ready_seconds = self.clock() - replica.started
                self.sink.write(self.component, f"{self.key} replica {replica.index} on {replica.url} ready in "
                                                f"{replica.ready_seconds:.1f} s")
                return True
            return False
        if replica.ready:
            replica.failures += 1
            if replica.failures >= self.probe.failure_threshold:
                replica.ready = False
                self.sink.write(self.component, f"{self.key} replica {replica.index}: readiness failed "
                                                f"{replica.failures} times, taken out of the endpoints")
                return True
            replica.next_probe = self.clock() + self.probe.period
        return False

    def status(self) -> dict[str, Any]:
        return {"replicas": len(self.replicas), "ready": len(self.ready()),
                "pids": [r.pid for r in self.replicas if r.pid is not None],
                "processes": [{"index": r.index, "pid": r.pid, "port": r.port, "ready": r.ready,
                               "restarts": r.restarts, "lastExitCode": r.last_exit,
                               "readySeconds": r.ready_seconds} for r in self.replicas]}

    def processes(self) -> list[subprocess.Popen[bytes]]:
        return [r.proc for r in self.replicas if r.proc is not None]

    def stop(self) -> None:
        for proc in self.processes():
            stop_process(proc)
