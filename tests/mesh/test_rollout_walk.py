"""mesh.rollout: the walk with a scripted applier, metric source and clock (no process, no sleep)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from mesh.analysis import AnalysisSettings, Sample
from mesh.rollout import (
    DEFAULT_STEPS,
    EXIT_COMPLETE,
    EXIT_HELD,
    EXIT_ROLLED_BACK,
    ApplyError,
    ApplyHeld,
    RolloutResult,
    parse_steps,
    rollout,
)

SETTINGS = AnalysisSettings(max_error_percent=1, max_p99_ms=500, min_requests=50, window_seconds=30)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class ScriptedSource:
    applier: ScriptedApplier
    started: float

    def sample(self, window_seconds: float) -> Sample:
        elapsed = self.applier.clock.now - self.started
        assert elapsed >= window_seconds, "the walk must wait the window before it samples"
        return self.applier.script(self.applier.weight)


@dataclass
class ScriptedApplier:
    """Weights as the mesh has them; each apply takes 2 s of the fake clock; metrics scripted per weight."""

    script: Callable[[int], Sample]
    clock: FakeClock
    weight: int = 0
    applied: list[int] = field(default_factory=list)
    fail_on: set[int] = field(default_factory=set)
    hold_on: set[int] = field(default_factory=set)

    def current_weight(self) -> int:
        return self.weight

    def apply(self, weight: int) -> None:
        self.clock.now += 2.0
        if weight in self.fail_on:
            raise ApplyError(f"update failed at {weight}")
        if weight in self.hold_on:
            raise ApplyHeld(f"canaryWeight {self.weight} -> {weight} refused: v2 requests 12 < 50 (not enough data)")
        self.applied.append(weight)
        self.weight = weight

    def metrics(self) -> ScriptedSource:
        return ScriptedSource(self, self.clock.now)


def healthy(weight: int) -> Sample:
    return Sample(requests=10 * weight + 100, errors=0, p99_ms=12.0, window_seconds=30)


def failing_30(weight: int) -> Sample:
    requests = 10 * weight + 100
    return Sample(requests=requests, errors=requests * 30 // 100, p99_ms=8.0, window_seconds=30)


def run(script: Callable[[int], Sample], **kwargs: Any) -> tuple[ScriptedApplier, RolloutResult, list[dict[str, Any]]]:
    clock = FakeClock()
    applier = ScriptedApplier(script, clock, **kwargs)
    lines: list[str] = []
    result = rollout(DEFAULT_STEPS, applier, SETTINGS, clock, emit=lines.append)
    return applier, result, [json.loads(line) for line in lines]


def test_healthy_v2_walks_every_step_to_100_and_exits_0() -> None:
    applier, result, lines = run(healthy)
    assert applier.applied == [10, 50, 100]
    assert (result.exit_code, result.final_weight) == (EXIT_COMPLETE, 100)
    assert [(d["step"], d["previousWeight"], d["verdict"], d["action"]) for d in lines] == [
        (10, 0, "healthy", "promote"), (50, 10, "healthy", "promote"), (100, 50, "healthy", "complete")]
    assert all(d["applySeconds"] == 2.0 for d in lines)
    assert applier.clock.slept == [30, 30, 30]


def test_failing_v2_stops_at_the_first_step_writes_0_back_and_exits_1_naming_the_metric() -> None:
    applier, result, lines = run(failing_30)
    assert applier.applied == [10, 0]
    assert (result.exit_code, result.final_weight) == (EXIT_ROLLED_BACK, 0)
    assert result.message == "rolled back to 0: v2 error rate 30% > 1%"
    assert len(lines) == 1
    assert lines[0] | {"applySeconds": None} == {
        "step": 10, "previousWeight": 10, "requests": 200, "errors": 60, "errorPercent": 30.0, "p99Ms": 8.0,
        "windowSeconds": 30, "verdict": "unhealthy", "reason": "v2 error rate 30% > 1%", "metric": "error_rate",
        "value": 30.0, "ceiling": 1, "action": "rollback", "applySeconds": None,
        "detail": "canaryWeight written back to 0"}
    assert lines[0]["applySeconds"] == 2.0  # the rollback's own apply


def test_v2_failing_only_under_load_is_rolled_back_from_the_step_where_it_fails() -> None:
    def slow_at_50(weight: int) -> Sample:
        return Sample(requests=500, errors=0, p99_ms=900.0 if weight >= 50 else 30.0, window_seconds=30)

    applier, result, lines = run(slow_at_50)
    assert applier.applied == [10, 50, 0]
    assert result.exit_code == EXIT_ROLLED_BACK
    assert [d["action"] for d in lines] == ["promote", "rollback"]
    assert lines[-1]["reason"] == "v2 p99 latency 900 ms > 500 ms"


def test_not_enough_data_holds_the_weight_without_rolling_back_and_exits_3() -> None:
    applier, result, lines = run(lambda w: Sample(requests=12, errors=0, p99_ms=5.0, window_seconds=30))
    assert applier.applied == [10]
    assert (result.exit_code, result.final_weight) == (EXIT_HELD, 10)
    assert [(d["verdict"], d["action"]) for d in lines] == [("not enough data", "hold")]


def test_a_step_that_fails_to_apply_is_rolled_back_and_exits_1() -> None:
    applier, result, lines = run(healthy, fail_on={50})
    assert applier.applied == [10, 0]
    assert result.exit_code == EXIT_ROLLED_BACK
    assert [d["action"] for d in lines] == ["promote", "failed", "rollback"]
    assert lines[1]["detail"] == "update failed at 50"


def test_a_step_the_gate_holds_for_want_of_data_keeps_the_weight_in_force_and_exits_3() -> None:
    # The walk judged 10 healthy, but the gate inside the update saw too few requests in its own window: v2 was not
    # seen failing, so rolling it back to 0 would be wrong. The weight in force (10) is written back instead.
    applier, result, lines = run(healthy, hold_on={50})
    assert applier.applied == [10, 10]
    assert (result.exit_code, result.final_weight) == (EXIT_HELD, 10)
    assert [d["action"] for d in lines] == ["promote", "hold"]
    assert lines[1]["detail"] == ("canaryWeight 10 -> 50 refused: v2 requests 12 < 50 (not enough data); "
                                  "canaryWeight stays 10")
    assert result.message.startswith("held at 10: canaryWeight 10 -> 50 refused")


def test_a_resumed_walk_judges_the_weight_in_force_before_raising_it() -> None:
    applier, result, lines = run(healthy, weight=50)
    assert applier.applied == [100]
    assert result.exit_code == EXIT_COMPLETE
    assert [(d["step"], d["action"]) for d in lines] == [(50, "promote"), (100, "complete")]


def test_a_resumed_walk_on_an_unhealthy_v2_rolls_back_without_raising() -> None:
    applier, result, _ = run(failing_30, weight=50)
    assert applier.applied == [0]
    assert result.exit_code == EXIT_ROLLED_BACK


@pytest.mark.parametrize(("text", "steps"),
                         [("10,50,100", (10, 50, 100)), ("100", (100,)), (" 5, 25 ,100", (5, 25, 100))])
def test_parse_steps(text: str, steps: tuple[int, ...]) -> None:
    assert parse_steps(text) == steps


@pytest.mark.parametrize(("text", "message"), [("10,x", "integers"), ("", "at least one"), ("0,100", "between 1"),
                                                ("50,10,100", "increase"), ("10,50", "must be 100")])
def test_bad_steps_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_steps(text)
