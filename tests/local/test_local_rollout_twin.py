"""`python -m local rollout` on the twin under a steady stream of requests: a healthy v2 walks 10 -> 50 -> 100 with
no failed request; a v2 failing 30% (`appV2FaultPercent`) is stopped at the first step, `canaryWeight: 0` is
written back to the stack file, and few of all requests fail.

Each test runs its own watching twin on a copy of the stack files (as bench/rollout_stream.py does), so the walk
edits the copy exactly as `pulumi config set` would and the twin re-reads it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.rollout_stream import PREFIX, ROOT, Stream, copy_config, edit_stack
from tests.local.conftest import start_twin

pytestmark = pytest.mark.slow

# Short windows keep the test bounded; the gate needs this many v2 answers per window at 10%.
ANALYSIS = {"canaryAnalysisSeconds": 6, "canaryMinRequests": 15, "canaryMaxErrorPercent": "1"}


def _progress(tmp_path: Path) -> dict[str, Any]:
    """What the walk left for the live page in the twin's state folder."""
    return dict(json.loads((tmp_path / "state" / "rollout.json").read_text()))


def _walk(tmp_path: Path, settings: dict[str, object]) -> tuple[subprocess.CompletedProcess[str], Stream, Path]:
    stack_file = copy_config(tmp_path / "config", 0)
    edit_stack(stack_file, {**ANALYSIS, **settings})
    twin = start_twin(tmp_path / "state", extra=("--config-dir", str(tmp_path / "config")), watch=True)
    try:
        with Stream(twin.endpoints["meshUrl"], threads=3) as stream:
            walk = subprocess.run(
                [sys.executable, "-m", "local", "rollout", "--steps", "10,50,100", "--state-dir", str(twin.state_dir),
                 "--config-dir", str(tmp_path / "config"), "--apply-timeout", "120"],
                cwd=ROOT, capture_output=True, text=True, timeout=600)
    finally:
        twin.stop()
    return walk, stream, stack_file


def _decisions(walk: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in walk.stdout.splitlines() if line.startswith("{")]


def _weight(stack_file: Path) -> str:
    return str(yaml.safe_load(stack_file.read_text())["config"][PREFIX + "canaryWeight"])


def test_a_healthy_v2_reaches_100_with_no_failed_request(tmp_path: Path) -> None:
    walk, stream, stack_file = _walk(tmp_path, {})
    assert walk.returncode == 0, walk.stderr[-2000:]
    decisions = _decisions(walk)
    assert [d["step"] for d in decisions][-1] == 100, decisions
    assert _weight(stack_file) == "100"
    progress = _progress(tmp_path)
    assert (progress["state"], progress["weight"], len(progress["decisions"])) == ("complete", 100, len(decisions))
    answers = stream.since(0)
    failed = [a for a in answers if not a[0].isdigit()]
    assert len(answers) > 200 and not failed, f"{len(failed)} of {len(answers)} failed: {failed[:3]}"


def test_a_failing_v2_is_stopped_at_the_first_step_and_rolled_back(tmp_path: Path) -> None:
    walk, stream, stack_file = _walk(tmp_path, {"appV2FaultPercent": 30})
    assert walk.returncode == 1, walk.stdout[-2000:] + walk.stderr[-2000:]
    assert "v2 error rate" in walk.stderr, walk.stderr[-2000:]
    decisions = _decisions(walk)
    assert {d["step"] for d in decisions} <= {0, 10}, f"walked past the first step: {decisions}"
    assert _weight(stack_file) == "0", "the rollback did not write canaryWeight: 0 back"
    assert (_progress(tmp_path)["state"], _progress(tmp_path)["weight"]) == ("rolled back", 0)
    answers = stream.since(0)
    failed = [a for a in answers if not a[0].isdigit()]
    assert len(answers) > 200 and len(failed) < 0.05 * len(answers), f"{len(failed)} of {len(answers)} failed"
