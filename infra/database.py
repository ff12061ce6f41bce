"""`Database`: the shop's PostgreSQL, on RDS in the VPC's private subnets (default) or in the cluster.

Either way clients get the same facts (host, port, database), so the Deployments don't change shape when
`databaseMode` does. The master user's password is the stack's `dbPassword` secret, in a Kubernetes Secret that only
the bootstrap Job reads (`infra.db_bootstrap`); each service logs in as its own role. One database (`shop`) holds
every service's tables: RDS creates exactly one database at creation, and the table names don't collide
(`inventory`, `reservations`, `products`, `notifications`); who may touch which is the roles' grants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.facts import PrivateNetwork
from infra.kube import k8s_opts, pod_security_context, resources, restricted_security_context
from mesh.common import SECURITY_API, Manifest, manifest, spiffe_principal

DB_NAME = "shop"
DB_USER = "shop"
DB_PORT = 5432
ENGINE_VERSION = "16"
#: The in-cluster server; alpine's `postgres` user is uid/gid 70, and the image runs as it without root.
POSTGRES_IMAGE = "postgres:16.4-alpine"
POSTGRES_UID = 70
POSTGRES_APP = "postgres"
#: Keys of the credentials Secret (the services' DATABASE_USER/DATABASE_PASSWORD and postgres' own variables).
SECRET_USER_KEY = "username"
SECRET_PASSWORD_KEY = "password"


@dataclass(frozen=True, kw_only=True)
class InCluster:
    """Where an in-cluster server runs and who may reach it."""

    namespace: str
    credentials_secret: str
    """Name of the Secret (in `namespace`) holding `username` and `password`."""
    clients: tuple[str, ...]
    """Service accounts (in `namespace`) allowed to connect, by mTLS identity."""
    trust_domain: str = "cluster.local"
    depends_on: tuple[pulumi.Resource, ...] = ()
    """The namespace, the credentials Secret and Istio (the AuthorizationPolicy's CRD, the sidecar injector)."""
    storage_class: str | None = None
    """The StorageClass the data volume's claim names; None takes the cluster's default class."""
    storage_ready: tuple[pulumi.Resource, ...] = ()
    """The CSI driver and the StorageClass: a claim made before them stays Pending and the rollout times out."""


@dataclass(frozen=True, kw_only=True)
class DatabaseArgs:
    mode: Literal["rds", "incluster"]
    password: pulumi.Input[str]
    """The `dbPassword` secret (an Output marked secret)."""
    protect_data: bool
    instance_class: str = "db.t4g.micro"
    network: PrivateNetwork | None = None
    """Required for `rds`."""
    cluster: InCluster | None = None
    """Required for `incluster`."""
    storage_gb: int = 20
    backup_days: int = 7


def rds_identifier(project: str, stack: str) -> str:
    """`<project>-<stack>-shop`: RDS identifiers are lowercase letters, digits and single hyphens, at most 63."""
    ident = f"{project}-{stack}-shop".lower()
    if len(ident) > 63 or "--" in ident or not ident[0].isalpha():
        raise ValueError(f"RDS identifier {ident!r} breaks RDS's naming rules")
    return ident


def postgres_host(namespace: str) -> str:
    return f"{POSTGRES_APP}.{namespace}.svc.cluster.local"


def postgres_authorization_policy(namespace: str, clients: Sequence[str], trust_domain: str) -> Manifest:
    """The shop namespace denies by default (mesh.shop.deny_all_policy); open the database port to the services."""
    spec = {
        "selector": {"matchLabels": {"app": POSTGRES_APP}},
        "action": "ALLOW",
        "rules": [{
            "from": [{"source": {"principals": [spiffe_principal(namespace, sa, trust_domain) for sa in clients]}}],
            "to": [{"operation": {"ports": [str(DB_PORT)]}}],
        }],
    }
    return manifest(SECURITY_API, "AuthorizationPolicy", f"{POSTGRES_APP}-allow", namespace, spec)


def secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    """A container env entry read from a Secret (the value never appears in the pod spec)."""
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


class Database(pulumi.ComponentResource):
    host: pulumi.Output[str]
    port: int
    name: str
    user: str

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-mesh:database:Database", name, None, opts)
        self.args = args
        self.port, self.name, self.user = DB_PORT, DB_NAME, DB_USER
        #: What a client of the database should wait for before its first start.
        self.ready: list[pulumi.Resource] = []
        if args.mode == "rds":
            self.host = self._create_rds(name)
        else:
            self.host = self._create_in_cluster(name)
        self.register_outputs({"host": self.host, "port": self.port, "name": self.name, "user": self.user})

    # --- RDS -------------------------------------------------------------------------------------------------
    def _create_rds(self, name: str) -> pulumi.Output[str]:
        args = self.args
        if args.network is None:
            raise ValueError("databaseMode rds needs the VPC (private subnets and the nodes' security group)")
        network = args.network
        subnets = aws.rds.SubnetGroup(
            f"{name}-subnets", subnet_ids=list(network.private_subnet_ids),
            description="The shop database: private subnets only", opts=pulumi.ResourceOptions(parent=self))
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=network.vpc_id,
            description="PostgreSQL from the cluster nodes only",
            ingress=[aws.ec2.SecurityGroupIngressArgs(
                protocol="tcp", from_port=DB_PORT, to_port=DB_PORT, security_groups=[network.node_security_group_id],
                description="PostgreSQL from the EKS nodes (the service pods)")],
            # No egress rules: the provider removes AWS's default allow-all, and a database initiates nothing.
            egress=[],
            opts=pulumi.ResourceOptions(parent=self),
        )
        protect = args.protect_data
        self.instance = aws.rds.Instance(
            f"{name}-rds",
            identifier=rds_identifier(pulumi.get_project(), pulumi.get_stack()),
            engine="postgres",
            engine_version=ENGINE_VERSION,
            instance_class=args.instance_class,
            allocated_storage=args.storage_gb,
            max_allocated_storage=args.storage_gb * 5,
            storage_type="gp3",
            storage_encrypted=True,
            db_name=DB_NAME,
            username=DB_USER,
            # A secret Output: Pulumi encrypts it in the state; nothing else in the graph holds it in the clear.
            password=args.password,
            port=DB_PORT,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[self.security_group.id],
            publicly_accessible=False,
            multi_az=False,
            auto_minor_version_upgrade=True,
            backup_retention_period=args.backup_days if protect else 1,
            copy_tags_to_snapshot=True,
            # protectData: keep a final snapshot and refuse deletion; dev skips both so `pulumi destroy` works.
            deletion_protection=protect,
            skip_final_snapshot=not protect,
            final_snapshot_identifier=f"{rds_identifier(pulumi.get_project(), pulumi.get_stack())}-final"
            if protect else None,
            apply_immediately=not protect,
            opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )
        self.ready = [self.instance]
        return self.instance.address

    # --- In the cluster --------------------------------------------------------------------------------------
    def _create_in_cluster(self, name: str) -> pulumi.Output[str]:
        cluster = self.args.cluster
        if cluster is None:
            raise ValueError("databaseMode incluster needs the cluster (namespace and credentials)")
        labels = {"app": POSTGRES_APP}
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata={"name": POSTGRES_APP, "namespace": cluster.namespace, "labels": labels},
            spec={
                "type": "ClusterIP",
                "selector": labels,
                # `tcp-` tells Istio this is opaque TCP (PostgreSQL's protocol), not HTTP.
                "ports": [{"name": "tcp-postgres", "port": DB_PORT, "targetPort": DB_PORT, "protocol": "TCP"}],
            },
            opts=k8s_opts(self, cluster.depends_on),
        )
        self.stateful_set = k8s.apps.v1.StatefulSet(
            f"{name}-statefulset",
            metadata={"name": POSTGRES_APP, "namespace": cluster.namespace, "labels": labels},
            spec=self._stateful_set_spec(cluster, labels),
            opts=k8s_opts(self, [*cluster.depends_on, *cluster.storage_ready, self.service]),
        )
        policy = postgres_authorization_policy(cluster.namespace, cluster.clients, cluster.trust_domain)
        # depends_on Istio (in cluster.depends_on): the AuthorizationPolicy CRD must exist first.
        self.policy = k8s.apiextensions.CustomResource(
            f"{name}-allow", api_version=policy["apiVersion"], kind=policy["kind"], metadata=policy["metadata"],
            spec=policy["spec"], opts=k8s_opts(self, cluster.depends_on))
        self.ready = [self.stateful_set, self.policy]
        return pulumi.Output.from_input(postgres_host(cluster.namespace))

    def _stateful_set_spec(self, cluster: InCluster, labels: dict[str, str]) -> dict[str, Any]:
        data_dir = "/var/lib/postgresql/data"
        env = [
            secret_env("POSTGRES_USER", cluster.credentials_secret, SECRET_USER_KEY),
            secret_env("POSTGRES_PASSWORD", cluster.credentials_secret, SECRET_PASSWORD_KEY),
            {"name": "POSTGRES_DB", "value": DB_NAME},
            # A subdirectory: initdb wants an empty directory it owns, and the volume's root holds lost+found.
            {"name": "PGDATA", "value": f"{data_dir}/pgdata"},
        ]
        ready = {"exec": {"command": ["pg_isready", "-U", DB_USER, "-d", DB_NAME, "-h", "127.0.0.1"]},
                 "periodSeconds": 5, "failureThreshold": 3, "timeoutSeconds": 3}
        container = {
            "name": POSTGRES_APP,
            "image": POSTGRES_IMAGE,
            "imagePullPolicy": "IfNotPresent",
            "ports": [{"name": "tcp-postgres", "containerPort": DB_PORT, "protocol": "TCP"}],
            "env": env,
            "startupProbe": {**ready, "periodSeconds": 2, "failureThreshold": 60},
            "readinessProbe": ready,
            "livenessProbe": {"tcpSocket": {"port": DB_PORT}, "periodSeconds": 10, "failureThreshold": 3},
            "resources": resources(cpu_request="100m", memory_request="256Mi", cpu_limit="1", memory_limit="512Mi"),
            "securityContext": restricted_security_context(POSTGRES_UID),
            # Read-only root: the data volume, the socket directory and /tmp are the only writable paths.
            "volumeMounts": [
                {"name": "data", "mountPath": data_dir},
                {"name": "run", "mountPath": "/var/run/postgresql"},
                {"name": "tmp", "mountPath": "/tmp"},
            ],
        }
        return {
            "serviceName": POSTGRES_APP,
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security_context(POSTGRES_UID),
                    "terminationGracePeriodSeconds": 60,
                    "containers": [container],
                    "volumes": [{"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                                {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}],
                },
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}},
                         **({"storageClassName": cluster.storage_class} if cluster.storage_class else {})},
            }],
            # Keep the data on `pulumi destroy` only when protectData says so.
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": "Retain" if self.args.protect_data else "Delete", "whenScaled": "Retain"},
        }
