"""The cloud's metric source: Istio's standard metrics, asked of the in-cluster Prometheus through the Kubernetes
API's service proxy with the stack's own kubeconfig (and :func:`get_object`, one read of an object of that API).

Standard library only (``urllib``, ``ssl``, ``subprocess``), so the program can run it inside ``pulumi up`` (a
dynamic resource's provider is serialised and run by the Python language host with requirements.txt alone) and
``python -m infra.rollout`` can run it between updates. The PromQL and the answer parsing are in
:mod:`mesh.analysis`; this module only moves bytes and credentials.

Credentials are resolved per sample, not once: the EKS kubeconfig's user runs ``aws eks get-token``, whose
token lives 15 minutes, shorter than a rollout.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mesh.analysis import CanaryTarget, PrometheusError, Sample, sample_from_answers, sample_queries


class KubeconfigError(ValueError):
    """The kubeconfig lacks what a request to the API server needs (server, a supported credential)."""


@dataclass(frozen=True, kw_only=True)
class KubeAccess:
    """How to reach one API server as one user: the server URL, how to trust it, how to authenticate."""

    server: str
    token: str | None = None
    ca_pem: str | None = None
    """PEM of the cluster's CA (``certificate-authority-data`` decoded); None: the system's trust store."""
    client_cert_pem: str | None = None
    client_key_pem: str | None = None
    insecure_skip_tls_verify: bool = False

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.server.startswith("https://"):
            return None
        context = ssl.create_default_context(cadata=self.ca_pem) if self.ca_pem else ssl.create_default_context()
        if self.insecure_skip_tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.client_cert_pem and self.client_key_pem:
            _load_client_pair(context, self.client_cert_pem, self.client_key_pem)
        return context


def _load_client_pair(context: ssl.SSLContext, cert_pem: str, key_pem: str) -> None:
    """``ssl`` loads a client certificate only from files: a private folder, deleted once loaded."""
    with tempfile.TemporaryDirectory(prefix="kube-client-") as folder:
        cert, key = Path(folder) / "client.crt", Path(folder) / "client.key"
        for path, text in ((cert, cert_pem), (key, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
        context.load_cert_chain(str(cert), str(key))


Runner = Callable[..., "subprocess.CompletedProcess[str]"]


def kube_access(kubeconfig: str, *, context: str | None = None, run: Runner = subprocess.run) -> KubeAccess:
    """The current (or named) context of a kubeconfig (YAML or JSON) as a :class:`KubeAccess`.

    Supports what this program's kubeconfigs use: ``token``/``tokenFile``, client certificate data, and an
    ``exec`` credential plugin (``aws eks get-token``), run here as kubectl would run it.
    """
    doc = yaml.safe_load(kubeconfig) or {}
    name = context or doc.get("current-context")
    ctx = _named(doc, "contexts", name, "context")
    cluster = _named(doc, "clusters", ctx.get("cluster"), "cluster")
    user = _named(doc, "users", ctx.get("user"), "user") if ctx.get("user") else {}
    server = str(cluster.get("server") or "")
    if not server:
        raise KubeconfigError(f"kubeconfig: cluster {ctx.get('cluster')!r} has no server")
    ca_pem = _b64(cluster.get("certificate-authority-data"))
    if ca_pem is None and cluster.get("certificate-authority"):
        ca_pem = Path(cluster["certificate-authority"]).read_text()
    token, cert, key = _credential(user, run)
    return KubeAccess(server=server.rstrip("/"), token=token, ca_pem=ca_pem, client_cert_pem=cert,
                      client_key_pem=key, insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify")))


def _named(doc: Mapping[str, Any], section: str, name: object, field: str) -> dict[str, Any]:
    for entry in doc.get(section) or []:
        if entry.get("name") == name:
            return dict(entry.get(field) or {})
    raise KubeconfigError(f"kubeconfig: no {section[:-1]} named {name!r}")


def _b64(value: object) -> str | None:
    return base64.b64decode(str(value)).decode() if value else None


def _credential(user: Mapping[str, Any], run: Runner) -> tuple[str | None, str | None, str | None]:
    if user.get("token"):
        return str(user["token"]), None, None
    if user.get("tokenFile"):
        return Path(user["tokenFile"]).read_text().strip(), None, None
    if user.get("client-certificate-data") and user.get("client-key-data"):
        return None, _b64(user["client-certificate-data"]), _b64(user["client-key-data"])
    if user.get("exec"):
        return _exec_credential(user["exec"], run)
    if user:
        raise KubeconfigError(f"kubeconfig: unsupported user credential (keys {sorted(user)}); use a token, "
                              "client certificate data or an exec plugin")
    return None, None, None


def _exec_credential(spec: Mapping[str, Any], run: Runner) -> tuple[str | None, str | None, str | None]:
    """Run the plugin like kubectl: ``KUBERNETES_EXEC_INFO`` describes the request, stdout is an ExecCredential."""
    api_version = spec.get("apiVersion", "client.authentication.k8s.io/v1beta1")
    env = {**os.environ, **{e["name"]: e["value"] for e in spec.get("env") or []},
           "KUBERNETES_EXEC_INFO": json.dumps({"apiVersion": api_version, "kind": "ExecCredential",
                                               "spec": {"interactive": False}})}
    command = [str(spec["command"]), *[str(a) for a in spec.get("args") or []]]
    try:
        done = run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KubeconfigError(f"kubeconfig exec plugin {command[0]!r} could not run: {exc}") from exc
    if done.returncode != 0:
        raise KubeconfigError(f"kubeconfig exec plugin {command[0]!r} exited {done.returncode}: "
                              f"{done.stderr.strip()[-500:]}")
    status = (json.loads(done.stdout) or {}).get("status") or {}
    if status.get("token"):
        return str(status["token"]), None, None
    if status.get("clientCertificateData") and status.get("clientKeyData"):
        return None, str(status["clientCertificateData"]), str(status["clientKeyData"])
    raise KubeconfigError(f"kubeconfig exec plugin {command[0]!r} returned no token or client certificate")


SCRAPE_INTERVAL_SECONDS = 15
"""How often the Prometheus this program installs scrapes the sidecars (``infra.monitoring``); an analysis window
must hold two scrapes (``infra.config`` checks ``canaryAnalysisSeconds`` against it)."""

PROMETHEUS_RELEASE = "prometheus"
"""The Helm release of the prometheus-community chart; the chart names its server Service ``<release>-server``."""


@dataclass(frozen=True, kw_only=True)
class PrometheusService:
    """Where Prometheus listens in the cluster: what ``infra.monitoring`` installs, and what the gate and
    ``python -m infra.rollout`` query (one definition)."""

    namespace: str = "monitoring"
    name: str = f"{PROMETHEUS_RELEASE}-server"
    port: str = "80"
    """Port number or name, as the service proxy path takes it (the chart's ``server.service.servicePort``)."""

    def proxy_path(self) -> str:
        """``/api/v1/namespaces/<ns>/services/<name>:<port>/proxy``: the API server forwards to the Service."""
        ns, svc = urllib.parse.quote(self.namespace, safe=""), urllib.parse.quote(f"{self.name}:{self.port}", safe=":")
        return f"/api/v1/namespaces/{ns}/services/{svc}/proxy"


def _get_json(access: KubeAccess, path: str, timeout: float) -> dict[str, Any]:
    """GET ``path`` on the API server as ``access``'s user; HTTP errors propagate (callers read their bodies)."""
    request = urllib.request.Request(f"{access.server}{path}",
                                     headers={"Accept": "application/json", **access.headers()})
    with urllib.request.urlopen(request, timeout=timeout, context=access.ssl_context()) as response:
        return dict(json.loads(response.read()))


def get_object(access: KubeAccess, path: str, *, timeout: float = 30.0) -> dict[str, Any] | None:
    """The object at an API path (``/apis/<group>/<version>/namespaces/<ns>/<kind>/<name>``), None when it does not
    exist (404); anything else the server or the network says is a :class:`KubeconfigError` naming the path."""
    try:
        return _get_json(access, path, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise KubeconfigError(f"GET {path}: HTTP {exc.code}: {exc.read().decode(errors='replace').strip()[:300]}") \
            from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise KubeconfigError(f"GET {access.server}{path}: {exc}") from exc


class PrometheusSource:
    """:class:`mesh.rollout.MetricSource` over Istio's metrics: three instant queries per sample."""

    def __init__(self, access: Callable[[], KubeAccess], service: PrometheusService, target: CanaryTarget,
                 *, timeout: float = 30.0) -> None:
        self.access = access
        self.service = service
        self.target = target
        self.timeout = timeout

    def sample(self, window_seconds: float) -> Sample:
        access = self.access()
        window = max(1, round(window_seconds))
        answers = {field: self.query(access, promql) for field, promql in sample_queries(self.target, window).items()}
        return sample_from_answers(answers, window_seconds)

    def query(self, access: KubeAccess, promql: str) -> dict[str, Any]:
        """One ``/api/v1/query`` through the service proxy; Prometheus' own error answers keep their message."""
        path = f"{self.service.proxy_path()}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        try:
            return _get_json(access, path, self.timeout)
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")
            try:
                answer = json.loads(body)
            except ValueError:
                answer = None
            if isinstance(answer, dict) and answer.get("status") == "error" and "errorType" in answer:
                return answer  # mesh.analysis turns it into a PrometheusError naming Prometheus' reason
            raise PrometheusError(f"GET {self.service.proxy_path()}/api/v1/query: HTTP {exc.code}: "
                                  f"{body.strip()[:300]}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise PrometheusError(f"GET {access.server}{self.service.proxy_path()}/api/v1/query: {exc}") from exc
