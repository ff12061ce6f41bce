"""The gateway's HTTP server on 127.0.0.1: reads a request (chunked or not), strips the stage, answers with the
gateway's response. A bug in the twin itself answers API Gateway's `Internal server error`."""

from __future__ import annotations

import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import Any

from local.gateway.handler import Gateway
from local.gateway.messages import Request, Response
from local.gateway.responses import GatewayError
from local.http_server import LoopbackHTTPServer
from local.processes import LOOPBACK


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, a keep-alive client's delayed ACK adds ~40 ms.
    disable_nagle_algorithm = True
    server: GatewayServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        body = self._read_body()
        split = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(split.path)
        stage_prefix = f"/{self.server.gateway.api.stage}"
        gateway = self.server.gateway
        request = Request(method=self.command, path=path.removeprefix(stage_prefix) or "/",
                          raw_query=split.query, header_items=list(self.headers.items()), body=body,
                          source_ip=self.client_address[0])
        if path != stage_prefix and not path.startswith(stage_prefix + "/"):
            err = GatewayError("MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")
            status, headers, payload = gateway.api.gateway_response(err, {}, request.lower_headers)
            response = Response(status, list(headers.items()), payload)
        else:
            try:
                response = gateway.handle(request)
            except Exception as exc:  # a bug in the twin itself: answer like API Gateway's internal error
                gateway.sink.write("gateway", f"internal error: {exc!r}")
                response = Response(500, [("Content-Type", "application/json")],
                                    b'{"message": "Internal server error"}')
        try:
            self.send_response(response.status)
            for name, value in response.headers:
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. its own timeout); nothing to answer

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _serve


class GatewayServer(LoopbackHTTPServer):
    allow_reuse_address = True
    # socketserver's default listen backlog is 5: a burst of concurrent clients got connection resets.
    request_queue_size = 256

    def __init__(self, gateway: Gateway, port: int = 0) -> None:
        self.gateway = gateway
        super().__init__((LOOPBACK, port), _Handler)
