"""The graph's Kubernetes objects as a kubelet reads them: Secrets (base64 `data` and `stringData`), ConfigMaps,
a container env entry's value (literal or `valueFrom` a Secret / ConfigMap key), and a container's whole env with
the graph's identifiers translated to the twin's. The PostgreSQL engine reads the in-cluster database's env and the
bootstrap Job's with it, the services engine every Deployment's."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from local.errors import DeployError
from local.facts import translate
from sim.capture import Graph

K8S_SERVICE = "kubernetes:core/v1:Service"
K8S_SECRET = "kubernetes:core/v1:Secret"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"


def k8s_secrets(graph: Graph) -> dict[tuple[str, str], dict[str, str]]:
    """`(namespace, name) -> {key: value}` of every Kubernetes Secret (`stringData` over base64 `data`)."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    for res in graph.of_type(K8S_SECRET):
        meta = res.inputs.get("metadata") or {}
        values = {k: base64.b64decode(str(v)).decode() for k, v in (res.inputs.get("data") or {}).items()}
        values.update({k: str(v) for k, v in (res.inputs.get("stringData") or {}).items()})
        out[(str(meta.get("namespace") or "default"), str(meta.get("name")))] = values
    return out


def env_value(entry: dict[str, Any], namespace: str, secrets: dict[tuple[str, str], dict[str, str]],
              config_maps: dict[tuple[str, str], dict[str, str]], where: str) -> str | None:
    """A container env entry's value: literal, or `valueFrom` a Secret / ConfigMap key (None if optional and absent)."""
    if "value" in entry:
        return str(entry["value"])
    source = entry.get("valueFrom") or {}
    for kind, table in (("secretKeyRef", secrets), ("configMapKeyRef", config_maps)):
        ref = source.get(kind)
        if ref is None:
            continue
        values = table.get((namespace, str(ref.get("name"))))
        if values is None or str(ref.get("key")) not in values:
            if ref.get("optional"):
                return None
            raise DeployError(f"{where}: env {entry.get('name')} reads {kind} {ref.get('name')}/{ref.get('key')}, "
                              f"which no {kind.removesuffix('KeyRef')} in namespace {namespace} of the graph holds")
        return values[str(ref.get("key"))]
    if not source:
        return ""
    raise DeployError(f"{where}: env {entry.get('name')} uses {sorted(source)}, which the twin does not resolve")


def config_maps(graph: Graph) -> dict[tuple[str, str], dict[str, str]]:
    """`(namespace, name) -> {key: value}` of every Kubernetes ConfigMap (`data`)."""
    return {(str((r.inputs.get("metadata") or {}).get("namespace") or "default"),
             str((r.inputs.get("metadata") or {}).get("name"))): {k: str(v) for k, v in
                                                                   (r.inputs.get("data") or {}).items()}
            for r in graph.of_type(CONFIG_MAP)}


def pair_translate(env: dict[str, str], translations: Mapping[str, str]) -> dict[str, str]:
    """`X_HOST`/`X_PORT` translated as one `host:port` (a port alone is just a number; only the pair says which)."""
    out = dict(env)
    for key in env:
        if not key.endswith("_HOST"):
            continue
        port_key = key.removesuffix("_HOST") + "_PORT"
        if port_key not in env:
            continue
        pair = f"{env[key]}:{env[port_key]}"
        translated = translate(pair, translations)
        if translated != pair and translated.count(":") == 1:
            out[key], out[port_key] = translated.split(":")
    return out


def container_env(container: dict[str, Any], namespace: str, secrets: dict[tuple[str, str], dict[str, str]],
                  config_maps: dict[tuple[str, str], dict[str, str]], translations: Mapping[str, str],
                  where: str) -> dict[str, str]:
    """A container's environment as its process sees it: `envFrom`, then `env` (which wins), then translated."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        for kind, table in (("secretRef", secrets), ("configMapRef", config_maps)):
            ref = source.get(kind)
            if ref is not None:
                values = table.get((namespace, str(ref.get("name"))))
                if values is None and not ref.get("optional"):
                    raise DeployError(f"{where}: envFrom {kind} {ref.get('name')} is not in the graph")
                env.update({str(source.get("prefix") or "") + k: v for k, v in (values or {}).items()})
    for entry in container.get("env") or []:
        value = env_value(entry, namespace, secrets, config_maps, where)
        if value is not None:
            env[str(entry["name"])] = value
    env = pair_translate(env, translations)
    return {k: translate(v, translations) for k, v in env.items()}
