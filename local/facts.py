"""What one engine hands the engines after it: a frozen, typed record each, collected in `Facts`.

An engine's `deploy` returns its own record (`AwsFacts`, `PostgresFacts`, ...); the twin adds it to the `Facts` it
passes on, so an engine reads exactly the records it names in `Engine.reads` (the twin waits for those, see
`local.twin`). Every record may carry `translations`: identifiers in the graph -> the twin's (a queue URL the mock
invented -> moto's, the RDS address -> 127.0.0.1, the ingress load balancer's hostname -> Envoy's listener);
`Facts.translations` merges them in deploy order, and `translate` applies them to env values and outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from local.errors import DeployError
from local.function_spec import FunctionSpec, InvokeResult
from mesh.envoy import Workload


@dataclass(frozen=True, kw_only=True)
class EngineFacts:
    translations: Mapping[str, str] = field(default_factory=dict)
    """Identifier in the graph -> the twin's, for the engines after this one and for the outputs."""


@dataclass(frozen=True, kw_only=True)
class AwsFacts(EngineFacts):
    """moto: where it answers, and the data stores it holds under the graph's names."""

    endpoint_url: str
    region: str
    client: Callable[[str], Any] = field(repr=False, compare=False)
    """A boto3 client on moto for a service name (`"s3"`), made once and shared: a new one costs ~0.3 s."""
    tables: tuple[str, ...] = ()
    buckets: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class TracingFacts(EngineFacts):
    """The twin's OTLP/HTTP collector (`http://127.0.0.1:<port>`, the base an exporter appends `/v1/traces` to);
    None when it did not start (then nothing is traced)."""

    otlp_endpoint: str | None


#: Set on every Lambda worker and service process (the standard variable the OTLP exporters read).
OTLP_ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"


def exporter_env(facts: Facts) -> dict[str, str]:
    """The variables that point a process' OTLP exporter at the twin's collector (none when it is not running)."""
    tracing = facts.get(TracingFacts)
    if tracing is None or not tracing.otlp_endpoint:
        return {}
    return {OTLP_ENDPOINT_VARIABLE: tracing.otlp_endpoint}


@dataclass(frozen=True, kw_only=True)
class PostgresFacts(EngineFacts):
    """The local PostgreSQL server (None when the graph declares no database)."""

    url: str | None
    databases: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ServiceWorkload:
    """One running Deployment as the mesh selects it: pod labels and address, and its environment."""

    key: str
    """`<namespace>/<name>` of the Deployment."""
    workload: Workload
    env: Mapping[str, str] = field(repr=False)


class LiveWorkloads(Protocol):
    """The services engine's replicas as they change (processes die, restart, pass or fail readiness)."""

    def current(self) -> tuple[ServiceWorkload, ...]: ...

    def subscribe(self, listener: Callable[[], None]) -> None: ...


@dataclass(frozen=True, kw_only=True)
class ServiceFacts(EngineFacts):
    workloads: tuple[ServiceWorkload, ...] = ()
    """The ready replicas when the record was made."""
    live: LiveWorkloads | None = field(default=None, compare=False, repr=False)
    """Where to read them now and hear of changes (None: they never change)."""


@dataclass(frozen=True, kw_only=True)
class MeshFacts(EngineFacts):
    """Envoy's listeners by name (`canary`, `ingress`) -> URL; empty when Envoy was not started."""

    listeners: Mapping[str, str] = field(default_factory=dict)


class Function(Protocol):
    """One deployed function, as the gateway and the S3 events engine invoke it."""

    @property
    def spec(self) -> FunctionSpec: ...

    def invoke(self, event: Any, *, timeout: float | None = None) -> InvokeResult: ...


class Functions(Protocol):
    def find(self, ref: str) -> Function:
        """A function by name, ARN (qualified or not) or API Gateway invoke ARN; DeployError if none matches."""
        ...


@dataclass(frozen=True, kw_only=True)
class LambdaFacts(EngineFacts):
    functions: Functions


@dataclass(frozen=True, kw_only=True)
class GatewayFacts(EngineFacts):
    """The stage's URL (`http://127.0.0.1:<port>/<stage>`), None when the graph has no REST API."""

    url: str | None


@dataclass(frozen=True, kw_only=True)
class S3EventsFacts(EngineFacts):
    targets: int = 0
    """How many notification targets are delivered."""


F = TypeVar("F", bound=EngineFacts)


@dataclass(frozen=True)
class Facts:
    """Every record handed on so far, in deploy order (one per kind: a later one replaces an earlier)."""

    parts: tuple[EngineFacts, ...] = ()

    def add(self, part: EngineFacts | None) -> Facts:
        if part is None:
            return self
        kept = tuple(p for p in self.parts if type(p) is not type(part))
        if len(kept) == len(self.parts):
            return Facts((*self.parts, part))
        # Same kind again (a reconfigure): keep its place, so translations keep their order.
        return Facts(tuple(part if type(p) is type(part) else p for p in self.parts))

    def get(self, kind: type[F]) -> F | None:
        return next((p for p in self.parts if isinstance(p, kind)), None)

    def require(self, kind: type[F]) -> F:
        found = self.get(kind)
        if found is None:
            raise DeployError(f"no engine before this one handed on {kind.__name__} (check the engine order)")
        return found

    @property
    def translations(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for part in self.parts:
            merged.update(part.translations)
        return merged


def translate(value: Any, translations: Mapping[str, str]) -> Any:
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
