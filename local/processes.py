"""Process helpers shared by the twin and the tests: free loopback ports, readiness polls, clean stops.

Every process the twin starts runs in its own session (process group) so that stopping it also stops anything it
spawned, and its output is streamed line by line with a component prefix (`[moto] ...`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, timeout: float = 30.0, proc: subprocess.Popen[Any] | None = None) -> None:
    """Poll `url` until it answers any HTTP status, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # the server answered, even if with an error status
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            last = exc
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last}")


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL if it lingers; always reap it."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        proc.wait(timeout=timeout)
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_process(proc, timeout)


def kill_process(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """SIGKILL the process group at once (a Lambda run past its timeout) and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=timeout)


class LogSink:
    """Where component output goes: the console with a `[component]` prefix, and optionally one file per run."""

    def __init__(self, stream: IO[str] | None = None, log_file: Path | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._lock = threading.Lock()
        self._file = open(log_file, "a", encoding="utf-8") if log_file else None  # noqa: SIM115

    def write(self, component: str, line: str, *, console: bool = True) -> None:
        text = f"[{component}] {line.rstrip()}\n"
        with self._lock:
            if console:
                try:
                    self._stream.write(text)
                    self._stream.flush()
                except (ValueError, OSError):
                    pass  # console gone (closed pipe); keep the file log
            if self._file is not None:
                self._file.write(text)
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def pump(stream: IO[bytes], component: str, sink: LogSink,
         quiet: Callable[[str], bool] | None = None) -> threading.Thread:
    """Copy `stream` to `sink` line by line on a daemon thread until it closes.

    Lines for which `quiet(line)` is true go to the log file only (e.g. an emulator's access log).
    """

    def run() -> None:
        with stream:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace")
                sink.write(component, line, console=not (quiet and quiet(line)))

    thread = threading.Thread(target=run, name=f"log-{component}", daemon=True)
    thread.start()
    return thread


def start_process(
    argv: Sequence[str],
    component: str,
    sink: LogSink,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    pass_fds: Sequence[int] = (),
    stdin: int | None = subprocess.DEVNULL,
    quiet: Callable[[str], bool] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `argv` in its own session with stdout+stderr streamed to `sink` under `component`."""
    proc = subprocess.Popen(
        list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=stdin, env=env,
        cwd=str(cwd) if cwd else None, start_new_session=True, pass_fds=tuple(pass_fds),
    )
    assert proc.stdout is not None
    pump(proc.stdout, component, sink, quiet)
    return proc


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll `predicate` until it is true or `timeout` passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
