"""Run the Pulumi program under the SDK's mocks and capture its resource graph.

One recording mock serves the unit tests (`tests/infra/`) and the local twin (`local/`): every resource's type,
name, inputs, parent, dependencies and protect flag, with Outputs resolved, plus the stack's exports. The mock
plays the provider's part too: it computes the outputs AWS and Kubernetes would (ARNs, URLs, autonamed physical
names, deterministic so the twin finds the same names after a restart) and rejects inputs the real APIs would
reject (`infra.cloudrules`), so a wiring bug fails here rather than at `pulumi up`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

from infra import cloudrules
from infra.config import PROJECT, ConfigError, ConfigValues

ACCOUNT_ID = "123456789012"


@dataclass
class Resource:
    """One registered resource as the engine saw it (inputs) and as the mock provider answered (outputs)."""

    urn: str
    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    id: str
    parent: str | None
    custom: bool
    provider: str | None
    dependencies: list[str] = field(default_factory=list)
    protect: bool = False
    retain_on_delete: bool = False
    secret_paths: list[str] = field(default_factory=list)
    """Input paths (`a.b[0].c`) the engine received marked secret (encrypted in the state); `inputs` holds them
    unwrapped. A secret inside a map or list marks the whole map or list."""

    @property
    def physical_name(self) -> str:
        return str(self.outputs.get("name") or self.outputs.get("bucket") or self.id)


@dataclass
class Graph:
    """Everything one run of the program registered, in registration order, and the stack's exports."""

    resources: list[Resource]
    exports: dict[str, Any]
    region: str

    def of_type(self, type_token: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name: str | None = None) -> Resource:
        found = [r for r in self.of_type(type_token) if name is None or r.name == name]
        if len(found) != 1:
            raise LookupError(f"expected one {type_token} named {name!r}, found {[r.name for r in found]}")
        return found[0]

    def by_urn(self, urn: str) -> Resource:
        for resource in self.resources:
            if resource.urn == urn:
                return resource
        raise LookupError(urn)

    def children(self, parent: Resource) -> Iterator[Resource]:
        return (r for r in self.resources if r.parent == parent.urn)

    def find_by_output(self, key: str, value: Any) -> Resource:
        for resource in self.resources:
            if resource.outputs.get(key) == value:
                return resource
        raise LookupError(f"no resource with {key}={value!r}")


def _suffix(seed: str) -> str:
    # Pulumi autonames with 7 random hex characters; a hash keeps the twin's names stable across runs.
    return hashlib.sha256(seed.encode()).hexdigest()[:7]


def _arn(service: str, region: str, resource: str) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{resource}"


class RecordingMocks(pulumi.runtime.Mocks):
    """Answers resource registrations and invokes as AWS/Kubernetes would, and validates inputs."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.answers: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        if args.resource_id and not inputs:  # a `Resource.get(...)` read of a live object, not a registration
            return self._read(args.typ, args.name, str(args.resource_id))
        cloudrules.check(args.typ, args.name, inputs)
        resource_id, outputs = self._outputs(args.typ, args.name, inputs)
        self.answers[(args.typ, args.name)] = (resource_id, outputs)
        return resource_id, outputs

    def _read(self, typ: str, name: str, resource_id: str) -> tuple[str, dict[str, Any]]:
        """What a read of a live object returns. The program reads one kind: the Service the Istio gateway chart
        creates (a LoadBalancer), for the load balancer's hostname."""
        if typ == "kubernetes:core/v1:Service":
            namespace, _, obj_name = resource_id.rpartition("/")
            host = f"{obj_name}-{_suffix(resource_id)}.elb.{self.region}.amazonaws.com"
            return resource_id, {"metadata": {"name": obj_name, "namespace": namespace or "default"},
                                 "spec": {"type": "LoadBalancer"},
                                 "status": {"loadBalancer": {"ingress": [{"hostname": host}]}}}
        raise NotImplementedError(f"the recording mock reads no {typ} ({name}); add it in infra/graph.py")

    def _outputs(self, typ: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        region = self.region
        out = dict(inputs)
        auto = f"{name}-{_suffix(typ + '::' + name)}"
        rid = f"{name}-id"
        if typ.startswith("kubernetes:"):
            meta = dict(out.get("metadata") or {})
            meta.setdefault("name", auto)
            out["metadata"] = meta
            rid = f"{meta.get('namespace', 'default')}/{meta['name']}" if meta.get("namespace") else meta["name"]
            if typ == "kubernetes:core/v1:Service" and (out.get("spec") or {}).get("type") == "LoadBalancer":
                host = f"{meta['name']}-{_suffix(auto)}.elb.{region}.amazonaws.com"
                out["status"] = {"loadBalancer": {"ingress": [{"hostname": host}]}}
            if typ == "kubernetes:helm.sh/v3:Release":
                out.setdefault("name", auto)
                out["status"] = {"name": out["name"], "namespace": out.get("namespace", "default"),
                                 "status": "deployed", "version": out.get("version")}
            return rid, out
        if typ == "aws:s3/bucket:Bucket" or typ == "aws:s3/bucketV2:BucketV2":
            bucket = out.get("bucket") or auto.lower()
            out.update(bucket=bucket, arn=f"arn:aws:s3:::{bucket}",
                       bucketRegionalDomainName=f"{bucket}.s3.{region}.amazonaws.com")
            return bucket, out
        name_value = out.get("name") or auto
        # [deploy-rehearsal block] outputs of the EKS add-on and the VPC's default group: see `_rehearsal_outputs`.
        rehearsal = _rehearsal_outputs(typ, name, out, auto, region)
        if rehearsal is not None:
            return rehearsal
        if typ == "aws:iam/role:Role":
            out.update(name=name_value, arn=f"arn:aws:iam::{ACCOUNT_ID}:role/{name_value}")
            return name_value, out
        if typ == "aws:iam/policy:Policy":
            out.update(name=name_value, arn=f"arn:aws:iam::{ACCOUNT_ID}:policy/{name_value}")
            return out["arn"], out
        if typ == "aws:lambda/function:Function":
            arn = _arn("lambda", region, f"function:{name_value}")
            out.update(name=name_value, arn=arn, qualifiedArn=f"{arn}:$LATEST", version="$LATEST",
                       invokeArn=f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations")
            return name_value, out
        if typ == "aws:lambda/layerVersion:LayerVersion":
            layer = out.get("layerName") or auto
            out.update(arn=_arn("lambda", region, f"layer:{layer}:1"), version="1",
                       layerArn=_arn("lambda", region, f"layer:{layer}"))
            return out["arn"], out
        if typ == "aws:dynamodb/table:Table":
            out.update(name=name_value, arn=_arn("dynamodb", region, f"table/{name_value}"))
            return name_value, out
        if typ == "aws:cloudwatch/logGroup:LogGroup":
            out.update(name=name_value, arn=_arn("logs", region, f"log-group:{name_value}"))
            return name_value, out
        if typ == "aws:sqs/queue:Queue":
            out.update(name=name_value, arn=_arn("sqs", region, name_value),
                       url=f"https://sqs.{region}.amazonaws.com/{ACCOUNT_ID}/{name_value}")
            return out["url"], out
        if typ == "aws:secretsmanager/secret:Secret":
            out.update(name=name_value, arn=_arn("secretsmanager", region, f"secret:{name_value}-AbCdEf"))
            return out["arn"], out
        if typ == "aws:apigateway/restApi:RestApi":
            api_id = _suffix(auto) + "abc"
            out.update(name=name_value, rootResourceId=f"{api_id}root",
                       executionArn=_arn("execute-api", region, api_id))
            return api_id, out
        if typ == "aws:apigateway/stage:Stage":
            stage_api, stage = str(out.get("restApi")), str(out.get("stageName"))
            out["invokeUrl"] = f"https://{stage_api}.execute-api.{region}.amazonaws.com/{stage}"
            out["executionArn"] = _arn("execute-api", region, f"{stage_api}/{stage}")
            return f"ags-{stage_api}-{stage}", out
        if typ == "aws:ecr/repository:Repository":
            out.update(name=name_value, arn=_arn("ecr", region, f"repository/{name_value}"),
                       repositoryUrl=f"{ACCOUNT_ID}.dkr.ecr.{region}.amazonaws.com/{name_value}")
            return name_value, out
        if typ == "aws:eks/cluster:Cluster":
            out.update(name=name_value, arn=_arn("eks", region, f"cluster/{name_value}"),
                       endpoint=f"https://{_suffix(auto).upper()}.gr7.{region}.eks.amazonaws.com",
                       certificateAuthority={"data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="},
                       identities=[{"oidcs": [{"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/{_suffix(auto)}"}]}],
                       version=out.get("version"))
            out["vpcConfig"] = {**(out.get("vpcConfig") or {}), "clusterSecurityGroupId": f"sg-{_suffix(auto)}",
                                "vpcId": f"vpc-{_suffix(auto + 'vpc')}"}
            return name_value, out
        if typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            host = str(out.get("url", "")).removeprefix("https://")
            out["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{host}"
            return out["arn"], out
        if typ == "aws:ec2/vpcEndpoint:VpcEndpoint":
            # A gateway endpoint's routes target the service's managed prefix list.
            out.update(prefixListId=f"pl-{_suffix(auto)}",
                       arn=_arn("ec2", region, f"vpc-endpoint/vpce-{_suffix(auto)}"))
            return f"vpce-{_suffix(auto)}", out
        if typ == "aws:rds/subnetGroup:SubnetGroup":
            group = (out.get("name") or auto).lower()  # RDS lowercases subnet group names
            out.update(name=group, arn=_arn("rds", region, f"subgrp:{group}"))
            return group, out
        if typ == "aws:rds/instance:Instance":
            ident = out.get("identifier") or auto
            out.update(identifier=ident, address=f"{ident}.abc123.{region}.rds.amazonaws.com",
                       endpoint=f"{ident}.abc123.{region}.rds.amazonaws.com:5432", port=out.get("port") or 5432,
                       arn=_arn("rds", region, f"db:{ident}"))
            return ident, out
        if "arn" not in out:
            out["arn"] = _arn(typ.split(":")[1].split("/")[0], region, f"{name}/{_suffix(auto)}")
        if typ.startswith("aws:") and "name" in out:
            out["name"] = name_value
        return f"{name}-{_suffix(auto)}", out

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        token = args.token
        # (outputs, check failures): the SDK's mock monitor iterates the failures, so "none" is an empty list.
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/test", "userId": "AIDTEST",
                    "id": ACCOUNT_ID}, []
        if token == "aws:iam/getSessionContext:getSessionContext":
            # An assumed role's STS ARN maps to its IAM role ARN; any other principal is its own issuer.
            arn = str(args.args.get("arn", ""))
            issuer = arn
            if ":assumed-role/" in arn:
                account = arn.split(":")[4]
                role = arn.split(":assumed-role/")[1].split("/")[0]
                issuer = f"arn:aws:iam::{account}:role/{role}"
            return {"arn": arn, "issuerArn": issuer, "id": arn}, []
        if token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}, []
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}, []
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{self.region}{s}" for s in "abc"]
            return {"names": names, "zoneIds": [f"euw1-az{i}" for i in range(1, 4)], "id": self.region}, []
        # [deploy-rehearsal block] the add-on version lookup: see `_rehearsal_call`.
        answer = _rehearsal_call(token, dict(args.args))
        if answer is not None:
            return answer, []
        raise NotImplementedError(f"the recording mock answers no invoke {token}; add it in infra/graph.py")


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, keeping what its Mocks interface drops: parents, dependencies, exports."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recorded: list[Resource] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        inputs = rpc.deserialize_properties(request.object)
        outputs: dict[str, Any] = {}
        rid: str = ""
        if request.custom:
            rid, outputs = self.mocks.answers[(request.type, request.name)]  # type: ignore[attr-defined]
        self.recorded.append(Resource(
            urn=response.urn, type=request.type, name=request.name, inputs=_plain(inputs), outputs=_plain(outputs),
            id=rid, parent=request.parent or None, custom=bool(request.custom), provider=request.provider or None,
            dependencies=list(request.dependencies), protect=bool(request.protect),
            retain_on_delete=bool(request.retainOnDelete), secret_paths=_secret_paths(inputs),
        ))
        return response


def _secret_paths(value: Any, path: str = "") -> list[str]:
    """Where `value` (deserialized inputs, secrets still wrapped) holds secret-marked values."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return [path]
        return [p for k, v in value.items() for p in _secret_paths(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _secret_paths(v, f"{path}[{i}]")]
    return []


def _plain(value: Any) -> Any:
    """Secrets unwrapped and nested values copied, so the graph is plain JSON-able data."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _plain(value.get("value"))
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, pulumi.AssetArchive):
        return {"assets": {k: _plain(v) for k, v in value.assets.items()}}
    if isinstance(value, (pulumi.FileAsset, pulumi.FileArchive)):
        return {"path": value.path}
    if isinstance(value, pulumi.StringAsset):
        return {"text": value.text}
    return value


def capture(program: Callable[[], None], config: ConfigValues, *, stack: str = "dev", preview: bool = False) -> Graph:
    """Run `program` (which registers resources) under the recording mocks with `config`, return its graph.

    Each call gets a fresh event loop and fresh runtime settings, so captures do not leak into each other.
    """
    region = config.values.get("aws:region", "eu-west-1")
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        pulumi.runtime.settings.reset_options(project=PROJECT, stack=stack, preview=preview)
        pulumi.runtime.set_all_config(dict(config.values), list(config.secret_keys))
        mocks = RecordingMocks(region)
        monitor = _RecordingMonitor(mocks)
        pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor)

        async def run() -> dict[str, Any]:
            from pulumi.runtime.stack import wait_for_rpcs

            program()
            await wait_for_rpcs()
            root = pulumi.runtime.get_root_resource()
            exported = getattr(root, "outputs", {})
            resolved = {k: await pulumi.Output.from_input(v).future() for k, v in exported.items()}
            await wait_for_rpcs()
            return resolved

        try:
            exports = loop.run_until_complete(run())
        except Exception as exc:
            # A bad secret fails inside an apply that a resource consumes; Pulumi wraps it in "While processing
            # resource ..." ValueErrors. Surface the ConfigError naming the key, as the CLI's message leads with it.
            cause = _config_error(exc)
            if cause is not None:
                raise cause from None
            raise
        return Graph(resources=monitor.recorded, exports=_plain(exports), region=region)
    finally:
        # A program that failed leaves Output tasks pending; cancel them so nothing leaks into the next capture.
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        pulumi.runtime.settings.reset_options()
        pulumi.runtime.set_all_config({}, [])
        loop.close()
        asyncio.set_event_loop(None)


def _config_error(exc: BaseException) -> ConfigError | None:
    """The ConfigError an exception was raised from, if any (causes can form cycles across awaiting tasks)."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        if isinstance(current, ConfigError):
            return current
        seen.add(id(current))
        pending += [current.__cause__, current.__context__]
    return None


def graph_json(graph: Graph) -> str:
    """The graph as JSON (what `python -m local plan --json` shows)."""
    return json.dumps({"exports": graph.exports, "resources": [r.__dict__ for r in graph.resources]},
                      indent=2, default=str)


# --- [deploy-rehearsal block] added with the EBS CSI add-on, the endpoint CIDRs and destroy-time VPC groups ------
# Kept apart so it ports as one piece; `RecordingMocks._outputs` and `.call` consult these two functions first.

#: What `describe-addon-versions` would mark defaultVersion for a Kubernetes version (the format EKS uses:
#: `v<semver>-eksbuild.<n>`); the add-on rule in infra/cloudrules.py checks the same format.
EBS_CSI_DEFAULT_VERSION = "v1.48.0-eksbuild.1"


def _rehearsal_outputs(typ: str, name: str, out: dict[str, Any], auto: str,
                       region: str) -> tuple[str, dict[str, Any]] | None:
    if typ == "aws:ec2/vpc:Vpc":
        # AWS creates every VPC with a `default` security group; VPC functions move their ENIs to it on destroy.
        # Id and ARN as the generic answer gives them, so nothing that already read them changes.
        out.update(defaultSecurityGroupId=f"sg-{_suffix(auto + 'default')}",
                   arn=_arn("ec2", region, f"{name}/{_suffix(auto)}"))
        return f"{name}-{_suffix(auto)}", out
    if typ == "aws:eks/addon:Addon":
        cluster, addon = str(out.get("clusterName")), str(out.get("addonName"))
        out["arn"] = _arn("eks", region, f"addon/{cluster}/{addon}/{_suffix(auto)}")
        return f"{cluster}:{addon}", out
    return None


def _rehearsal_call(token: str, args: dict[str, Any]) -> dict[str, Any] | None:
    if token == "aws:eks/getAddonVersion:getAddonVersion":
        if args.get("addonName") != "aws-ebs-csi-driver" or not str(args.get("kubernetesVersion", "")).startswith("1."):
            raise ValueError(f"the recording mock knows only aws-ebs-csi-driver versions for 1.x clusters, got {args}")
        return {"addonName": args["addonName"], "kubernetesVersion": args["kubernetesVersion"],
                "version": EBS_CSI_DEFAULT_VERSION, "id": args["addonName"]}
    return None
