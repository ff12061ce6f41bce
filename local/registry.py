"""What the twin does with each resource type: the engine registry and `python -m local plan`.

`ENGINES` maps a resource type to the engine that deploys it (each engine's `types`) and how `plan` describes it.
`CLOUD_ONLY` maps the types the twin does not run to the reason (IAM is checked, not enforced; networking,
clusters and control planes have no local meaning). A type in neither table is reported as such, never skipped
silently.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass

from infra.gate import GATE_TYPE
from local import aws, function_spec, jobs, kube, mesh, postgres_engine, s3events, services
from local.gateway import spec as gateway
from local.gateway import throttle
from local.lineup import ENGINES as LINEUP
from local.traces import engine as traces
from sim.capture import Graph, Resource

Detail = Callable[[Resource, Graph], str]


def _table(r: Resource, g: Graph) -> str:
    i = r.inputs
    keys = i.get("hashKey", "?") + (f" + {i['rangeKey']}" if i.get("rangeKey") else "")
    gsis = [x["name"] for x in i.get("globalSecondaryIndexes") or []]
    ttl = (i.get("ttl") or {}).get("attributeName")
    return (f"table {r.physical_name} keyed by {keys}" + (f", indexes {', '.join(gsis)}" if gsis else "")
            + (f", TTL on {ttl}" if ttl else ""))


def _function(r: Resource, g: Graph) -> str:
    spec = function_spec.FunctionSpec.from_resource(r)
    return (f"worker process: {spec.handler}, {spec.memory_mb} MB, {spec.timeout_seconds:g} s timeout, "
            f"env {', '.join(sorted(spec.environment)) or '(none)'}, concurrency "
            f"{'unreserved (account 1000)' if spec.reserved_concurrency is None else spec.reserved_concurrency}")


def _rest_api(r: Resource, g: Graph) -> str:
    body = r.inputs.get("body")
    doc = json.loads(body) if isinstance(body, str) else (body or {})
    ops = sum(1 for item in (doc.get("paths") or {}).values() for m in gateway.HTTP_METHODS if m in item)
    return f"local API gateway: {ops} operations from the body (validators, CORS, gateway responses)"


def _throttling(r: Resource, g: Graph) -> str:
    rate, burst = throttle.limits(r.inputs.get("settings") or {})
    return f"stage throttling: token bucket of {rate:g}/s, burst {burst} on {r.inputs.get('methodPath')} (429 beyond)"


def _notification(r: Resource, g: Graph) -> str:
    targets = [f"{t.get('filterPrefix') or ''}*{t.get('filterSuffix') or ''} -> "
               f"{str(t.get('lambdaFunctionArn', '')).rsplit(':', 1)[-1]}"
               for t in r.inputs.get("lambdaFunctions") or []]
    return f"S3 events on bucket {r.inputs.get('bucket')}: {'; '.join(targets) or 'no Lambda targets'}"


def _static(text: str) -> Detail:
    return lambda r, g: text


DETAILS: dict[str, Detail] = {
    aws.TABLE: _table,
    **{t: (lambda r, g: f"bucket {r.physical_name}") for t in aws.BUCKETS},
    **{t: (lambda r, g: f"versioning {(r.inputs.get('versioningConfiguration') or {}).get('status')}")
       for t in aws.BUCKET_VERSIONING},
    aws.QUEUE: lambda r, g: f"queue {r.physical_name}",
    aws.SECRET: lambda r, g: f"secret {r.physical_name}",
    aws.SECRET_VERSION: _static("the secret's value"),
    function_spec.FUNCTION: _function,
    gateway.REST_API: _rest_api,
    gateway.STAGE: lambda r, g: f"stage {r.inputs.get('stageName')}: the gateway serves /"
                                f"{r.inputs.get('stageName')}/...",
    throttle.METHOD_SETTINGS: _throttling,
    s3events.NOTIFICATION: _notification,
    s3events.INVOKE_CONFIG: lambda r, g: ("async invocations: "
                                          f"{int(r.inputs.get('maximumRetryAttempts') or 0)} retries, then the "
                                          "on-failure destination"),
    postgres_engine.RDS_INSTANCE: _static("PostgreSQL from pgserver in the state folder"),
    postgres_engine.STATEFUL_SET: _static("PostgreSQL from pgserver in the state folder (in-cluster mode)"),
    jobs.JOB: lambda r, g: ("run to completion once PostgreSQL is up, before the Deployments: "
                            + " ".join(str(w) for c in ((r.inputs.get("spec") or {}).get("template") or {})
                                       .get("spec", {}).get("containers", []) for w in c.get("command") or [])
                            + " with the graph's env (backoffLimit retries)"),
    services.DEPLOYMENT: lambda r, g: (f"{int((r.inputs.get('spec') or {}).get('replicas', 1))} processes (image -> "
                                       "services/<name>), each an Envoy endpoint once ready, restarted with backoff "
                                       "when it dies (--max-replicas caps them)"),
    services.IMAGE: _static("not built: the Deployment pulling it runs services/<name> (the image's last path "
                            "segment, tag and digest dropped) from this checkout"),
    kube.K8S_SERVICE: _static("the Deployment's port, reached through Envoy"),
    kube.K8S_SECRET: _static("environment of the service and Job processes"),
    kube.CONFIG_MAP: _static("environment of the service processes"),
    mesh.VIRTUAL_SERVICE: _static("Envoy routes (weights, retries, timeouts)"),
    mesh.DESTINATION_RULE: _static("Envoy clusters (subsets, circuit breakers)"),
    mesh.GATEWAY: _static("Envoy listener"),
    mesh.REQUEST_AUTHENTICATION: _static("jwt_authn filter on the ingress listener when it selects the gateway"),
    traces.TELEMETRY: _static("the twin always traces: the functions, services, gateway and Envoy's OpenTelemetry "
                              "tracer export to the twin's own collector, whatever the provider names"),
    mesh.AUTHORIZATION_POLICY: _static("rbac filter on the ingress listener when it selects the gateway; a "
                                       "sidecar's (mTLS identities) is not emulated"),
}

# Resource type -> (engine name, detail): the engines say what they deploy, `DETAILS` how plan shows it.
ENGINES: dict[str, tuple[str, Detail]] = {t: (cls.name, DETAILS[t]) for cls in LINEUP for t in cls.types}

CLOUD_ONLY: dict[str, str] = {
    "aws:iam/role:Role": "checked, not run: each function's role is in the graph; moto does not enforce IAM",
    "aws:iam/rolePolicy:RolePolicy": "checked, not run: IAM is not enforced locally (tests under mocks check it)",
    "aws:iam/policy:Policy": "checked, not run: IAM is not enforced locally",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "checked, not run: IAM is not enforced locally",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": "cloud-only: IRSA for the cluster",
    "aws:lambda/permission:Permission": "checked: every API route and S3 notification target needs one, or deploy "
                                        "fails",
    "aws:lambda/layerVersion:LayerVersion": "cloud-only: the venv holds the layer's pinned requirements",
    "aws:cloudwatch/logGroup:LogGroup": "cloud-only: function logs stream to the console, prefixed by function",
    "aws:apigateway/deployment:Deployment": "cloud-only: the gateway always serves the current body",
    "aws:apigateway/account:Account": "cloud-only: CloudWatch role of API Gateway",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "cloud-only: nothing is public on loopback",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration":
        "cloud-only: encryption at rest is AWS's",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2":
        "cloud-only: encryption at rest is AWS's",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "cloud-only: ACL ownership",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": "cloud-only: lifecycle rules",
    "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2": "cloud-only: lifecycle rules",
    "aws:s3/bucketPolicy:BucketPolicy": "cloud-only: bucket policies are not enforced locally",
    "aws:sqs/queuePolicy:QueuePolicy": "cloud-only: queue policies are not enforced locally",
    "aws:ecr/repository:Repository": "cloud-only: services run from source (services/<name>), not images",
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": "cloud-only: image retention",
    "pulumi:providers:docker-build": "cloud-only: nothing is built locally",
    "aws:eks/cluster:Cluster": "cloud-only: no cluster; Deployments run as local processes",
    "aws:eks/nodeGroup:NodeGroup": "cloud-only: no nodes; processes run on this machine",
    "aws:eks/accessEntry:AccessEntry": "cloud-only: cluster access",
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": "cloud-only: cluster access",
    "aws:eks/addon:Addon": "cloud-only: cluster add-on",
    "kubernetes:storage.k8s.io/v1:StorageClass": "cloud-only: volumes (the twin's PostgreSQL keeps its data in the "
                                                 "state folder)",
    "aws:rds/subnetGroup:SubnetGroup": "cloud-only: networking",
    "pulumi:providers:kubernetes": "cloud-only: the twin needs no cluster credentials",
    "pulumi:providers:aws": "cloud-only: the twin talks to moto",
    "kubernetes:helm.sh/v3:Release": "cloud-only: Istio's control plane (Envoy is configured from the specs) and, "
                                     "with canaryAnalysis, Prometheus (the twin reads Envoy's own stats)",
    # Not run on the twin, on purpose: the twin applies canaryWeight as soon as the stack file says so, like a stack
    # without canaryAnalysis. Gating it would need a baseline of Envoy's counters kept across config reloads;
    # `python -m local rollout` already judges each step with the same analysis (mesh.analysis) on Envoy's stats.
    GATE_TYPE: "cloud-only: the canary gate inside `pulumi up` (reads Prometheus); the twin applies canaryWeight at "
               "once, and `python -m local rollout` judges each step with the same analysis on Envoy's stats",
    "kubernetes:core/v1:Namespace": "cloud-only: one loopback namespace",
    "kubernetes:core/v1:ServiceAccount": "cloud-only: identities of sidecars",
    "kubernetes:security.istio.io/v1:PeerAuthentication": "cloud-only: mTLS between sidecars (loopback is plain)",
    "tls:index/privateKey:PrivateKey": "the mock's: a real P-256 key, stable per resource name",
    "pulumi:providers:tls": "cloud-only: keys are made by the mock",
    "random:index/randomPassword:RandomPassword": "the mock's: a password stable per resource name (each service "
                                                  "role's, through its Secret)",
    "pulumi:providers:random": "cloud-only: passwords are made by the mock",
    "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition": "cloud-only: cluster API types",
}
CLOUD_ONLY_PREFIXES = {
    "aws:ec2/": "cloud-only: networking (the twin runs on loopback)",
    "aws:iam/": "checked, not run: IAM is not enforced locally",
    "aws:cloudwatch/": "cloud-only: monitoring",
}

@dataclass(frozen=True)
class Placement:
    """What the twin does with one resource."""

    type: str
    name: str
    physical: str
    action: str   # deployed | checked | cloud-only | component | unknown
    engine: str | None
    detail: str


def place(resource: Resource, graph: Graph) -> Placement:
    base = {"type": resource.type, "name": resource.name,
            "physical": resource.physical_name if resource.custom else ""}
    if not resource.custom:
        children = sum(1 for _ in graph.children(resource))
        return Placement(**base, action="component", engine=None,
                         detail=f"component resource grouping {children} children")
    if resource.type in ENGINES:
        engine, detail = ENGINES[resource.type]
        return Placement(**base, action="deployed", engine=engine, detail=detail(resource, graph))
    reason = CLOUD_ONLY.get(resource.type) or next(
        (text for prefix, text in CLOUD_ONLY_PREFIXES.items() if resource.type.startswith(prefix)), None)
    if reason is not None:
        action = "checked" if reason.startswith("checked") else "cloud-only"
        return Placement(**base, action=action, engine=None, detail=reason)
    return Placement(**base, action="unknown", engine=None,
                     detail=f"not deployed by the twin: no engine or reason for {resource.type} (add it to "
                            "local/registry.py)")


def plan(graph: Graph) -> list[Placement]:
    return [place(r, graph) for r in graph.resources]


def format_plan(placements: list[Placement]) -> str:
    order = {"deployed": 0, "checked": 1, "cloud-only": 2, "unknown": 3, "component": 4}
    rows = sorted(placements, key=lambda p: (order[p.action], p.engine or "", p.type, p.name))
    lines = []
    for p in rows:
        where = p.engine or "-"
        lines.append(f"{p.action:<10} {where:<9} {p.type:<52} {p.name:<28} {p.detail}")
    counts: dict[str, int] = {}
    for p in placements:
        counts[p.action] = counts.get(p.action, 0) + 1
    lines.append("")
    lines.append(f"{len(placements)} resources: " + ", ".join(f"{n} {a}" for a, n in sorted(counts.items())))
    return "\n".join(lines)


def plan_json(placements: list[Placement]) -> str:
    return json.dumps([asdict(p) for p in placements], indent=2)


# --- wiring checks (what the cloud would reject or fail on) -----------------------------------------------------

def check_wiring(graph: Graph) -> list[str]:
    """Problems the cloud would have with the graph's wiring: missing roles and invoke permissions."""
    problems: list[str] = []
    roles = {str(r.outputs.get("arn")) for r in graph.of_type("aws:iam/role:Role")}
    functions = {str(r.outputs.get("name")): r for r in graph.of_type(function_spec.FUNCTION)}
    for fn in functions.values():
        if str(fn.inputs.get("role")) not in roles:
            problems.append(f"function {fn.physical_name}: role {fn.inputs.get('role')!r} is not a role in the graph")
    permissions = [(str(p.inputs.get("function")), str(p.inputs.get("principal")))
                   for p in graph.of_type("aws:lambda/permission:Permission")]

    def permitted(fn_ref: str, principal: str) -> bool:
        fn = next((f for f in functions.values()
                   if fn_ref in (f.outputs.get("arn"), f.outputs.get("invokeArn"), f.outputs.get("name"))), None)
        names = {str(fn.outputs.get("name")), str(fn.outputs.get("arn"))} if fn else {fn_ref}
        return any(f in names and p == principal for f, p in permissions)

    found = gateway.find_rest_api(graph)
    if found is not None:
        _, _, body = found
        api = gateway.RestApi.from_body(body, api_id="check", stage="check", region=graph.region)
        for route in api.routes:
            uri = route.integration.get("uri")
            if route.integration.get("type") == "aws_proxy" and not permitted(str(uri), "apigateway.amazonaws.com"):
                problems.append(f"{route.method} {route.template}: no lambda.Permission lets API Gateway invoke "
                                f"{uri}")
    for notification in graph.of_type(s3events.NOTIFICATION):
        for target in notification.inputs.get("lambdaFunctions") or []:
            arn = str(target.get("lambdaFunctionArn"))
            if not permitted(arn, "s3.amazonaws.com"):
                problems.append(f"S3 notification {notification.name}: no lambda.Permission lets S3 invoke {arn}")
    return problems
