"""The contract every engine of the twin implements (the order the twin runs them in is `local.lineup.ENGINES`).

An engine deploys the part of the graph it owns (`types`, also the registry's table for `plan`) and hands the
engines after it what they need as a typed record (`local.facts`): `deploy(graph, facts) -> its record`.
`reconfigure` gets a re-captured graph when the stack file changes (live where the engine can, otherwise it says
a restart is needed) and may return a new record. `stop` must stop everything the engine started, even after a
failed or half-done deploy, and be safe to call when nothing started.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from local.facts import EngineFacts, Facts
from local.processes import LogSink
from sim.capture import Graph


@dataclass(frozen=True, kw_only=True)
class EngineSettings:
    """What `python -m local up` lets the user choose about the engines (defaults in `local.twin.Options`)."""

    state_dir: Path
    gateway_port: int
    aws_port: int
    strict_parameters: bool
    max_workers: int
    fork_server: bool
    retry_delays: tuple[float, ...]
    max_replicas: int = 0
    """Processes per Deployment at most (0: the graph's `replicas`)."""


class Engine(ABC):
    name: ClassVar[str]
    """Its log prefix and its column in `plan`."""
    types: ClassVar[tuple[str, ...]] = ()
    """The resource types it deploys."""
    provides: ClassVar[type[EngineFacts]]
    """The record its deploy returns."""
    reads: ClassVar[tuple[type[EngineFacts], ...]] = ()
    """The records it reads from the engines before it (the twin waits for them)."""
    concurrent: ClassVar[bool] = False
    """Its deploy may run on a pool thread beside the engines after it, until one reads its record. Only for
    engines that start no process in deploy: a child may die with the thread that started it (Envoy's launcher asks
    for a parent-death signal), and a pool thread ends when its work does."""
    live: ClassVar[bool] = False
    """`reconfigure` applies changes of its resources without a restart (otherwise the twin says to restart)."""

    @classmethod
    @abstractmethod
    def build(cls, settings: EngineSettings, sink: LogSink) -> Engine:
        """The engine for these settings, logging to `sink` (nothing starts yet)."""

    def prepare(self) -> None:
        """Start what needs no graph (a server booting, libraries importing) while the program is captured."""
        return None  # most engines need the graph for everything

    @abstractmethod
    def deploy(self, graph: Graph, facts: Facts) -> EngineFacts:
        """Deploy this engine's part of `graph`; return what the engines after it need."""

    @abstractmethod
    def endpoints(self) -> dict[str, str]:
        """The user-facing URLs it serves (endpoints.json)."""

    def reconfigure(self, graph: Graph, facts: Facts) -> EngineFacts | None:
        """A re-captured graph after a stack file change; None keeps the record handed on at deploy."""
        return None

    @abstractmethod
    def status(self) -> dict[str, Any]:
        """What it runs, for `python -m local status` (empty when it runs nothing)."""

    @abstractmethod
    def stop(self) -> None:
        """Stop everything it started (also after a failed deploy); safe to call twice or before deploy."""
