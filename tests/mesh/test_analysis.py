"""mesh.analysis: the verdict table, the rule that never blocks a rollback, the JSON line, the PromQL and the
parser of Prometheus' answers, the bucket maths the twin's p99 uses."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from mesh.analysis import (
    Action,
    AnalysisSettings,
    Decision,
    Health,
    PrometheusError,
    Sample,
    Verdict,
    bucket_delta,
    bucket_quantile,
    canary_target,
    gate,
    p99_query,
    sample_from_answers,
    sample_queries,
    vector_value,
    verdict,
)
from mesh.canary import CanarySettings

SETTINGS = AnalysisSettings(max_error_percent=1, max_p99_ms=500, min_requests=50, window_seconds=60)


def sample(requests: int, errors: int, p99: float | None = 20.0) -> Sample:
    return Sample(requests=requests, errors=errors, p99_ms=p99, window_seconds=60)


@pytest.mark.parametrize(
    ("s", "health", "metric", "reason"),
    [
        (sample(1000, 314), Health.UNHEALTHY, "error_rate", "v2 error rate 31.4% > 1%"),
        (sample(1000, 11), Health.UNHEALTHY, "error_rate", "v2 error rate 1.1% > 1%"),
        (sample(1000, 10), Health.HEALTHY, None, "v2 error rate 1% <= 1%, p99 20 ms <= 500 ms over 1000 requests"),
        (sample(1000, 0, 812.37), Health.UNHEALTHY, "p99_ms", "v2 p99 latency 812.4 ms > 500 ms"),
        (sample(1000, 0, 500.0), Health.HEALTHY, None,
         "v2 error rate 0% <= 1%, p99 500 ms <= 500 ms over 1000 requests"),
        (sample(1000, 0, math.inf), Health.UNHEALTHY, "p99_ms", "v2 p99 latency inf ms > 500 ms"),
        (sample(49, 49), Health.INSUFFICIENT, "requests", "v2 requests 49 < 50 (not enough data)"),
        (sample(0, 0, None), Health.INSUFFICIENT, "requests", "v2 requests 0 < 50 (not enough data)"),
        (sample(50, 0, None), Health.INSUFFICIENT, "p99_ms",
         "v2 p99 latency unknown (no duration sample in the window)"),
        # A v2 failing everything fast is named by its error rate, not by a latency made of quick 500s.
        (sample(100, 100, 9000.0), Health.UNHEALTHY, "error_rate", "v2 error rate 100% > 1%"),
    ],
)
def test_verdict_table(s: Sample, health: Health, metric: str | None, reason: str) -> None:
    judged = verdict(s, SETTINGS)
    assert (judged.health, judged.metric, judged.reason) == (health, metric, reason)
    assert judged.healthy is (health is Health.HEALTHY)


def test_unhealthy_verdict_carries_the_value_and_the_ceiling() -> None:
    judged = verdict(sample(1000, 314), SETTINGS)
    assert (judged.value, judged.ceiling) == (pytest.approx(31.4), 1)


def test_fractional_ceilings_print_as_typed() -> None:
    judged = verdict(sample(1000, 3), replace(SETTINGS, max_error_percent=0.25))
    assert judged.reason == "v2 error rate 0.3% > 0.25%"


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"max_error_percent": -1}, "canaryMaxErrorPercent"),
        ({"max_error_percent": 101}, "canaryMaxErrorPercent"),
        ({"max_error_percent": math.nan}, "canaryMaxErrorPercent"),
        ({"max_p99_ms": 0}, "canaryMaxP99Ms"),
        ({"min_requests": 0}, "canaryMinRequests"),
        ({"min_requests": 1.5}, "canaryMinRequests"),
        ({"min_requests": True}, "canaryMinRequests"),
        ({"window_seconds": 0}, "canaryAnalysisSeconds"),
        ({"window_seconds": 3601}, "canaryAnalysisSeconds"),
    ],
)
def test_bad_settings_fail_naming_the_config_key(kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(ValueError, match=f"^{key}: "):
        replace(SETTINGS, **kwargs)  # type: ignore[arg-type]


HEALTHY = verdict(sample(1000, 0), SETTINGS)
UNHEALTHY = verdict(sample(1000, 500), SETTINGS)
INSUFFICIENT = verdict(sample(3, 0), SETTINGS)


@pytest.mark.parametrize("judged", [HEALTHY, UNHEALTHY, INSUFFICIENT, None])
@pytest.mark.parametrize(("previous", "new"), [(50, 10), (10, 0), (100, 0), (50, 50), (0, 0)])
def test_lowering_or_keeping_the_weight_is_never_blocked(judged: Verdict | None, previous: int, new: int) -> None:
    assert gate(previous, new, judged).allowed


@pytest.mark.parametrize(("previous", "new"), [(0, 10), (10, 50), (50, 100), (0, 100)])
def test_raising_is_allowed_on_a_healthy_verdict(previous: int, new: int) -> None:
    assert gate(previous, new, HEALTHY).allowed


@pytest.mark.parametrize(("previous", "new"), [(0, 10), (10, 50), (50, 100)])
def test_raising_is_refused_on_an_unhealthy_verdict_naming_it(previous: int, new: int) -> None:
    result = gate(previous, new, UNHEALTHY)
    assert not result.allowed
    assert result.reason == f"canaryWeight {previous} -> {new} refused: v2 error rate 50% > 1% (canaryMaxErrorPercent)"


@pytest.mark.parametrize("judged", [INSUFFICIENT, None])
def test_raising_without_data_is_refused_above_zero_and_allowed_from_zero(judged: Verdict | None) -> None:
    assert not gate(10, 50, judged).allowed
    assert gate(0, 10, judged).allowed


def test_decision_is_one_json_line_with_step_metrics_and_verdict() -> None:
    judged = verdict(sample(1000, 314, 12.345), SETTINGS)
    decision = Decision(step=10, previous_weight=0, sample=sample(1000, 314, 12.345), verdict=judged,
                        action=Action.ROLLBACK, apply_seconds=1.23456, detail="multi\nline")
    line = decision.json_line()
    assert "\n" not in line
    assert json.loads(line) == {
        "step": 10, "previousWeight": 0, "requests": 1000, "errors": 314, "errorPercent": 31.4, "p99Ms": 12.35,
        "windowSeconds": 60, "verdict": "unhealthy", "reason": "v2 error rate 31.4% > 1%", "metric": "error_rate",
        "value": pytest.approx(31.4), "ceiling": 1, "action": "rollback", "applySeconds": 1.235,
        "detail": "multi\nline",
    }


def test_a_failed_apply_decision_has_no_metrics() -> None:
    line = Decision(step=50, previous_weight=10, sample=None, verdict=None, action=Action.FAILED,
                    apply_seconds=0.5, detail="update failed").json_line()
    assert json.loads(line) == {"step": 50, "previousWeight": 10, "action": "failed", "applySeconds": 0.5,
                                "detail": "update failed"}


# --- PromQL ----------------------------------------------------------------------------------------------------

TARGET = canary_target(CanarySettings())
V2 = ('reporter="destination",destination_workload_namespace="canary",destination_workload="myapp-v2",'
      'destination_version="v2"')


def test_target_is_named_like_the_canary_deployment_and_its_pods() -> None:
    settings = CanarySettings()
    assert (TARGET.namespace, TARGET.workload, TARGET.version) == (
        settings.namespace, settings.deployment_name("v2"), settings.deployment_labels("v2")["version"])


def test_queries_use_istio_standard_metrics_over_the_window() -> None:
    queries = sample_queries(TARGET, 60)
    assert queries == {
        "requests": f"sum(increase(istio_requests_total{{{V2}}}[60s]))",
        "errors": f'sum(increase(istio_requests_total{{{V2},response_code=~"5.."}}[60s]))',
        "p99_ms": f"histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{{{V2}}}[60s])) "
                  "by (le))",
    }


def test_query_window_must_be_a_positive_integer() -> None:
    with pytest.raises(ValueError, match="canaryAnalysisSeconds"):
        p99_query(TARGET, 0)


def vector(*values: str) -> dict[str, object]:
    return {"status": "success", "data": {"resultType": "vector",
                                          "result": [{"metric": {}, "value": [1764636000.123, v]} for v in values]}}


def test_answers_parse_into_a_sample_rounding_extrapolated_counts() -> None:
    answers = {"requests": vector("1000.4"), "errors": vector("313.6"), "p99_ms": vector("48.5")}
    assert sample_from_answers(answers, 60) == Sample(requests=1000, errors=314, p99_ms=48.5, window_seconds=60)


def test_no_series_and_nan_mean_no_data() -> None:
    answers = {"requests": vector(), "errors": vector(), "p99_ms": vector("NaN")}
    assert sample_from_answers(answers, 30) == Sample(requests=0, errors=0, p99_ms=None, window_seconds=30)


def test_plus_inf_quantile_stays_over_any_ceiling() -> None:
    assert vector_value(vector("+Inf")) == math.inf


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"status": "error", "errorType": "bad_data", "error": "parse error at char 5"}, "bad_data: parse error"),
        ({"status": "success", "data": {"resultType": "matrix", "result": []}}, "resultType 'matrix'"),
        (vector("1", "2"), "one series"),
        ({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1]}]}},
         "malformed"),
    ],
)
def test_prometheus_errors_and_unexpected_shapes_are_refused(answer: dict[str, object], message: str) -> None:
    with pytest.raises(PrometheusError, match=message):
        vector_value(answer)


# --- Envoy buckets ------------------------------------------------------------------------------------------------

def test_bucket_delta_keeps_only_what_grew_between_two_reads() -> None:
    before = [(1.0, 0.1, 5), (2.0, 0.1, 3)]
    after = [(1.0, 0.1, 5), (2.0, 0.1, 10), (30.0, 1.0, 2)]
    assert bucket_delta(before, after) == [(2.0, 0.1, 7), (30.0, 1.0, 2)]


def test_bucket_quantile_interpolates_inside_the_bucket_holding_the_rank() -> None:
    buckets = [(10.0, 1.0, 98), (100.0, 10.0, 2)]
    assert bucket_quantile(buckets, 0.5) == pytest.approx(10.0 + 50 / 98)
    assert bucket_quantile(buckets, 0.99) == pytest.approx(105.0)  # rank 99: half-way into the second bucket
    assert bucket_quantile(buckets, 1.0) == pytest.approx(110.0)
    assert bucket_quantile([], 0.99) is None
