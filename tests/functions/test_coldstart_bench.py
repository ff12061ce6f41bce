"""`bench/coldstart.py` runs every deployed handler for real, so it breaks whenever a handler's environment contract
grows (it did when the order function gained its service token). One short run keeps it honest; the timings
themselves are the benchmark's business, not this test's."""

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
