"""Canary analysis, written once: is v2 healthy over a window, and may the weight move?

Pure (no I/O): the cloud gate (``infra/``, Prometheus with Istio's standard metrics) and the twin (``local/``,
Envoy's own stats) each turn their metrics into a :class:`Sample`; :func:`verdict` judges it against
:class:`AnalysisSettings`, :func:`gate` decides whether a weight change may proceed, and :class:`Decision` is
the one JSON line a rollout prints per step. The PromQL the cloud gate runs and the parser of Prometheus'
answer live here too, so the queries are unit-tested without a cluster.

The policy, for the walk and for the gate inside `pulumi up` alike (:func:`gate`):

* lowering the weight (a rollback) or keeping it is never blocked, and nothing is measured for it;
* raising it needs a healthy verdict over the window at the weight in force;
* "not enough data" (fewer than ``min_requests`` v2 requests in the window) is never a pass above 0: no evidence
  is not evidence of health. It is not evidence of failure either, so a rollout holds the weight instead of
  rolling back;
* the first step from 0 is allowed without data (at 0, v2 gets only header-routed testers, no weighted traffic
  to judge), but an unhealthy verdict from those testers' requests blocks it;
* a metric source that cannot answer (Prometheus unreachable) is an error, never a pass: the caller fails.

Every setting is required: the defaults live once, in Pulumi.yaml, and reach this module through the stack
config (``infra.wiring.analysis_settings``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mesh.canary import CanarySettings


@dataclass(frozen=True, kw_only=True)
class AnalysisSettings:
    """The ceilings and the window (``canaryMaxErrorPercent``, ``canaryMaxP99Ms``, ``canaryMinRequests``,
    ``canaryAnalysisSeconds``)."""

    max_error_percent: float
    """v2's 5xx share of its requests in the window, in percent; above it v2 is unhealthy."""
    max_p99_ms: float
    """v2's 99th percentile request duration in the window, in ms; above it v2 is unhealthy."""
    min_requests: int
    """Fewer v2 requests than this in the window: not enough data for a verdict."""
    window_seconds: int
    """How long each step runs before it is judged (and the range of the Prometheus queries)."""

    def __post_init__(self) -> None:
        validate_settings(self)


def validate_settings(settings: AnalysisSettings) -> None:
    """Messages name the stack config keys, like every other check."""
    if not _is_number(settings.max_error_percent) or not 0 <= settings.max_error_percent <= 100:
        raise ValueError(f"canaryMaxErrorPercent: must be between 0 and 100, got {settings.max_error_percent!r}")
    if not _is_number(settings.max_p99_ms) or not 0 < settings.max_p99_ms <= 3_600_000:
        raise ValueError(f"canaryMaxP99Ms: must be above 0 and at most 3600000 (an hour), got {settings.max_p99_ms!r}")
    if not _is_int(settings.min_requests) or not 1 <= settings.min_requests <= 1_000_000:
        raise ValueError(f"canaryMinRequests: must be an integer between 1 and 1000000, got {settings.min_requests!r}")
    if not _is_int(settings.window_seconds) or not 1 <= settings.window_seconds <= 3600:
        raise ValueError(f"canaryAnalysisSeconds: must be an integer between 1 and 3600, got "
                         f"{settings.window_seconds!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(float(value))  # type: ignore[arg-type]


@dataclass(frozen=True, kw_only=True)
class Sample:
    """What the canary subset did over one window: requests, 5xx answers among them, and their p99."""

    requests: int
    errors: int
    """5xx answers (and, on the twin, connections that failed): what a caller saw as a server failure."""
    p99_ms: float | None
    """None when the window holds no duration sample (no request finished)."""
    window_seconds: float

    @property
    def error_percent(self) -> float:
        return 100.0 * self.errors / self.requests if self.requests else 0.0


#: The stack config key that sets each metric's ceiling (or floor), named in every refusal.
SETTING_KEYS = {"requests": "canaryMinRequests", "error_rate": "canaryMaxErrorPercent", "p99_ms": "canaryMaxP99Ms"}


class Health(StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    INSUFFICIENT = "not enough data"


@dataclass(frozen=True)
class Verdict:
    health: Health
    reason: str
    """One line a person reads: ``v2 error rate 31.4% > 1%``; for a healthy v2 the values under their ceilings."""
    metric: str | None = None
    """The failed (or missing) metric: ``requests``, ``error_rate`` or ``p99_ms``; None when healthy."""
    value: float | None = None
    ceiling: float | None = None

    @property
    def healthy(self) -> bool:
        return self.health is Health.HEALTHY

    @property
    def keyed_reason(self) -> str:
        """The reason with the config key of the failed metric: ``v2 error rate 31.4% > 1% (canaryMaxErrorPercent)``."""
        key = SETTING_KEYS.get(self.metric or "")
        return f"{self.reason} ({key})" if key else self.reason


def _num(value: float) -> str:
    """``1`` not ``1.0``, ``0.25`` as typed: ceilings print as people write them in the stack config (measured
    values are rounded to one decimal before they get here)."""
    return f"{value:.10g}"


def verdict(sample: Sample, settings: AnalysisSettings, version: str = "v2") -> Verdict:
    """Judge one window: enough data first, then the error rate, then p99 (a v2 that fails every request
    names its error rate, not a latency made of its fast 500s)."""
    if sample.requests < settings.min_requests:
        return Verdict(Health.INSUFFICIENT,
                       f"{version} requests {sample.requests} < {settings.min_requests} (not enough data)",
                       "requests", float(sample.requests), float(settings.min_requests))
    rate = sample.error_percent
    if rate > settings.max_error_percent:
        return Verdict(Health.UNHEALTHY, f"{version} error rate {_num(round(rate, 1))}% > "
                       f"{_num(settings.max_error_percent)}%", "error_rate", rate, settings.max_error_percent)
    if sample.p99_ms is None:
        return Verdict(Health.INSUFFICIENT, f"{version} p99 latency unknown (no duration sample in the window)",
                       "p99_ms", None, settings.max_p99_ms)
    if sample.p99_ms > settings.max_p99_ms:
        return Verdict(Health.UNHEALTHY, f"{version} p99 latency {_num(round(sample.p99_ms, 1))} ms > "
                       f"{_num(settings.max_p99_ms)} ms", "p99_ms", sample.p99_ms, settings.max_p99_ms)
    return Verdict(Health.HEALTHY, f"{version} error rate {_num(round(rate, 1))}% <= "
                   f"{_num(settings.max_error_percent)}%, p99 {_num(round(sample.p99_ms, 1))} ms <= "
                   f"{_num(settings.max_p99_ms)} ms over {sample.requests} requests")


# --- may the weight move? -------------------------------------------------------------------------------------

# Ends the message of a raise refused only for want of data. The cloud gate's refusal reaches `python -m
# infra.rollout` as the text of a failed `pulumi up`, so this tag is how the walk tells "hold" from "roll back".
HELD_TAG = "[canary gate: held, not enough data]"


@dataclass(frozen=True)
class GateResult:
    allowed: bool
    reason: str
    held: bool = False
    """Refused for want of data only (v2 was not seen failing): the walk holds instead of rolling back."""


def gate(previous_weight: int, new_weight: int, judged: Verdict | None) -> GateResult:
    """A rollback (or no change) is never blocked; raising the weight needs a healthy verdict.

    ``judged`` is the verdict of the window at ``previous_weight`` (None: nothing could be measured). From 0,
    a lack of data does not block (v2 had no weighted traffic to judge), but an unhealthy verdict does.
    """
    if new_weight <= previous_weight:
        what = "no change" if new_weight == previous_weight else "lowering the weight (rollback)"
        return GateResult(True, f"canaryWeight {previous_weight} -> {new_weight}: {what} is never blocked")
    if judged is not None and judged.healthy:
        return GateResult(True, f"canaryWeight {previous_weight} -> {new_weight}: {judged.reason}")
    if judged is not None and judged.health is Health.UNHEALTHY:
        return GateResult(False, f"canaryWeight {previous_weight} -> {new_weight} refused: {judged.keyed_reason}")
    if previous_weight == 0:
        return GateResult(True, f"canaryWeight 0 -> {new_weight}: first exposure, v2 had no weighted traffic to "
                                "judge")
    missing = judged.keyed_reason if judged is not None else "no metrics"
    return GateResult(False, f"canaryWeight {previous_weight} -> {new_weight} refused: {missing}", held=True)


# --- one JSON line per decision ---------------------------------------------------------------------------------

class Action(StrEnum):
    PROMOTE = "promote"
    """Healthy: go on to the next step."""
    COMPLETE = "complete"
    """Healthy at 100: the rollout is done."""
    ROLLBACK = "rollback"
    """Unhealthy: canaryWeight written back to 0."""
    HOLD = "hold"
    """Not enough data: the weight stays where it is, the rollout stops."""
    FAILED = "failed"
    """The step could not be applied (the update failed); nothing measured."""


@dataclass(frozen=True, kw_only=True)
class Decision:
    step: int
    previous_weight: int
    sample: Sample | None
    verdict: Verdict | None
    action: Action
    apply_seconds: float
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"step": self.step, "previousWeight": self.previous_weight}
        if self.sample is not None:
            out.update(requests=self.sample.requests, errors=self.sample.errors,
                       errorPercent=round(self.sample.error_percent, 2),
                       p99Ms=None if self.sample.p99_ms is None else round(self.sample.p99_ms, 2),
                       windowSeconds=round(self.sample.window_seconds, 2))
        if self.verdict is not None:
            out.update(verdict=self.verdict.health.value, reason=self.verdict.reason)
            if self.verdict.metric is not None:
                out.update(metric=self.verdict.metric, value=self.verdict.value, ceiling=self.verdict.ceiling)
        out.update(action=self.action.value, applySeconds=round(self.apply_seconds, 3))
        if self.detail:
            out["detail"] = self.detail
        return out

    def json_line(self) -> str:
        """One line, no embedded newline (``json.dumps`` escapes them), keys in a fixed order."""
        return json.dumps(self.as_dict(), separators=(",", ":"))


# --- the cloud's metrics: Istio's standard metrics in Prometheus ----------------------------------------------

REQUESTS_METRIC = "istio_requests_total"
DURATION_BUCKETS_METRIC = "istio_request_duration_milliseconds_bucket"


@dataclass(frozen=True, kw_only=True)
class CanaryTarget:
    """The workload whose metrics are judged, as Istio labels them (``destination_*``)."""

    namespace: str
    workload: str
    """The Deployment's name (``destination_workload``), e.g. ``myapp-v2``."""
    version: str
    """The pods' ``version`` label (``destination_version``), e.g. ``v2``."""
    reporter: str = "destination"
    """``destination``: v2's own sidecar reports every attempt it served (retries included), as the twin's
    cluster stats count every upstream attempt; ``source`` would count what callers saw after retries."""


def canary_target(settings: CanarySettings) -> CanaryTarget:
    """The canary version of the app, named exactly as its Deployment and pod labels are built."""
    version = settings.canary_version
    return CanaryTarget(namespace=settings.namespace, workload=settings.deployment_name(version),
                        version=settings.deployment_labels(version)["version"])


def _selector(target: CanaryTarget, *, errors_only: bool = False) -> str:
    matchers = [f'reporter="{target.reporter}"', f'destination_workload_namespace="{target.namespace}"',
                f'destination_workload="{target.workload}"', f'destination_version="{target.version}"']
    if errors_only:
        matchers.append('response_code=~"5.."')
    return "{" + ",".join(matchers) + "}"


def _check_window(window_seconds: int) -> str:
    if not _is_int(window_seconds) or window_seconds < 1:
        raise ValueError(f"canaryAnalysisSeconds: must be a positive integer, got {window_seconds!r}")
    return f"{window_seconds}s"


def requests_query(target: CanaryTarget, window_seconds: int) -> str:
    """v2's requests in the window. ``increase`` (rate x window), summed over pods and response codes."""
    return f"sum(increase({REQUESTS_METRIC}{_selector(target)}[{_check_window(window_seconds)}]))"


def errors_query(target: CanaryTarget, window_seconds: int) -> str:
    """v2's 5xx answers in the window."""
    selector = _selector(target, errors_only=True)
    return f"sum(increase({REQUESTS_METRIC}{selector}[{_check_window(window_seconds)}]))"


def p99_query(target: CanaryTarget, window_seconds: int, quantile: float = 0.99) -> str:
    """v2's p99 request duration in ms from the histogram buckets of every v2 pod."""
    rate = f"rate({DURATION_BUCKETS_METRIC}{_selector(target)}[{_check_window(window_seconds)}])"
    return f"histogram_quantile({quantile}, sum({rate}) by (le))"


def sample_queries(target: CanaryTarget, window_seconds: int) -> dict[str, str]:
    """The three instant queries a :class:`Sample` is made of, by field."""
    return {"requests": requests_query(target, window_seconds), "errors": errors_query(target, window_seconds),
            "p99_ms": p99_query(target, window_seconds)}


class PrometheusError(RuntimeError):
    """Prometheus answered with an error, or with something that is not an instant vector."""


def vector_value(answer: Mapping[str, Any]) -> float | None:
    """The single value of an ``/api/v1/query`` answer whose query aggregates to one series.

    An empty vector (no series matched: v2 served nothing yet) and ``NaN`` (histogram_quantile over no
    samples) are both None: no data, which is different from zero.
    """
    if answer.get("status") != "success":
        raise PrometheusError(f"Prometheus query failed: {answer.get('errorType', '?')}: {answer.get('error', answer)}")
    data = answer.get("data") or {}
    if data.get("resultType") != "vector":
        raise PrometheusError(f"expected an instant vector, got resultType {data.get('resultType')!r}")
    result: Sequence[Mapping[str, Any]] = data.get("result") or []
    if not result:
        return None
    if len(result) > 1:
        raise PrometheusError(f"expected one series (the query aggregates), got {len(result)}: "
                              f"{[r.get('metric') for r in result]}")
    try:
        value = float(result[0]["value"][1])
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise PrometheusError(f"malformed sample {result[0]!r}") from exc
    return None if math.isnan(value) else value


def sample_from_answers(answers: Mapping[str, Mapping[str, Any]], window_seconds: float) -> Sample:
    """A :class:`Sample` from the answers to :func:`sample_queries` (same keys). ``increase`` extrapolates
    to the window's edges, so counts come back fractional; they are rounded."""
    requests = vector_value(answers["requests"])
    errors = vector_value(answers["errors"])
    p99 = vector_value(answers["p99_ms"])  # +Inf (rank in the +Inf bucket) stays inf: over any ceiling
    return Sample(requests=round(requests or 0.0), errors=round(errors or 0.0), p99_ms=p99,
                  window_seconds=window_seconds)


# --- the twin's metrics: Envoy's own histogram buckets -----------------------------------------------------------

Bucket = tuple[float, float, int]
"""(lower bound, width, count) of one Envoy histogram bucket (``histogram_buckets=detailed``)."""


def bucket_delta(before: Iterable[Bucket], after: Iterable[Bucket]) -> list[Bucket]:
    """The samples recorded between two reads of a cumulative histogram (buckets that grew)."""
    old = {(lo, width): count for lo, width, count in before}
    out = [(lo, width, count - old.get((lo, width), 0)) for lo, width, count in after]
    return sorted(b for b in out if b[2] > 0)


def bucket_quantile(buckets: Iterable[Bucket], quantile: float) -> float | None:
    """The ``quantile`` (0..1) of a histogram, interpolated linearly inside the bucket holding its rank (as
    Prometheus' histogram_quantile does); None for an empty histogram."""
    ordered = sorted(b for b in buckets if b[2] > 0)
    total = sum(count for _, _, count in ordered)
    if total == 0:
        return None
    rank = quantile * total
    seen = 0
    for lower, width, count in ordered:
        if seen + count >= rank:
            return lower + width * (rank - seen) / count
        seen += count
    lower, width, _ = ordered[-1]
    return lower + width
