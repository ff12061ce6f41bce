"""Kubernetes core objects: names and labels, Deployments, StatefulSets, Jobs, Services, Secrets."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from sim.rules.core import EVERY_TYPE, CloudRejection, revealed, rule, whole

_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@rule(EVERY_TYPE)
def _kubernetes_names(inputs: dict[str, Any]) -> None:
    meta = inputs.get("metadata")
    if not isinstance(meta, dict):
        return
    for key in ("name", "namespace"):
        value = meta.get(key)
        if value is not None and (len(value) > 253 or not _DNS1123.match(value)):
            raise CloudRejection(f"metadata.{key} {value!r} is not a DNS-1123 name")
    for label, value in (meta.get("labels") or {}).items():
        if len(str(value)) > 63 or not re.match(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$", str(value)):
            raise CloudRejection(f"label {label}={value!r} is not a valid label value")


DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_IANA_SVC_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # <= 15 chars, a letter, no "--"
_QUANTITY = re.compile(r"^(?P<n>\d+(?:\.\d+)?)(?P<unit>m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
_QUANTITY_FACTOR = {None: 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20,
                    "Gi": 2**30, "Ti": 2**40}
# Istio's protocol selection reads the Service port name `<protocol>[-<suffix>]` (or appProtocol); anything else
# is routed as opaque TCP and the VirtualService's HTTP routes never match (istioctl analyze IST0118).
ISTIO_PROTOCOLS = ("http", "http2", "https", "grpc", "grpc-web", "tcp", "tls", "mongo", "mysql", "redis", "udp")


def _iana_port_name(value: str) -> bool:
    return len(value) <= 15 and "--" not in value and bool(_IANA_SVC_NAME.match(value))


def _quantity(value: Any) -> float:
    match = _QUANTITY.match(str(value))
    if not match:
        raise CloudRejection(f"resource quantity {value!r} is not a Kubernetes quantity")
    return float(match["n"]) * _QUANTITY_FACTOR[match["unit"]]


def _container(container: dict[str, Any]) -> None:
    cname = str(container.get("name") or "")
    if not DNS_LABEL.match(cname) or len(cname) > 63:
        raise CloudRejection(f"container name {cname!r} is not a DNS-1123 label")
    if not container.get("image"):
        raise CloudRejection(f"container {cname} has no image")
    port_names = set()
    for port in container.get("ports") or []:
        number = whole(port.get("containerPort"))
        if number is None or not 0 < number < 65536:
            raise CloudRejection(f"container {cname} port {number!r} is not 1 to 65535")
        if "name" in port:
            if not _iana_port_name(str(port["name"])):
                raise CloudRejection(f"container {cname} port name {port['name']!r} is not an IANA service name "
                                     "(<= 15 lowercase letters, digits, '-')")
            port_names.add(port["name"])
    for probe_key in ("startupProbe", "livenessProbe", "readinessProbe"):
        http_get = (container.get(probe_key) or {}).get("httpGet")
        if http_get and isinstance(http_get.get("port"), str) and http_get["port"] not in port_names:
            raise CloudRejection(f"container {cname} {probe_key} uses port {http_get['port']!r}, "
                                 f"which the container does not declare")
    for item in container.get("env") or []:
        if "=" in str(item.get("name", "=")) or not item.get("name"):
            raise CloudRejection(f"container {cname} env name {item.get('name')!r} is invalid")
        if "value" in item and not isinstance(item["value"], str):
            raise CloudRejection(f"container {cname} env {item['name']} must be a string, "
                                 f"got {type(item['value']).__name__}")
    requirements = container.get("resources") or {}
    requests, limits = requirements.get("requests") or {}, requirements.get("limits") or {}
    for key in set(requests) & set(limits):
        if _quantity(requests[key]) > _quantity(limits[key]):
            raise CloudRejection(f"container {cname} requests {key} {requests[key]} above its limit {limits[key]}")


@rule("kubernetes:apps/v1:Deployment")
def _deployment(inputs: dict[str, Any]) -> None:
    spec = inputs.get("spec") or {}
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not selector:
        raise CloudRejection("spec.selector.matchLabels is empty")
    mismatched = {k: v for k, v in selector.items() if labels.get(k) != v}
    if mismatched:
        raise CloudRejection(f"selector {selector} does not match template labels {labels}")
    replicas = whole(spec.get("replicas", 1))
    if replicas is None or replicas < 0:
        raise CloudRejection(f"replicas {replicas!r} must be a non-negative integer")
    _pod_spec(template.get("spec") or {})


@rule("kubernetes:core/v1:Service")
def _service(inputs: dict[str, Any]) -> None:
    spec = inputs.get("spec") or {}
    if spec.get("type", "ClusterIP") not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        raise CloudRejection(f"type {spec.get('type')!r}")
    ports = spec.get("ports") or []
    if not ports and spec.get("type") != "ExternalName":
        raise CloudRejection("a Service needs at least one port")
    port_names = [p.get("name") for p in ports]
    if len(ports) > 1 and (not all(port_names) or len(set(port_names)) != len(port_names)):
        raise CloudRejection(f"with several ports each needs a unique name, got {port_names}")
    for port in ports:
        number = whole(port.get("port"))
        target = port.get("targetPort", port.get("port"))
        if number is None or not 0 < number < 65536:
            raise CloudRejection(f"port {port.get('port')!r} is not 1 to 65535")
        if not isinstance(target, str) and not 0 < (whole(target) or 0) < 65536:
            raise CloudRejection(f"targetPort {target} is not 1 to 65535")
        if isinstance(target, str) and not _iana_port_name(target):
            raise CloudRejection(f"targetPort {target!r} is neither a number nor an IANA service name")
        port_name = port.get("name")
        if port_name is not None and (len(port_name) > 63 or not DNS_LABEL.match(port_name)):
            raise CloudRejection(f"port name {port_name!r} is not a DNS-1123 label")
        if not port.get("appProtocol") and not any(
                str(port_name or "") == p or str(port_name or "").startswith(p + "-") for p in ISTIO_PROTOCOLS):
            raise CloudRejection(f"port {number} name {port_name!r} does not declare its protocol "
                                 f"(<protocol>[-suffix] with one of {', '.join(ISTIO_PROTOCOLS)}, or appProtocol): "
                                 "Istio would route it as opaque TCP")


@rule("kubernetes:apps/v1:StatefulSet")
def _stateful_set(inputs: dict[str, Any]) -> None:
    spec = inputs.get("spec") or {}
    if not spec.get("serviceName"):
        raise CloudRejection("spec.serviceName is required (the governing Service)")
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not selector or any(labels.get(k) != v for k, v in selector.items()):
        raise CloudRejection(f"selector {selector} does not match template labels {labels}")
    pod = template.get("spec") or {}
    if not pod.get("containers"):
        raise CloudRejection("the pod template has no containers")
    volumes = {v.get("name") for v in pod.get("volumes") or []}
    volumes |= {(c.get("metadata") or {}).get("name") for c in spec.get("volumeClaimTemplates") or []}
    for container in pod["containers"]:
        _container(container)
        for mount in container.get("volumeMounts") or []:
            if mount.get("name") not in volumes:
                raise CloudRejection(f"container {container.get('name')} mounts unknown volume {mount.get('name')!r}")


#: etcd's object limit, which the API server enforces on a Secret's decoded data.
SECRET_MAX_BYTES = 1024 * 1024


@rule("kubernetes:core/v1:Secret")
def _k8s_secret(inputs: dict[str, Any]) -> None:
    size = 0
    for key, value in (revealed(inputs.get("data")) or {}).items():
        value = revealed(value)
        if not re.match(r"^[-._a-zA-Z0-9]+$", str(key)):
            raise CloudRejection(f"key {key!r} is not a valid Secret key")
        try:
            size += len(base64.b64decode(str(value), validate=True))
        except (binascii.Error, ValueError) as exc:
            raise CloudRejection(f"data.{key} is not base64 (use stringData for plain text): {exc}") from exc
    for key, value in (revealed(inputs.get("stringData")) or {}).items():
        value = revealed(value)
        if not re.match(r"^[-._a-zA-Z0-9]+$", str(key)):
            raise CloudRejection(f"key {key!r} is not a valid Secret key")
        if not isinstance(value, str):
            raise CloudRejection(f"stringData.{key} must be a string, got {type(value).__name__}")
        size += len(value.encode())
    if size > SECRET_MAX_BYTES:
        raise CloudRejection(f"data of {size} bytes is over the Secret limit of {SECRET_MAX_BYTES} bytes")


#: Job spec fields the API server refuses to change on an existing Job (`spec.template` and the selector are
#: immutable): a change needs a new Job, which Pulumi creates only if the object may be replaced under a new name.
JOB_IMMUTABLE = ("template", "selector", "completions", "completionMode", "podFailurePolicy")


def _pod_spec(pod: dict[str, Any]) -> None:
    """A pod template's spec: at least one container, unique names, each container valid, mounts of known volumes."""
    containers = pod.get("containers") or []
    if not containers:
        raise CloudRejection("the pod template has no containers")
    names = [c.get("name") for c in containers]
    if len(set(names)) != len(names):
        raise CloudRejection(f"duplicate container names {names}")
    volumes = {v.get("name") for v in pod.get("volumes") or []}
    for container in containers:
        _container(container)
        for mount in container.get("volumeMounts") or []:
            if mount.get("name") not in volumes:
                raise CloudRejection(f"container {container.get('name')} mounts unknown volume {mount.get('name')!r}")


@rule("kubernetes:batch/v1:Job")
def _job(inputs: dict[str, Any]) -> None:
    spec = inputs.get("spec") or {}
    pod = (spec.get("template") or {}).get("spec") or {}
    if pod.get("restartPolicy") not in ("Never", "OnFailure"):
        raise CloudRejection(f"spec.template.spec.restartPolicy {pod.get('restartPolicy')!r}: a Job's pods must be "
                             "Never or OnFailure (the default Always is refused)")
    if spec.get("selector") and not spec.get("manualSelector"):
        raise CloudRejection("spec.selector is generated for a Job; setting it needs manualSelector: true")
    for key in ("backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        if key in spec and ((value := whole(spec[key])) is None or value < (1 if key == "activeDeadlineSeconds"
                                                                              else 0)):
            raise CloudRejection(f"spec.{key} {spec[key]!r} must be a non-negative integer "
                                 f"({'positive' if key == 'activeDeadlineSeconds' else 'zero allowed'})")
    if (inputs.get("metadata") or {}).get("name"):
        raise CloudRejection(f"metadata.name is fixed: the immutable {', '.join(JOB_IMMUTABLE)} of a Job can only "
                             "change by replacing it, and a replacement under the same name must delete the old "
                             "Job first (leave the name to Pulumi)")
    _pod_spec(pod)


# The EBS CSI driver's volume types and its boolean parameters' spelling (strings, as StorageClass parameters are).
EBS_VOLUME_TYPES = {"gp2", "gp3", "io1", "io2", "sc1", "st1", "standard"}


@rule("kubernetes:storage.k8s.io/v1:StorageClass")
def _storage_class(inputs: dict[str, Any]) -> None:
    provisioner = str(inputs.get("provisioner") or "")
    if not provisioner:
        raise CloudRejection("provisioner is required")
    if provisioner == "kubernetes.io/aws-ebs":
        raise CloudRejection("the in-tree kubernetes.io/aws-ebs provisioner is gone (EKS 1.23+ provisions EBS "
                             "through ebs.csi.aws.com)")
    if inputs.get("volumeBindingMode", "Immediate") not in ("Immediate", "WaitForFirstConsumer"):
        raise CloudRejection(f"volumeBindingMode {inputs.get('volumeBindingMode')!r}")
    if inputs.get("reclaimPolicy", "Delete") not in ("Delete", "Retain"):
        raise CloudRejection(f"reclaimPolicy {inputs.get('reclaimPolicy')!r} is not Delete or Retain")
    parameters = inputs.get("parameters") or {}
    for key, value in parameters.items():
        if not isinstance(value, str):
            raise CloudRejection(f"parameters.{key} must be a string, got {type(value).__name__}")
    if provisioner == "ebs.csi.aws.com":
        if parameters.get("type", "gp3") not in EBS_VOLUME_TYPES:
            raise CloudRejection(f"parameters.type {parameters.get('type')!r} is not an EBS volume type")
        if parameters.get("encrypted", "false") not in ("true", "false"):
            raise CloudRejection(f"parameters.encrypted {parameters.get('encrypted')!r} is not \"true\" or \"false\"")
