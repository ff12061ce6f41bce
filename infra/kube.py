"""Kubernetes building blocks every workload of this project shares (the canary app, the shop services).

Pure functions returning plain dicts in the Kubernetes API's camelCase shape, so the recorded graph holds
exactly what the API server receives and the local twin reads probes, env and ports from the same inputs.
The one non-pure helper, `k8s_opts`, makes the explicit provider impossible to forget.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi

#: The UID/GID every service image runs as (`useradd --uid 10001` in each services/<name>/Dockerfile).
APP_UID = 10001

#: Any type of the kubernetes package: what `Resource.get_provider` looks a package's provider up by.
KUBERNETES_TYPE = "kubernetes:core/v1:Namespace"

#: Sidecar injection for a namespace (istiod's mutating webhook matches this label).
ISTIO_INJECTION = {"istio-injection": "enabled"}


def k8s_opts(
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
    **extra: Any,
) -> pulumi.ResourceOptions:
    """Options for a Kubernetes child: the provider its component was given through `opts`, bound explicitly.

    Components receive the Kubernetes provider as `ResourceOptions(providers=[...])` and pass it to their children by
    `parent=self`; naming it again here binds each resource to it even if a parent in between had none, and a
    component built without one fails now instead of deploying with whatever kubeconfig is ambient.
    """
    provider = parent.get_provider(KUBERNETES_TYPE)
    if provider is None:
        raise ValueError(f"{parent.pulumi_resource_name}: no Kubernetes provider in its options; pass "
                         "ResourceOptions(providers=[platform.provider]) to the component")
    return pulumi.ResourceOptions(provider=provider, parent=parent, depends_on=list(depends_on), **extra)


def pod_security_context(uid: int = APP_UID) -> dict[str, Any]:
    """Pod-level half of the `restricted` Pod Security Standard."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_security_context(uid: int = APP_UID) -> dict[str, Any]:
    """Container-level half of the `restricted` Pod Security Standard, plus a read-only root filesystem."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def http_probe(
    path: str,
    port: int | str = "http",
    *,
    period_seconds: int = 10,
    failure_threshold: int = 3,
    initial_delay_seconds: int = 0,
    timeout_seconds: int = 2,
) -> dict[str, Any]:
    """An HTTP GET probe on a named container port (the name survives a port change)."""
    return {
        "httpGet": {"path": path, "port": port, "scheme": "HTTP"},
        "periodSeconds": period_seconds,
        "failureThreshold": failure_threshold,
        "initialDelaySeconds": initial_delay_seconds,
        "timeoutSeconds": timeout_seconds,
    }


def probes(health_path: str = "/health", ready_path: str = "/ready", port: int | str = "http") -> dict[str, Any]:
    """Startup, liveness and readiness probes: liveness on the process, readiness on its dependencies.

    The startup probe gives a slow first start 60 s before liveness may restart the container.
    """
    return {
        "startupProbe": http_probe(health_path, port, period_seconds=2, failure_threshold=30),
        "livenessProbe": http_probe(health_path, port, period_seconds=10, failure_threshold=3),
        "readinessProbe": http_probe(ready_path, port, period_seconds=5, failure_threshold=2),
    }


def resources(
    *, cpu_request: str = "50m", memory_request: str = "64Mi", cpu_limit: str = "500m", memory_limit: str = "256Mi"
) -> dict[str, Any]:
    """Requests the scheduler reserves and limits the kubelet enforces."""
    return {
        "requests": {"cpu": cpu_request, "memory": memory_request},
        "limits": {"cpu": cpu_limit, "memory": memory_limit},
    }


def env_list(env: Mapping[str, pulumi.Input[str]]) -> list[dict[str, Any]]:
    """`{"NAME": value}` as the container `env` list, sorted so diffs stay stable."""
    return [{"name": key, "value": env[key]} for key in sorted(env)]


TMP_VOLUME = "tmp"


def service_container(
    *,
    name: str,
    image: pulumi.Input[str],
    env: Mapping[str, pulumi.Input[str]],
    port: int = 8080,
    port_name: str = "http",
    resource_requirements: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A service container: named port, env, probes, resources, restricted context, writable /tmp only."""
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": port_name, "containerPort": port, "protocol": "TCP"}],
        "env": env_list(env),
        **probes(port=port_name),
        "resources": resource_requirements or resources(),
        "securityContext": restricted_security_context(),
        # readOnlyRootFilesystem: the only writable path is an in-memory /tmp (Python's tempfile needs one).
        "volumeMounts": [{"name": TMP_VOLUME, "mountPath": "/tmp"}],
    }


def pod_spec(container: dict[str, Any], *, service_account: str) -> dict[str, Any]:
    """A pod of one service container under its own service account (its mesh identity)."""
    return {
        "serviceAccountName": service_account,
        # The app never calls the Kubernetes API; Istio's sidecar mounts its own projected token.
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(),
        "terminationGracePeriodSeconds": 30,
        "containers": [container],
        "volumes": [{"name": TMP_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}],
    }


def zero_downtime_strategy() -> dict[str, Any]:
    """Roll one new pod in before an old one leaves, so a version never drops below its replica count."""
    return {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}


def deployment_spec(*, labels: Mapping[str, str], replicas: int, container: dict[str, Any],
                    service_account: str) -> dict[str, Any]:
    """A meshed Deployment's spec: zero-downtime rollouts, and the app held until its sidecar carries traffic
    (it must not serve, or connect to its database, before the proxy is up)."""
    return {
        "replicas": replicas,
        "revisionHistoryLimit": 3,
        "selector": {"matchLabels": dict(labels)},
        "strategy": zero_downtime_strategy(),
        "template": {
            "metadata": {
                "labels": dict(labels),
                "annotations": {"proxy.istio.io/config": '{"holdApplicationUntilProxyStarts": true}',
                                "kubectl.kubernetes.io/default-container": container["name"]},
            },
            "spec": pod_spec(container, service_account=service_account),
        },
    }


def image_ref(repository: pulumi.Input[str], tag: str) -> pulumi.Output[str]:
    """`<repository>:<tag>`, the only way images are referenced."""
    return pulumi.Output.concat(repository, ":", tag)
