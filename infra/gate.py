"""`CanaryGate`: the canary's health gate inside `pulumi up`, a Pulumi dynamic resource the VirtualService depends on.

Its inputs are the target `canaryWeight`, the analysis settings, where v2's metrics are and how to reach them (the
stack's kubeconfig, a secret). The engine hands the provider the weight it approved last (its outputs) and the new
one, so the provider sees every weight change before the VirtualService does:

* `diff` (preview and update alike) only compares the two weights: it never queries, so `pulumi preview` judges
  nothing and needs no cluster;
* `update` (and `create`) lowering or keeping the weight returns at once, never querying (a rollback is never
  blocked); raising it asks Prometheus, through the Kubernetes API's service proxy with the stack's own
  credentials (`infra.prometheus`), for v2's requests, 5xx answers and p99 over `canaryAnalysisSeconds`, and applies
  `mesh.analysis.gate`: an unhealthy v2, too few requests above 0, or a Prometheus that cannot answer fails the
  update with the metric, its value and its ceiling (`v2 error rate 31.4% > 1% (canaryMaxErrorPercent)`). The
  engine then updates nothing that depends on the gate, so the VirtualService keeps its weights, and the gate's
  state keeps the old weight: the next `pulumi up` judges the same raise again;
* `create` has no approved weight yet: it reads the weight the live VirtualService routes (the same API server and
  credentials; none yet on a new stack: 0) and judges from there. So turning `canaryAnalysis` on together with a
  raise is judged like any raise (against a Prometheus with no history yet: not enough data, refused above 0),
  and only a new stack's first step passes as a first exposure. At weight 0 nothing is read.

The gate judges the window that has just passed at the weight in force; it does not wait for one (a `pulumi up`
right after the previous step has little v2 traffic to show, and is refused for it above 0).

Why a dynamic resource and not a verification Job per weight (`pulumi.com/waitFor`): a Job sees only the new
inputs, so it cannot tell a raise from a rollback, and it would need an image with an HTTP client and its own RBAC
to read Prometheus. The provider here is pickled by reference (`infra.gate.CanaryGateProvider`, dill's default for
a class in an importable module) and the CLI's dynamic-provider host runs in the project's venv with the project
folder as its working directory, so it imports this module with requirements.txt alone: the standard library for
HTTP, PyYAML for the kubeconfig (tests/infra/test_program_venv.py runs the provider in that venv).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi import dynamic
from pulumi.runtime.rpc import UNKNOWN  # how the provider host passes a value not known yet (preview)

from infra.prometheus import KubeconfigError, PrometheusService, PrometheusSource, get_object, kube_access
from mesh.analysis import HELD_TAG, AnalysisSettings, CanaryTarget, GateResult, PrometheusError, gate, verdict
from mesh.canary import routed_weight
from mesh.common import NETWORKING_API
from mesh.rollout import MetricSource

GATE_MODULE, GATE_NAME = "canary", "CanaryGate"
GATE_TYPE = f"pulumi-python:dynamic/{GATE_MODULE}:{GATE_NAME}"
"""The resource's type token (what `pulumi.dynamic.Resource` derives from the module and name below)."""

WEIGHT = "weight"

# The analysis settings' input properties (ranges are mesh.analysis's, whose messages name the config keys).
_SETTINGS = ("maxErrorPercent", "maxP99Ms", "minRequests", "windowSeconds")
_INTEGERS = ("weight", "minRequests", "windowSeconds")
_TEXTS = ("namespace", "workload", "version", "virtualService", "prometheusNamespace", "prometheusService",
          "prometheusPort", "kubeconfig")


class GateInputError(ValueError):
    """An input the gate cannot work with; the message names the property."""


class GateFailure(RuntimeError):
    """The update must not proceed: the message is what the person running `pulumi up` reads."""


@dataclass(frozen=True, kw_only=True)
class GateInputs:
    """The gate's inputs, parsed: what one judgement needs."""

    weight: int
    settings: AnalysisSettings
    target: CanaryTarget
    virtual_service: str
    """The VirtualService the gate stands before (in the target's namespace)."""
    service: PrometheusService
    kubeconfig: str

    @classmethod
    def parse(cls, props: Mapping[str, Any]) -> GateInputs:
        """From the property bag the engine sends (protobuf numbers arrive as floats: 50.0 is the weight 50)."""
        failures = list(input_failures(props))
        if failures:
            raise GateInputError("; ".join(f"{prop}: {why}" for prop, why in failures))
        try:
            settings = AnalysisSettings(max_error_percent=float(props["maxErrorPercent"]),
                                        max_p99_ms=float(props["maxP99Ms"]), min_requests=int(props["minRequests"]),
                                        window_seconds=int(props["windowSeconds"]))
        except ValueError as exc:  # mesh.analysis names the stack config key
            raise GateInputError(str(exc)) from None
        return cls(weight=int(props[WEIGHT]), settings=settings,
                   target=CanaryTarget(namespace=props["namespace"], workload=props["workload"],
                                       version=props["version"]),
                   virtual_service=props["virtualService"],
                   service=PrometheusService(namespace=props["prometheusNamespace"], name=props["prometheusService"],
                                             port=props["prometheusPort"]),
                   kubeconfig=props["kubeconfig"])


def _is_whole(value: Any) -> bool:
    return (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
            and float(value).is_integer())


def input_failures(props: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(property, why) for each unusable input; values not known yet (preview) are not judged."""
    for prop in (WEIGHT, *_SETTINGS, *_TEXTS):
        value = props.get(prop)
        if value == UNKNOWN:
            continue
        if prop in _TEXTS:
            if not isinstance(value, str) or not value:
                yield prop, f"a non-empty string is required, got {value!r}"
        elif prop in _INTEGERS and not _is_whole(value):
            yield prop, f"an integer is required, got {value!r}"
        elif prop not in _INTEGERS and (isinstance(value, bool) or not isinstance(value, (int, float))):
            yield prop, f"a number is required, got {value!r}"
    weight: Any = props.get(WEIGHT)
    if _is_whole(weight) and not 0 <= weight <= 100:
        yield WEIGHT, f"canaryWeight must be between 0 and 100, got {weight!r}"


SourceFactory = Callable[[GateInputs], MetricSource]


def prometheus_source(inputs: GateInputs) -> MetricSource:
    """v2's Istio metrics in the cluster's Prometheus, through the API server with the stack's kubeconfig
    (credentials resolved per query: an EKS token lives 15 minutes)."""
    return PrometheusSource(lambda: kube_access(inputs.kubeconfig), inputs.service, inputs.target)


def live_weight(inputs: GateInputs) -> int:
    """The canary weight the live VirtualService routes now (0 when it does not exist yet)."""
    path = (f"/apis/{NETWORKING_API}/namespaces/{inputs.target.namespace}/virtualservices/"
            f"{inputs.virtual_service}")
    live = get_object(kube_access(inputs.kubeconfig), path)
    if live is None:
        return 0
    weight = routed_weight(live.get("spec") or {}, inputs.target.version)
    if weight is None:
        raise KubeconfigError(f"GET {path}: the VirtualService has no split route; it is not this program's")
    return weight


def judge(previous: int, inputs: GateInputs, source: SourceFactory = prometheus_source) -> GateResult:
    """May the weight go from `previous` to `inputs.weight`? Only a raise builds a metric source and queries it."""
    if inputs.weight <= previous:
        return gate(previous, inputs.weight, None)
    window = inputs.settings.window_seconds
    try:
        sample = source(inputs).sample(window)
    except (PrometheusError, KubeconfigError, OSError) as exc:
        raise GateFailure(f"canaryWeight {previous} -> {inputs.weight} refused: v2 could not be judged over "
                          f"{window} s (canaryAnalysisSeconds) from Prometheus "
                          f"{inputs.service.namespace}/{inputs.service.name}: {exc}") from exc
    return gate(previous, inputs.weight, verdict(sample, inputs.settings, version=inputs.target.version))


def enforce(previous: int, inputs: GateInputs, source: SourceFactory = prometheus_source) -> GateResult:
    """:func:`judge`, failing the update when the gate says no."""
    result = judge(previous, inputs, source)
    if not result.allowed:
        held = f" {HELD_TAG}" if result.held else ""
        raise GateFailure(f"{result.reason}; the VirtualService keeps canaryWeight {previous} (lowering canaryWeight "
                          f"is never blocked){held}")
    return result


class CanaryGateProvider(dynamic.ResourceProvider):
    """The gate's CRUD. It holds no secret (the kubeconfig is an input), so its pickle need not be one."""

    serialize_as_secret_always = False

    def __init__(self, source: SourceFactory = prometheus_source,
                 routed: Callable[[GateInputs], int] = live_weight) -> None:
        super().__init__()
        self.source = source
        self.routed = routed

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        return dynamic.CheckResult(news, [dynamic.CheckFailure(prop, why) for prop, why in input_failures(news)])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        # `olds` are the outputs: the weight this gate approved last. Settings alone changing judges nothing.
        return dynamic.DiffResult(changes=olds.get(WEIGHT) != news.get(WEIGHT), replaces=[], stables=[],
                                  delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        inputs = GateInputs.parse(props)
        result = enforce(self._routed(inputs) if inputs.weight > 0 else 0, inputs, self.source)
        return dynamic.CreateResult(f"{inputs.target.namespace}/{inputs.target.workload}", _outs(inputs, result))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        inputs = GateInputs.parse(news)
        previous: Any = olds.get(WEIGHT)
        if not _is_whole(previous):  # a state without an approved weight: judge from what the mesh routes, as create
            previous = self._routed(inputs)
        return dynamic.UpdateResult(_outs(inputs, enforce(int(previous), inputs, self.source)))

    def _routed(self, inputs: GateInputs) -> int:
        try:
            return self.routed(inputs)
        except (KubeconfigError, OSError) as exc:
            raise GateFailure(f"canaryWeight {inputs.weight} refused: the weight in force could not be read from "
                              f"VirtualService {inputs.target.namespace}/{inputs.virtual_service}: {exc}") from exc


def _outs(inputs: GateInputs, result: GateResult) -> dict[str, Any]:
    """What the state keeps as outputs: the approved weight (the next diff's `olds`) and why; never the kubeconfig."""
    return {WEIGHT: inputs.weight, "decision": result.reason}


# --- The resource the program registers ---------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class CanaryGateArgs:
    weight: int
    """The `canaryWeight` this update sets."""
    settings: AnalysisSettings
    target: CanaryTarget
    virtual_service: str
    """The name of the VirtualService that depends on the gate."""
    service: PrometheusService
    kubeconfig: pulumi.Input[str]
    """The stack's kubeconfig (the resource makes it a secret, so the state keeps it encrypted)."""


def gate_props(args: CanaryGateArgs) -> dict[str, Any]:
    """The resource's inputs (the property names :meth:`GateInputs.parse` reads)."""
    settings, target, service = args.settings, args.target, args.service
    return {WEIGHT: args.weight, "maxErrorPercent": settings.max_error_percent, "maxP99Ms": settings.max_p99_ms,
            "minRequests": settings.min_requests, "windowSeconds": settings.window_seconds,
            "namespace": target.namespace, "workload": target.workload, "version": target.version,
            "virtualService": args.virtual_service,
            "prometheusNamespace": service.namespace, "prometheusService": service.name,
            "prometheusPort": service.port, "kubeconfig": args.kubeconfig}


class CanaryGate(dynamic.Resource, module=GATE_MODULE, name=GATE_NAME):
    """Registered by `CanaryApp` when `canaryAnalysis` is on; its VirtualService depends on it."""

    weight: pulumi.Output[int]
    decision: pulumi.Output[str]

    def __init__(self, name: str, args: CanaryGateArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # The kubeconfig made a secret: the state keeps the gate's inputs, and may hold a token.
        props = {**gate_props(args), "kubeconfig": pulumi.Output.secret(args.kubeconfig), "decision": None}
        super().__init__(CanaryGateProvider(), name, props, opts)
