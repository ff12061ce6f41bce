"""The page as the twin's sidecar: the sampler thread and uvicorn on its own thread, on a free loopback port.

The twin starts it once its engines are deployed and stops it first. Nothing of the twin waits on it: the
sampler reads on its own thread, uvicorn serves on another with its own event loop, and a page that fails to
start is logged and left out (the twin runs without it).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

from local.dashboard.app import create_app
from local.dashboard.sampler import Sampler, TwinView
from local.processes import LOOPBACK, LogSink

START_TIMEOUT = 10.0


class Dashboard:
    def __init__(self, view: TwinView, sink: LogSink) -> None:
        self.sink = sink
        self.sampler = Sampler(view, sink)
        self._stopping = threading.Event()
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url: str | None = None

    def start(self) -> Dashboard:
        self.sampler.start()
        # Bound here and handed to uvicorn: the port is ours before the URL is published (no free-port race).
        sock = self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, 0))
        config = uvicorn.Config(create_app(self.sampler.latest, self._stopping), log_level="warning",
                                access_log=False, lifespan="off", timeout_graceful_shutdown=2)
        server = self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="dashboard",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the page's server did not start")
            time.sleep(0.01)
        self.url = f"http://{LOOPBACK}:{sock.getsockname()[1]}/"
        self.sink.write("dashboard", f"live page on {self.url}")
        return self

    def endpoints(self) -> dict[str, str]:
        return {"dashboardUrl": self.url} if self.url else {}

    def status(self) -> dict[str, Any]:
        return {"url": self.url, "snapshots": self.sampler.seq} if self.url else {}

    def stop(self) -> None:
        self._stopping.set()  # open event streams end, so uvicorn's shutdown does not wait on them
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
        self.sampler.stop()
        self.url = None
