"""infra.prometheus against a fake API server on 127.0.0.1 that proxies to a fake Prometheus: the service proxy
path, the bearer token (from the kubeconfig, including an exec plugin), TLS with the cluster's CA, and the
answers parsed into a Sample."""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import sys
import textwrap
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from infra.prometheus import KubeAccess, KubeconfigError, PrometheusService, PrometheusSource, kube_access
from local.http_server import LoopbackHTTPServer
from mesh.analysis import PrometheusError, Sample, canary_target, sample_queries
from mesh.canary import CanarySettings

TARGET = canary_target(CanarySettings())
SERVICE = PrometheusService(namespace="monitoring", name="prometheus-server", port="80")
PROXY = "/api/v1/namespaces/monitoring/services/prometheus-server:80/proxy/api/v1/query"
TOKEN = "k8s-aws-v1.fake-token"


def vector(value: str | None) -> dict[str, Any]:
    result = [] if value is None else [{"metric": {}, "value": [1764636000.5, value]}]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


@dataclass
class FakeCluster:
    """The API server's service proxy in front of Prometheus: answers per PromQL text, requests recorded; other API
    paths answer the object stored under them, or 404."""

    answers: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)  # (path, query, authorization)
    url: str = ""


@contextmanager
def fake_cluster(tls: ssl.SSLContext | None = None) -> Iterator[FakeCluster]:
    cluster = FakeCluster()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(parts.query).get("query", [""])[0]
            cluster.seen.append((parts.path, query, self.headers.get("Authorization")))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(401, {"kind": "Status", "status": "Failure", "reason": "Unauthorized", "code": 401})
            elif parts.path in cluster.objects:
                self._send(200, cluster.objects[parts.path])
            elif parts.path != PROXY:
                self._send(404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404})
            else:
                self._send(*cluster.answers.get(query, (200, vector(None))))

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = LoopbackHTTPServer(("127.0.0.1", 0), Handler)
    scheme = "http"
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    cluster.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield cluster
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def answer_window(cluster: FakeCluster, window: int, requests: str | None, errors: str | None,
                  p99: str | None) -> None:
    queries = sample_queries(TARGET, window)
    cluster.answers.update({queries["requests"]: (200, vector(requests)), queries["errors"]: (200, vector(errors)),
                            queries["p99_ms"]: (200, vector(p99))})


def source_for(cluster: FakeCluster, **access: Any) -> PrometheusSource:
    return PrometheusSource(lambda: KubeAccess(server=cluster.url, token=TOKEN, **access), SERVICE, TARGET)


def test_sample_asks_the_three_queries_through_the_service_proxy_with_the_token() -> None:
    with fake_cluster() as cluster:
        answer_window(cluster, 60, "1000.2", "313.9", "42.5")
        sample = source_for(cluster).sample(60)
    assert sample == Sample(requests=1000, errors=314, p99_ms=42.5, window_seconds=60)
    assert [(path, auth) for path, _, auth in cluster.seen] == [(PROXY, f"Bearer {TOKEN}")] * 3
    assert {query for _, query, _ in cluster.seen} == set(sample_queries(TARGET, 60).values())


def test_a_v2_with_no_traffic_yet_is_an_empty_sample_not_zero_latency() -> None:
    with fake_cluster() as cluster:
        answer_window(cluster, 30, None, None, "NaN")
        assert source_for(cluster).sample(30) == Sample(requests=0, errors=0, p99_ms=None, window_seconds=30)


def test_prometheus_error_answers_keep_prometheus_reason() -> None:
    with fake_cluster() as cluster:
        query = sample_queries(TARGET, 60)["requests"]
        cluster.answers[query] = (400, {"status": "error", "errorType": "bad_data", "error": "1:5: parse error"})
        with pytest.raises(PrometheusError, match="bad_data: 1:5: parse error"):
            source_for(cluster).sample(60)


def test_the_api_server_refusing_the_token_is_an_error_naming_the_status() -> None:
    with fake_cluster() as cluster:
        source = PrometheusSource(lambda: KubeAccess(server=cluster.url, token="wrong"), SERVICE, TARGET)
        with pytest.raises(PrometheusError, match="HTTP 401"):
            source.sample(60)


def test_a_wrong_service_is_an_error_naming_the_proxy_path() -> None:
    with fake_cluster() as cluster:
        source = PrometheusSource(lambda: KubeAccess(server=cluster.url, token=TOKEN),
                                  PrometheusService(namespace="istio-system", name="prometheus", port="9090"), TARGET)
        with pytest.raises(PrometheusError, match=r"services/prometheus:9090/proxy.*HTTP 404"):
            source.sample(60)


def kubeconfig(server: str, user: dict[str, Any], cluster_extra: dict[str, Any] | None = None) -> str:
    """The shape infra.platform.kubeconfig_document writes (JSON, valid YAML)."""
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "dev",
        "clusters": [{"name": "dev", "cluster": {"server": server, **(cluster_extra or {})}}],
        "contexts": [{"name": "dev", "context": {"cluster": "dev", "user": "dev"}}],
        "users": [{"name": "dev", "user": user}],
    })


def test_exec_plugin_token_is_fetched_per_sample_like_kubectl(tmp_path: Path) -> None:
    """A stand-in for `aws eks get-token`: prints an ExecCredential, counts its runs, checks KUBERNETES_EXEC_INFO."""
    plugin = tmp_path / "get_token.py"
    runs = tmp_path / "runs.txt"
    plugin.write_text(textwrap.dedent(f"""
        import json, os, sys
        info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
        assert info["kind"] == "ExecCredential" and info["spec"]["interactive"] is False, info
        assert sys.argv[1:] == ["eks", "get-token", "--cluster-name", "dev"], sys.argv
        with open({str(runs)!r}, "a") as fh:
            fh.write(os.environ["AWS_REGION"] + "\\n")
        print(json.dumps({{"kind": "ExecCredential", "apiVersion": info["apiVersion"],
                          "status": {{"token": {TOKEN!r}, "expirationTimestamp": "2026-12-02T01:30:00Z"}}}}))
    """))
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": sys.executable,
                     "args": [str(plugin), "eks", "get-token", "--cluster-name", "dev"],
                     "env": [{"name": "AWS_REGION", "value": "eu-west-1"}], "interactiveMode": "Never"}}
    with fake_cluster() as cluster:
        answer_window(cluster, 60, "500", "0", "9.5")
        text = kubeconfig(cluster.url, user)
        source = PrometheusSource(lambda: kube_access(text), SERVICE, TARGET)
        assert source.sample(60).requests == 500
        assert source.sample(60).p99_ms == 9.5
    assert runs.read_text().splitlines() == ["eu-west-1", "eu-west-1"]  # once per sample: tokens expire


def test_failing_exec_plugin_names_the_command_and_its_stderr(tmp_path: Path) -> None:
    user = {"exec": {"command": sys.executable, "args": ["-c", "import sys; sys.exit('no AWS credentials')"]}}
    with pytest.raises(KubeconfigError, match="exited 1: no AWS credentials"):
        kube_access(kubeconfig("https://example.invalid", user))


def test_kubeconfig_token_ca_and_client_certificate_data_are_read() -> None:
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    access = kube_access(kubeconfig("https://10.0.0.1:6443/", {"client-certificate-data": b64("CERT"),
                                                               "client-key-data": b64("KEY")},
                                    {"certificate-authority-data": b64("CA PEM")}))
    assert access == KubeAccess(server="https://10.0.0.1:6443", ca_pem="CA PEM", client_cert_pem="CERT",
                                client_key_pem="KEY")
    assert kube_access(kubeconfig("http://x", {"token": "t"})).headers() == {"Authorization": "Bearer t"}


def test_kubeconfig_without_the_named_context_is_refused() -> None:
    with pytest.raises(KubeconfigError, match="no context named 'prod'"):
        kube_access(kubeconfig("http://x", {"token": "t"}), context="prod")


@pytest.fixture(scope="module")
def server_tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, str]:
    """A self-signed certificate for 127.0.0.1 (openssl), as an EKS endpoint presents one its CA data trusts."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "server.crt", folder / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=kube-apiserver", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    return context, cert.read_text()


def test_https_api_server_is_trusted_through_the_kubeconfig_ca_only(server_tls: tuple[ssl.SSLContext, str]) -> None:
    context, ca_pem = server_tls
    with fake_cluster(context) as cluster:
        answer_window(cluster, 60, "100", "0", "3")
        assert source_for(cluster, ca_pem=ca_pem).sample(60).requests == 100
        with pytest.raises(PrometheusError, match="CERTIFICATE_VERIFY_FAILED"):
            source_for(cluster).sample(60)  # the system store does not know the cluster's CA
