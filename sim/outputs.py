"""The mock provider's answers: per resource type, the id and outputs AWS or Kubernetes would return.

Outputs are the inputs plus what the provider computes (ARNs, URLs, autonamed physical names), deterministic so
the twin finds the same names after a restart. Outputs for a new type are one `@outputs("<type token>")` function
of the `Registration`, returning `(id, outputs)`; unlisted Kubernetes types get the object defaults and other
unlisted types a generic ARN. `Resource.get(...)` reads of live objects are answered by `@reads` functions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from infra.config import PROJECT_DIR
from sim.account import ACCOUNT_ID, arn, suffix

Answer = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Registration:
    """One resource as the engine hands it to the provider."""

    type: str
    name: str
    inputs: dict[str, Any]
    region: str

    @property
    def auto(self) -> str:
        """Pulumi's autoname: the logical name plus a (here deterministic) suffix."""
        return f"{self.name}-{suffix(self.type + '::' + self.name)}"

    @property
    def physical_name(self) -> str:
        """The `name` input, or the autoname when the program leaves it to Pulumi."""
        return self.inputs.get("name") or self.auto  # type: ignore[no-any-return]

    def arn(self, service: str, resource: str) -> str:
        return arn(service, self.region, resource)


Provider = Callable[[Registration], Answer]
_BY_TYPE: dict[str, Provider] = {}
Reader = Callable[[str, str], Answer]
_READS: dict[str, Reader] = {}


def outputs(*type_tokens: str) -> Callable[[Provider], Provider]:
    def register(fn: Provider) -> Provider:
        for token in type_tokens:
            _BY_TYPE[token] = fn
        return fn

    return register


def reads(type_token: str) -> Callable[[Reader], Reader]:
    def register(fn: Reader) -> Reader:
        _READS[type_token] = fn
        return fn

    return register


def answer(registration: Registration) -> Answer:
    """The (id, outputs) the provider returns for a new resource."""
    provider = _BY_TYPE.get(registration.type)
    if provider is None:
        provider = _kubernetes_object if registration.type.startswith("kubernetes:") else _generic
    return provider(registration)


def read(type_token: str, name: str, resource_id: str, region: str) -> Answer:
    """What a `Resource.get(...)` read of the live object `resource_id` returns."""
    reader = _READS.get(type_token)
    if reader is None:
        raise NotImplementedError(f"the recording mock reads no {type_token} ({name}); add it in sim/outputs.py")
    return reader(resource_id, region)


def _generic(r: Registration) -> Answer:
    """A type no function lists: its inputs, an ARN under the type's service, an AWS `name` input autonamed."""
    out = dict(r.inputs)
    if "arn" not in out:
        out["arn"] = r.arn(r.type.split(":")[1].split("/")[0], f"{r.name}/{suffix(r.auto)}")
    if r.type.startswith("aws:") and "name" in out:
        out["name"] = r.physical_name
    return f"{r.name}-{suffix(r.auto)}", out


# --- Kubernetes ---------------------------------------------------------------------------------------------
def _kubernetes_object(r: Registration) -> Answer:
    """Any Kubernetes object: `metadata.name` autonamed as Pulumi does, the id `namespace/name` (or `name`).
    A Kubernetes type listed here starts from this answer."""
    meta = dict(r.inputs.get("metadata") or {})
    meta.setdefault("name", r.auto)
    rid = f"{meta.get('namespace', 'default')}/{meta['name']}" if meta.get("namespace") else meta["name"]
    return rid, {**r.inputs, "metadata": meta}


def _load_balancer_status(obj_name: str, seed: str, region: str) -> dict[str, Any]:
    host = f"{obj_name}-{suffix(seed)}.elb.{region}.amazonaws.com"
    return {"loadBalancer": {"ingress": [{"hostname": host}]}}


@outputs("kubernetes:core/v1:Service")
def _service(r: Registration) -> Answer:
    rid, out = _kubernetes_object(r)
    if (out.get("spec") or {}).get("type") == "LoadBalancer":
        out["status"] = _load_balancer_status(out["metadata"]["name"], r.auto, r.region)
    return rid, out


@reads("kubernetes:core/v1:Service")
def _read_service(resource_id: str, region: str) -> Answer:
    # The program reads one live object: the Service the Istio gateway chart creates, for its load balancer.
    namespace, _, obj_name = resource_id.rpartition("/")
    return resource_id, {"metadata": {"name": obj_name, "namespace": namespace or "default"},
                         "spec": {"type": "LoadBalancer"},
                         "status": _load_balancer_status(obj_name, resource_id, region)}


@outputs("kubernetes:helm.sh/v3:Release")
def _helm_release(r: Registration) -> Answer:
    rid, out = _kubernetes_object(r)
    out.setdefault("name", r.auto)
    out["status"] = {"name": out["name"], "namespace": out.get("namespace", "default"),
                     "status": "deployed", "version": out.get("version")}
    return rid, out


# --- S3, IAM ------------------------------------------------------------------------------------------------
@outputs("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
def _bucket(r: Registration) -> Answer:
    bucket = r.inputs.get("bucket") or r.auto.lower()
    return bucket, {**r.inputs, "bucket": bucket, "arn": f"arn:aws:s3:::{bucket}",
                    "bucketRegionalDomainName": f"{bucket}.s3.{r.region}.amazonaws.com"}


@outputs("aws:iam/role:Role")
def _role(r: Registration) -> Answer:
    name = r.physical_name
    return name, {**r.inputs, "name": name, "arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{name}"}


@outputs("aws:iam/policy:Policy")
def _policy(r: Registration) -> Answer:
    name = r.physical_name
    policy_arn = f"arn:aws:iam::{ACCOUNT_ID}:policy/{name}"
    return policy_arn, {**r.inputs, "name": name, "arn": policy_arn}


@outputs("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
def _oidc_provider(r: Registration) -> Answer:
    host = str(r.inputs.get("url", "")).removeprefix("https://")
    provider_arn = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{host}"
    return provider_arn, {**r.inputs, "arn": provider_arn}


# --- Lambda, DynamoDB, logs, SQS, Secrets Manager -----------------------------------------------------------
@outputs("aws:lambda/function:Function")
def _function(r: Registration) -> Answer:
    name = r.physical_name
    fn_arn = r.arn("lambda", f"function:{name}")
    invoke = f"arn:aws:apigateway:{r.region}:lambda:path/2015-03-31/functions/{fn_arn}/invocations"
    return name, {**r.inputs, "name": name, "arn": fn_arn, "qualifiedArn": f"{fn_arn}:$LATEST",
                  "version": "$LATEST", "invokeArn": invoke}


@outputs("aws:lambda/layerVersion:LayerVersion")
def _layer_version(r: Registration) -> Answer:
    layer = r.inputs.get("layerName") or r.auto
    version_arn = r.arn("lambda", f"layer:{layer}:1")
    return version_arn, {**r.inputs, "arn": version_arn, "version": "1", "layerArn": r.arn("lambda", f"layer:{layer}")}


@outputs("aws:dynamodb/table:Table")
def _table(r: Registration) -> Answer:
    name = r.physical_name
    return name, {**r.inputs, "name": name, "arn": r.arn("dynamodb", f"table/{name}")}


@outputs("aws:cloudwatch/logGroup:LogGroup")
def _log_group(r: Registration) -> Answer:
    name = r.physical_name
    return name, {**r.inputs, "name": name, "arn": r.arn("logs", f"log-group:{name}")}


@outputs("aws:sqs/queue:Queue")
def _queue(r: Registration) -> Answer:
    name = r.physical_name
    url = f"https://sqs.{r.region}.amazonaws.com/{ACCOUNT_ID}/{name}"
    return url, {**r.inputs, "name": name, "arn": r.arn("sqs", name), "url": url}


@outputs("aws:secretsmanager/secret:Secret")
def _secret(r: Registration) -> Answer:
    name = r.physical_name
    secret_arn = r.arn("secretsmanager", f"secret:{name}-AbCdEf")
    return secret_arn, {**r.inputs, "name": name, "arn": secret_arn}


# --- API Gateway --------------------------------------------------------------------------------------------
@outputs("aws:apigateway/restApi:RestApi")
def _rest_api(r: Registration) -> Answer:
    api_id = suffix(r.auto) + "abc"
    return api_id, {**r.inputs, "name": r.physical_name, "rootResourceId": f"{api_id}root",
                    "executionArn": r.arn("execute-api", api_id)}


@outputs("aws:apigateway/stage:Stage")
def _stage(r: Registration) -> Answer:
    api, stage = str(r.inputs.get("restApi")), str(r.inputs.get("stageName"))
    return f"ags-{api}-{stage}", {**r.inputs,
                                  "invokeUrl": f"https://{api}.execute-api.{r.region}.amazonaws.com/{stage}",
                                  "executionArn": r.arn("execute-api", f"{api}/{stage}")}


# --- ECR, EKS, EC2 ------------------------------------------------------------------------------------------
@outputs("aws:ecr/repository:Repository")
def _repository(r: Registration) -> Answer:
    name = r.physical_name
    return name, {**r.inputs, "name": name, "arn": r.arn("ecr", f"repository/{name}"), "registryId": ACCOUNT_ID,
                  "repositoryUrl": f"{ACCOUNT_ID}.dkr.ecr.{r.region}.amazonaws.com/{name}"}


@outputs("aws:ec2/vpc:Vpc")
def _vpc(r: Registration) -> Answer:
    """AWS creates every VPC with a `default` security group; VPC functions move their ENIs to it on destroy.
    Id and ARN as the generic answer gives them."""
    rid, out = _generic(r)
    return rid, {**out, "defaultSecurityGroupId": f"sg-{suffix(r.auto + 'default')}"}


@outputs("aws:eks/addon:Addon")
def _eks_addon(r: Registration) -> Answer:
    cluster, addon = str(r.inputs.get("clusterName")), str(r.inputs.get("addonName"))
    return f"{cluster}:{addon}", {**r.inputs, "arn": r.arn("eks", f"addon/{cluster}/{addon}/{suffix(r.auto)}")}


@outputs("aws:eks/cluster:Cluster")
def _cluster(r: Registration) -> Answer:
    name, seed = r.physical_name, suffix(r.auto)
    vpc_config = {**(r.inputs.get("vpcConfig") or {}), "clusterSecurityGroupId": f"sg-{seed}",
                  "vpcId": f"vpc-{suffix(r.auto + 'vpc')}"}
    return name, {**r.inputs, "name": name, "arn": r.arn("eks", f"cluster/{name}"),
                  "endpoint": f"https://{seed.upper()}.gr7.{r.region}.eks.amazonaws.com",
                  "certificateAuthority": {"data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="},
                  "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{r.region}.amazonaws.com/id/{seed}"}]}],
                  "version": r.inputs.get("version"), "vpcConfig": vpc_config}


@outputs("aws:ec2/vpcEndpoint:VpcEndpoint")
def _vpc_endpoint(r: Registration) -> Answer:
    # A gateway endpoint's routes target the service's managed prefix list.
    seed = suffix(r.auto)
    return f"vpce-{seed}", {**r.inputs, "prefixListId": f"pl-{seed}",
                            "arn": r.arn("ec2", f"vpc-endpoint/vpce-{seed}")}


@outputs("aws:ec2/launchTemplate:LaunchTemplate")
def _launch_template(r: Registration) -> Answer:
    template_id = f"lt-{suffix(r.auto)}"
    return template_id, {**r.inputs, "name": r.physical_name, "latestVersion": 1, "defaultVersion": 1,
                         "arn": r.arn("ec2", f"launch-template/{template_id}")}


# --- RDS ----------------------------------------------------------------------------------------------------
@outputs("aws:rds/subnetGroup:SubnetGroup")
def _db_subnet_group(r: Registration) -> Answer:
    group = r.physical_name.lower()  # RDS lowercases subnet group names
    return group, {**r.inputs, "name": group, "arn": r.arn("rds", f"subgrp:{group}")}


@outputs("aws:rds/instance:Instance")
def _db_instance(r: Registration) -> Answer:
    ident = r.inputs.get("identifier") or r.auto
    address = f"{ident}.abc123.{r.region}.rds.amazonaws.com"
    return ident, {**r.inputs, "identifier": ident, "address": address, "endpoint": f"{address}:5432",
                   "port": r.inputs.get("port") or 5432, "arn": r.arn("rds", f"db:{ident}")}


# --- Container images (docker-build) -----------------------------------------------------------------------
@outputs("docker-build:index:Image")
def _docker_image(r: Registration) -> Answer:
    """What docker-build's Image returns after a push: `contextHash`, the pushed manifest's `digest` (also the
    id), and `ref`, the first tag with the digest appended (`repo:tag@sha256:...`, the provider's `addDigest`).

    The digest is a function of everything that would change the bytes (the tags carry the content hash), so
    the same inputs give the same digest in every capture and a changed file a new one.
    """
    inputs = r.inputs
    context = (inputs.get("context") or {}).get("location", ".")
    dockerfile = (inputs.get("dockerfile") or {}).get("location") or f"{context}/Dockerfile"
    path = PROJECT_DIR / dockerfile
    dockerfile_bytes = path.read_bytes() if path.is_file() else b""
    context_hash = hashlib.sha256(f"{context}\0{dockerfile}\0".encode() + dockerfile_bytes).hexdigest()
    recipe = {key: inputs.get(key) for key in ("tags", "platforms", "buildArgs", "target")}
    digest = "sha256:" + hashlib.sha256(json.dumps([context_hash, recipe], sort_keys=True).encode()).hexdigest()
    tags = [str(t) for t in inputs.get("tags") or []]
    out = {**inputs, "contextHash": context_hash}
    if not inputs.get("push"):
        # Not exported: no digest, and `ref` is just a tag (or empty).
        return r.name, {**out, "digest": "", "ref": tags[0] if tags else ""}
    return digest, {**out, "digest": digest, "ref": f"{tags[0]}@{digest}"}


# --- TLS ----------------------------------------------------------------------------------------------------
@outputs("tls:index/privateKey:PrivateKey")
def _private_key(r: Registration) -> Answer:
    """A real key (the twin signs and verifies with it), derived from the resource's name so every capture of the
    same stack holds the same key: a config change re-captures the graph without rotating it under the twin."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    if r.inputs.get("algorithm") != "ECDSA" or r.inputs.get("ecdsaCurve") != "P256":
        raise NotImplementedError(f"the recording mock makes only ECDSA P256 keys, not {r.inputs} ({r.name})")
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # P-256's group order
    seed = int.from_bytes(hashlib.sha256(f"tls-key::{r.name}::{PROJECT_DIR}".encode()).digest(), "big")
    key = ec.derive_private_key(seed % (order - 1) + 1, ec.SECP256R1())
    pem = serialization.Encoding.PEM
    public = key.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return f"{r.name}-{suffix(r.auto)}", {
        **r.inputs,
        "privateKeyPem": key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()).decode(),
        "privateKeyPemPkcs8": key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()).decode(),
        "publicKeyPem": public,
    }


# --- Random -------------------------------------------------------------------------------------------------
@outputs("random:index/randomPassword:RandomPassword")
def _random_password(r: Registration) -> Answer:
    """A password of the requested length from the requested classes, derived from the resource's name (as the TLS
    key is), so every capture of the same stack holds the same one and a restarted twin's roles still log in."""
    length = int(r.inputs.get("length") or 0)
    if length < 1:
        raise NotImplementedError(f"a RandomPassword needs a positive length ({r.name})")
    alphabet = ""
    for key, chars in (("lower", "abcdefghijklmnopqrstuvwxyz"), ("upper", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
                       ("numeric", "0123456789"), ("special", "!@#$%&*()-_=+[]{}<>:?")):
        if r.inputs.get(key, True) is not False:
            alphabet += chars
    stream = hashlib.sha256(f"random-password::{r.name}::{PROJECT_DIR}".encode()).digest()
    while len(stream) < length:
        stream += hashlib.sha256(stream).digest()
    result = "".join(alphabet[b % len(alphabet)] for b in stream[:length])
    return "none", {**r.inputs, "result": result, "bcryptHash": ""}


# --- The canary gate (a Pulumi dynamic resource) ---------------------------------------------------------------
@outputs("pulumi-python:dynamic/canary:CanaryGate")
def _canary_gate(r: Registration) -> Answer:
    """What `infra.gate.CanaryGateProvider.create` returns: the approved weight and why, never the kubeconfig. Under
    the mocks nothing is judged (there is no Prometheus), so the decision says so."""
    weight = r.inputs.get("weight")
    return f"{r.inputs.get('namespace')}/{r.inputs.get('workload')}", {
        "weight": weight, "decision": f"canaryWeight {weight}: not judged (recorded under the mocks)"}
