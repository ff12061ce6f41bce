"""Start real servers on 127.0.0.1 with free ports for the duration of a test session.

Every server binds loopback only; every process started here is stopped (and waited for) on exit.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# One copy of the generic process helpers: the local twin's (re-exported here for the tests).
from local.processes import LOOPBACK, free_port, stop_process, wait_for_http

__all__ = ["LOOPBACK", "free_port", "moto_server", "reset_moto", "stop_process", "wait_for_http"]


@contextmanager
def moto_server(log_dir: Path | None = None) -> Iterator[str]:
    """Run moto's server on 127.0.0.1 (it defaults to 0.0.0.0, so the host is passed) and yield its URL."""
    port = free_port()
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    log = open(log_dir / f"moto-{port}.log", "wb") if log_dir else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [exe, "-H", LOOPBACK, "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://{LOOPBACK}:{port}"
    try:
        wait_for_http(f"{url}/moto-api/", proc=proc)
        yield url
    finally:
        stop_process(proc)
        if log_dir:
            log.close()  # type: ignore[union-attr]


def reset_moto(url: str) -> None:
    """Drop every resource moto holds, so each test starts from an empty account."""
    req = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(req, timeout=10):
        pass
