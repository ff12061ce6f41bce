"""The rollout the README measures, on the twin's real Envoy: 50 -> 100 -> retireStable -> rollback while two
clients keep requesting, driven by bench/rollout_stream.py's steps (the bench prints, this test asserts).

`ServicesEngine.reconfigure` is what is under test: a new version starts and is ready before the mesh routes to
it, a removed one stops only after the mesh has re-routed (the drain). One twin and one ordered test: each step
starts from the state the previous one left.
"""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from bench.rollout_stream import V1, V2, run_rollout

pytestmark = pytest.mark.slow


def test_rollout_to_100_retire_and_rollback_lose_no_request_and_move_the_v1_processes(tmp_path: Path) -> None:
    to_100, retire, rollback = run_rollout(tmp_path, start=50, threads=2, settle=7.0)

    for result in (to_100, retire, rollback):
        assert not result.failures, f"{result.step.name}: {len(result.failures)} failed: {result.failures[:3]}"
        assert sum(result.answers.values()) >= 100, f"{result.step.name}: the stream hardly ran: {result.answers}"

    assert to_100.split_seconds is not None
    assert set(to_100.processes_after) == {V1, V2}, "at 100 the stable version still runs (not retired yet)"
    assert to_100.answers[V2] > 0

    old_v1 = retire.processes_before[V1]
    assert V1 not in retire.processes_after, f"v1 still running after retireStable: {retire.processes_after}"
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                   for pid in old_v1), "the retired v1 process is still alive"
    assert set(retire.answers) == {V2}, retire.answers

    assert set(rollback.processes_after) == {V1, V2}, rollback.processes_after
    assert rollback.processes_after[V1] != old_v1, "v1 came back as a new process"
    assert rollback.split_seconds is not None
    assert rollback.answers[V1] > 0, "the rolled-back split sends nothing to v1"
