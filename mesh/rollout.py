"""The rollout walk, written once: for each step apply the weight, wait the window, judge v2, go on or roll back.

Where the weight is written and where metrics come from is an :class:`Applier` (the cloud's runs ``pulumi up``
through the Automation API, the twin's edits the stack file and waits for Envoy); the walk itself knows neither.
Each decision is one JSON line (:meth:`mesh.analysis.Decision.json_line`).

Exit codes: 0 the last step (100) is healthy; 1 v2 was unhealthy (or a step failed to apply) and ``canaryWeight``
was written back to 0; 3 not enough data, the weight was left where it was (neither promoted nor rolled back).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mesh.analysis import Action, AnalysisSettings, Decision, Health, Sample, Verdict, gate, verdict

DEFAULT_STEPS = (10, 50, 100)
"""The seed's plan: 10%, then 50% if v2 is OK, then 100%."""

EXIT_COMPLETE = 0
EXIT_ROLLED_BACK = 1
EXIT_HELD = 3


class MetricSource(Protocol):
    def sample(self, window_seconds: float) -> Sample:
        """The canary subset's requests, errors and p99 over the last ``window_seconds`` (at most since the
        source was made: see :meth:`Applier.metrics`)."""
        ...


class Applier(Protocol):
    def current_weight(self) -> int:
        """The weight in force now (what the last successful apply left)."""
        ...

    def apply(self, weight: int) -> None:
        """Set ``canaryWeight`` and return once the mesh routes by it; raise :class:`ApplyError` if it can't."""
        ...

    def metrics(self) -> MetricSource:
        """A metric source measuring from now on. Called right after each apply, so a source that diffs
        counters (Envoy) takes its baseline here and a stateless one (Prometheus) simply queries later."""
        ...


class ApplyError(RuntimeError):
    """The weight could not be applied (the update failed, the twin did not take it in time)."""


class ApplyHeld(ApplyError):
    """The update was refused for want of data (the cloud gate's hold): the mesh still routes the old weight."""


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def parse_steps(text: str) -> tuple[int, ...]:
    """``"10,50,100"`` -> (10, 50, 100); strictly increasing weights in 1..100, ending at 100."""
    try:
        steps = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"--steps: comma-separated integers expected, got {text!r}") from None
    check_steps(steps)
    return steps


def check_steps(steps: Sequence[int]) -> None:
    if not steps:
        raise ValueError("--steps: at least one step is needed")
    if any(not 1 <= s <= 100 for s in steps):
        raise ValueError(f"--steps: every step must be between 1 and 100, got {list(steps)}")
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise ValueError(f"--steps: steps must increase, got {list(steps)}")
    if steps[-1] != 100:
        raise ValueError(f"--steps: the last step must be 100 (a rollout ends with v2 taking everything), got "
                         f"{list(steps)}")


@dataclass
class RolloutResult:
    exit_code: int
    final_weight: int
    message: str
    decisions: list[Decision] = field(default_factory=list)


@dataclass
class _Walk:
    applier: Applier
    settings: AnalysisSettings
    clock: Clock
    emit: Callable[[str], None]
    decisions: list[Decision] = field(default_factory=list)

    def record(self, decision: Decision) -> Decision:
        self.decisions.append(decision)
        self.emit(decision.json_line())
        return decision

    def measure(self) -> tuple[Sample, Verdict]:
        source = self.applier.metrics()
        self.clock.sleep(self.settings.window_seconds)
        sample = source.sample(self.settings.window_seconds)
        return sample, verdict(sample, self.settings)

    def apply(self, weight: int) -> tuple[float, ApplyError | None]:
        started = self.clock.monotonic()
        try:
            self.applier.apply(weight)
        except ApplyError as exc:
            return self.clock.monotonic() - started, exc
        return self.clock.monotonic() - started, None

    def hold_refused(self, step: int, previous: int, took: float, refusal: ApplyHeld) -> RolloutResult:
        """The gate in the update held the raise: put the weight back where the mesh still routes it (a no-change
        update, so the stack's config says what is in force) and stop without rolling v2 back."""
        _, error = self.apply(previous)
        detail = f"canaryWeight stays {previous}" + (f"; writing it back failed: {error}" if error else "")
        self.record(Decision(step=step, previous_weight=previous, sample=None, verdict=None, action=Action.HOLD,
                             apply_seconds=took, detail=f"{refusal}; {detail}"))
        return RolloutResult(EXIT_HELD, previous, f"held at {previous}: {refusal}", self.decisions)

    def roll_back(self, step: int, sample: Sample | None, judged: Verdict | None, why: str) -> RolloutResult:
        took, error = self.apply(0)
        detail = f"rollback failed: {error}" if error else "canaryWeight written back to 0"
        self.record(Decision(step=step, previous_weight=step, sample=sample, verdict=judged, action=Action.ROLLBACK,
                             apply_seconds=took, detail=detail))
        final = self.applier.current_weight() if error else 0
        return RolloutResult(EXIT_ROLLED_BACK, final, f"rolled back to 0: {why}" + (f" ({detail})" if error else ""),
                             self.decisions)

    def judge(self, step: int, previous: int, took: float, last: bool) -> RolloutResult | Verdict:
        """Measure a window at ``step``; a verdict to go on with, or the result that ends the walk."""
        sample, judged = self.measure()
        if judged.health is Health.UNHEALTHY:
            return self.roll_back(step, sample, judged, judged.reason)
        if judged.health is Health.INSUFFICIENT:
            self.record(Decision(step=step, previous_weight=previous, sample=sample, verdict=judged,
                                 action=Action.HOLD, apply_seconds=took, detail=f"canaryWeight stays {step}"))
            return RolloutResult(EXIT_HELD, step, f"held at {step}: {judged.reason}", self.decisions)
        self.record(Decision(step=step, previous_weight=previous, sample=sample, verdict=judged,
                             action=Action.COMPLETE if last else Action.PROMOTE, apply_seconds=took))
        return judged


def rollout(steps: Sequence[int], applier: Applier, settings: AnalysisSettings, clock: Clock | None = None,
            emit: Callable[[str], None] = print) -> RolloutResult:
    """Walk ``steps`` from the applier's current weight; every step is judged after its window, the last too.

    Steps at or below the current weight are skipped (a rollout resumed after 50 goes on with 100), but a
    resumed walk first judges the weight in force, so it never raises on an unjudged v2.
    """
    check_steps(steps)
    walk = _Walk(applier, settings, clock or SystemClock(), emit)
    previous = applier.current_weight()
    judged: Verdict | None = None
    if previous > 0:
        outcome = walk.judge(previous, previous, 0.0, last=previous == 100)
        if isinstance(outcome, RolloutResult):
            return outcome
        judged = outcome
    remaining = [s for s in steps if s > previous]
    for index, step in enumerate(remaining):
        allowed = gate(previous, step, judged)
        if not allowed.allowed:  # the cloud gate's rule; judge() only lets healthy verdicts through, so it holds
            return RolloutResult(EXIT_HELD, previous, allowed.reason, walk.decisions)
        took, error = walk.apply(step)
        if isinstance(error, ApplyHeld):
            return walk.hold_refused(step, previous, took, error)
        if error is not None:
            walk.record(Decision(step=step, previous_weight=previous, sample=None, verdict=None,
                                 action=Action.FAILED, apply_seconds=took, detail=str(error)))
            return walk.roll_back(step, None, None, f"canaryWeight {step} was not applied: {error}")
        outcome = walk.judge(step, previous, took, last=index == len(remaining) - 1)
        if isinstance(outcome, RolloutResult):
            return outcome
        previous, judged = step, outcome
    return RolloutResult(EXIT_COMPLETE, previous, f"v2 takes {previous}%: {judged.reason if judged else 'done'}",
                         walk.decisions)
