"""The twin's state folder: the files it writes for the CLI (`outputs`, `status`, `canary`) and how it writes them.

`.local/` by default holds endpoints.json, outputs.json, twin.json (what runs, for `status`), mesh.json (the Envoy
admin address and the applied split, for `canary`), secrets.json, data/ (snapshots) and twin.log; rollout.json
when a rollout runs (its steps and decisions, for the page).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ENDPOINTS_FILE = "endpoints.json"
OUTPUTS_FILE = "outputs.json"
TWIN_FILE = "twin.json"
MESH_FILE = "mesh.json"
ROLLOUT_FILE = "rollout.json"
LOG_FILE = "twin.log"


def write_json(path: Path, data: Any) -> None:
    """Write then rename: a reader (another `python -m local` command) never sees half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_twin(state_dir: Path) -> dict[str, Any] | None:
    """twin.json of the twin running on `state_dir`, or None if none runs there."""
    path = state_dir / TWIN_FILE
    if not path.exists():
        return None
    info: dict[str, Any] = json.loads(path.read_text())
    return info if pid_alive(int(info.get("pid", 0))) else None
