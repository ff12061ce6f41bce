"""The cold-start benchmarks, run briefly. `bench/coldstart.py` runs every deployed handler for real, so it breaks
whenever a handler's environment contract grows (it did when the order function gained its service token); a short
run keeps both scripts honest. The timings themselves are the benchmarks' business, not these tests'."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))


def test_every_deployed_handler_has_a_cold_start_that_answers() -> None:
    import coldstart

    proc = subprocess.run([sys.executable, "bench/coldstart.py", "--runs", "1"], cwd=REPO, capture_output=True,
                          text=True, timeout=300)

    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {m.group(1) for m in re.finditer(r"^\| `([\w.]+)` \| this tree \| \d+ \|", proc.stdout, re.MULTILINE)}
    assert rows == {h.removeprefix("functions.") for h in coldstart.deployed_handlers()}
    floor = {m.group(1) for m in re.finditer(r"^\| ([^|`]+?) \| \d+ \|$", proc.stdout, re.MULTILINE)}
    assert set(coldstart.FLOOR) <= floor, proc.stdout[-2000:]


def test_the_bytecode_benchmark_compares_both_trees() -> None:
    proc = subprocess.run([sys.executable, "bench/bytecode.py", "--runs", "3", "--only", "todos"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)

    assert proc.returncode == 0, proc.stderr[-3000:]
    row = re.search(r"^\| `functions.todos.handlers` \| (\d+) \| (\d+) \| [\d.]+x \|$", proc.stdout, re.MULTILINE)
    assert row, proc.stdout
    # Three samples each, so no claim on the ratio beyond the obvious: compiling from source is not free.
    assert int(row[2]) > int(row[1])
