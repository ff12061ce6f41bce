"""`Monitoring`: the Prometheus the canary gate reads, from the prometheus-community Helm chart (`canaryAnalysis`).

Minimal, as Istio's own sample install (istio/istio `manifests/addons/values-prometheus.yaml`, which renders this
chart at this version for `samples/addons/prometheus.yaml`): no Alertmanager, Pushgateway, kube-state-metrics or
node exporter, no volume (a day of metrics in memory is what a rollout needs), and one scrape job instead of the
chart's nine. Istio's default "metrics merging" annotates every injected pod and the ingress gateway's pods with
`prometheus.io/scrape`, `prometheus.io/port: 15020` and `prometheus.io/path: /stats/prometheus`, where the proxy
serves `istio_requests_total` and `istio_request_duration_milliseconds`; the job keeps exactly those pods (Istio's
Prometheus integration docs, option 1). Prometheus itself stays out of the mesh, so it scrapes plain HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.kube import k8s_opts
from infra.prometheus import PROMETHEUS_RELEASE, SCRAPE_INTERVAL_SECONDS, PrometheusService

PROMETHEUS_CHARTS = "https://prometheus-community.github.io/helm-charts"
PROMETHEUS_CHART = "prometheus"
PROMETHEUS_CHART_VERSION = "27.37.0"
"""Prometheus v3.5.0; the version Istio's sample add-on renders."""


def istio_scrape_configs() -> list[dict[str, Any]]:
    """The pods Istio annotated for scraping (sidecars and gateways), at the port and path the annotations name."""
    annotation = "__meta_kubernetes_pod_annotation_prometheus_io_"
    return [{
        "job_name": "istio-proxies",
        "kubernetes_sd_configs": [{"role": "pod"}],
        "relabel_configs": [
            {"action": "keep", "source_labels": [f"{annotation}scrape"], "regex": "true"},
            {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"],
             "regex": "Pending|Succeeded|Failed|Completed"},
            {"action": "replace", "source_labels": [f"{annotation}path"], "regex": "(.+)",
             "target_label": "__metrics_path__"},
            {"action": "replace", "source_labels": [f"{annotation}port", "__meta_kubernetes_pod_ip"],
             "regex": r"(\d+);((([0-9]+?)(\.|$)){4})", "replacement": "$2:$1", "target_label": "__address__"},
            {"action": "replace", "source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"action": "replace", "source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        ],
    }]


def prometheus_values(service: PrometheusService) -> dict[str, Any]:
    """The chart's values: the server only, out of the mesh, scraping Istio's proxies every 15 s."""
    return {
        "alertmanager": {"enabled": False},
        "prometheus-pushgateway": {"enabled": False},
        "kube-state-metrics": {"enabled": False},
        "prometheus-node-exporter": {"enabled": False},
        "server": {
            # Out of the mesh: under strict mTLS a sidecar would need its own certificates to scrape port 15020.
            "podLabels": {"sidecar.istio.io/inject": "false"},
            "persistentVolume": {"enabled": False},
            "retention": "1d",
            "global": {"scrape_interval": f"{SCRAPE_INTERVAL_SECONDS}s", "evaluation_interval": "1m"},
            "service": {"servicePort": int(service.port)},
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        },
        # Helm replaces lists: this is the whole scrape configuration.
        "serverFiles": {"prometheus.yml": {"scrape_configs": istio_scrape_configs()}},
    }


@dataclass(frozen=True, kw_only=True)
class MonitoringArgs:
    service: PrometheusService
    """Where the server's Service lands (its namespace is created here; the release names the Service)."""
    mesh_ready: Sequence[pulumi.Resource] = ()
    """Istio's releases: the proxies Prometheus scrapes, and the annotations the injector puts on them."""


class Monitoring(pulumi.ComponentResource):
    """A namespace and Prometheus in it; the Kubernetes provider comes through `opts.providers`."""

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-mesh:platform:Monitoring", name, None, opts)
        service = args.service
        if service.name != f"{PROMETHEUS_RELEASE}-server":
            raise ValueError(f"the chart names its server Service {PROMETHEUS_RELEASE}-server, not {service.name!r}")
        self.ns = k8s.core.v1.Namespace(f"{name}-ns", metadata={"name": service.namespace}, opts=k8s_opts(self))
        # Awaited like Istio's releases (skip_await false): the gate, which depends on it, queries a running server.
        self.release = k8s.helm.v3.Release(
            f"{name}-prometheus",
            name=PROMETHEUS_RELEASE,
            chart=PROMETHEUS_CHART,
            version=PROMETHEUS_CHART_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=PROMETHEUS_CHARTS),
            namespace=service.namespace,
            values=prometheus_values(service),
            skip_await=False,
            atomic=True,
            cleanup_on_fail=True,
            timeout=600,
            opts=k8s_opts(self, [self.ns, *args.mesh_ready]),
        )
        #: What a query of this Prometheus must wait for.
        self.ready: tuple[pulumi.Resource, ...] = (self.release,)
        self.register_outputs({})
