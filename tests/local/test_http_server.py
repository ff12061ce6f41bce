"""The twin's loopback HTTP server: a client that hangs up is not a server error (no traceback), a real error is."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from local.http_server import LoopbackHTTPServer


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/boom":
            raise ValueError("a bug in the handler")
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[LoopbackHTTPServer]:
    httpd = LoopbackHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def _reset_mid_request(port: int) -> None:
    client = socket.create_connection(("127.0.0.1", port))
    client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # no blank line: the server is still reading headers
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
    client.close()


def test_a_client_that_resets_leaves_no_traceback(server: LoopbackHTTPServer,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(5):
        _reset_mid_request(server.server_address[1])
    time.sleep(0.3)
    assert "Traceback" not in capsys.readouterr().err


def test_a_handler_bug_is_still_reported(server: LoopbackHTTPServer, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.create_connection(("127.0.0.1", server.server_address[1])) as client:
        client.sendall(b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
        client.settimeout(5)
        with contextlib.suppress(OSError):
            client.recv(100)
    time.sleep(0.3)
    assert "ValueError: a bug in the handler" in capsys.readouterr().err
