"""`DatabaseRoles`: a PostgreSQL role per service, its password, its own Secret, and the bootstrap Job that makes
them real in the database. The Job is the only workload that reads the master Secret (beside the in-cluster
server's own pod); each service's Deployment reads only its own Secret and waits for the Job.

The role plan and the SQL are `services.common.dbroles` / `services.common.bootstrap` (pure data here; the SQL
runs in the Job, in the twin and in the tests). Passwords are `pulumi-random` RandomPasswords: Pulumi keeps them
(encrypted) in the state, so an update does not change them; replacing one (`pulumi up --replace <urn>`) rotates
it. Every change that matters reaches the Job's pod template (the image, the passwords' checksum), and a Job's
template is immutable, so the provider replaces the Job and waits for the new one to complete before the
Deployments roll: they carry the checksum of their own password and restart onto it.

No `ttlSecondsAfterFinished`: a Job the TTL controller deleted is still in Pulumi's state, and the next update
would diff against an object that is gone. A completed Job is kept (its pod's log is the bootstrap's record) and
named by Pulumi (`metadata.name` unset), so the replacement is created before the old one is deleted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.containers import ContainerImage
from infra.database import SECRET_PASSWORD_KEY, SECRET_USER_KEY, secret_env
from infra.kube import TMP_VOLUME, env_list, k8s_opts, pod_security_context, resources, restricted_security_context
from services.common.dbroles import BOOTSTRAP_MODULE, BOOTSTRAP_NAME, password_env, role_name

PASSWORD_LENGTH = 32
#: How many pods the Job may fail before it fails (and `pulumi up` with it); the bootstrap itself retries the
#: connection for BOOTSTRAP_TIMEOUT_SECONDS first.
BACKOFF_LIMIT = 4
DEADLINE_SECONDS = 900
#: Pod template annotation whose change restarts a pod onto new credentials (its value is a digest, never a secret).
CREDENTIALS_ANNOTATION = "serverless-mesh/db-credentials"


def credentials_secret_name(namespace: str, service: str) -> str:
    return f"{namespace}-db-{service}"


def credentials_checksum(*passwords: str) -> str:
    """16 hex digits of sha256 over the passwords: changes when one does, reveals nothing of them."""
    return hashlib.sha256("\0".join(passwords).encode()).hexdigest()[:16]


@dataclass(frozen=True, kw_only=True)
class DatabaseAddress:
    host: pulumi.Input[str]
    port: int
    name: str


@dataclass(frozen=True, kw_only=True)
class DatabaseRolesArgs:
    namespace: str
    services: tuple[str, ...]
    """The services with a planned role (`services.common.dbroles.SERVICE_ROLES`), one Secret each."""
    database: DatabaseAddress
    master_secret: str
    """The Secret (in `namespace`) holding the master's `username` and `password`."""
    image: ContainerImage
    """An image carrying `services/common` (every service image does)."""
    depends_on: tuple[pulumi.Resource, ...] = ()
    """The namespace, the master Secret, the database, Istio (the pod's sidecar)."""
    log_level: str = "INFO"


class DatabaseRoles(pulumi.ComponentResource):
    """Per-service passwords and Secrets, and the Job that creates schema, roles and grants with the master's."""

    job_name: pulumi.Output[str]

    def __init__(self, name: str, args: DatabaseRolesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-mesh:database:DatabaseRoles", name, None, opts)
        self.args = args
        self.passwords = {svc: random.RandomPassword(f"{name}-{svc}-password", length=PASSWORD_LENGTH,
                                                     special=False, opts=pulumi.ResourceOptions(parent=self))
                          for svc in args.services}
        self.secrets = self._create_secrets(name)
        self.service_account = self._create_service_account(name)
        self.job = self._create_job(name)
        self.job_name = self.job.metadata.name
        self.register_outputs({"job_name": self.job_name})

    def secret_name(self, service: str) -> str:
        return credentials_secret_name(self.args.namespace, service)

    def checksum(self, service: str) -> pulumi.Output[str]:
        """What a service's pod template carries so that a rotated password restarts it."""
        return self.passwords[service].result.apply(credentials_checksum)

    def _create_secrets(self, name: str) -> dict[str, k8s.core.v1.Secret]:
        # One Secret per service, so a pod's spec can name only its own (the kubelet reads nothing else for it).
        return {
            svc: k8s.core.v1.Secret(
                f"{name}-{svc}-credentials",
                metadata={"name": self.secret_name(svc), "namespace": self.args.namespace, "labels": {"app": svc}},
                type="Opaque",
                string_data={SECRET_USER_KEY: role_name(self.args.database.name, svc),
                             SECRET_PASSWORD_KEY: password.result},  # a secret Output already
                opts=k8s_opts(self, self.args.depends_on),
            )
            for svc, password in self.passwords.items()
        }

    def _create_service_account(self, name: str) -> k8s.core.v1.ServiceAccount:
        # Its own mesh identity: the in-cluster database's AuthorizationPolicy admits it by name.
        return k8s.core.v1.ServiceAccount(
            f"{name}-sa", metadata={"name": BOOTSTRAP_NAME, "namespace": self.args.namespace,
                                    "labels": {"app": BOOTSTRAP_NAME}},
            automount_service_account_token=False, opts=k8s_opts(self, self.args.depends_on))

    def _container(self) -> dict[str, Any]:
        args = self.args
        db = args.database
        env = [
            *env_list({"DATABASE_HOST": db.host, "DATABASE_PORT": str(db.port), "DATABASE_NAME": db.name,
                       "LOG_LEVEL": args.log_level, "SEED_CATALOGUE": "true"}),
            secret_env("DATABASE_USER", args.master_secret, SECRET_USER_KEY),
            secret_env("DATABASE_PASSWORD", args.master_secret, SECRET_PASSWORD_KEY),
            *(secret_env(password_env(svc), self.secret_name(svc), SECRET_PASSWORD_KEY) for svc in args.services),
        ]
        return {
            "name": "bootstrap",
            "image": args.image.ref,
            "imagePullPolicy": "IfNotPresent",
            "command": ["python", "-m", BOOTSTRAP_MODULE],
            "env": sorted(env, key=lambda item: item["name"]),
            "resources": resources(cpu_request="50m", memory_request="64Mi", cpu_limit="500m", memory_limit="128Mi"),
            "securityContext": restricted_security_context(),
            "volumeMounts": [{"name": TMP_VOLUME, "mountPath": "/tmp"}],
        }

    def _create_job(self, name: str) -> k8s.batch.v1.Job:
        args = self.args
        labels = {"app": BOOTSTRAP_NAME}
        checksum = pulumi.Output.all(*(p.result for p in self.passwords.values())).apply(
            lambda values: credentials_checksum(*values))
        template = {
            "metadata": {
                "labels": labels,
                "annotations": {
                    # A native sidecar (an init container that Kubernetes stops after the main one exits): a plain
                    # sidecar would keep the pod, and so the Job, running forever.
                    "sidecar.istio.io/nativeSidecar": "true",
                    "proxy.istio.io/config": '{"holdApplicationUntilProxyStarts": true}',
                    CREDENTIALS_ANNOTATION: checksum,
                },
            },
            "spec": {
                "serviceAccountName": BOOTSTRAP_NAME,
                "automountServiceAccountToken": False,
                "securityContext": pod_security_context(),
                "restartPolicy": "Never",
                "containers": [self._container()],
                "volumes": [{"name": TMP_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}],
            },
        }
        depends: Sequence[pulumi.Resource] = [*args.depends_on, *self.secrets.values(), self.service_account,
                                              *args.image.depends_on]
        return k8s.batch.v1.Job(
            f"{name}-job",
            # No name: Pulumi names it, so a replacement (its template is immutable) starts before the old one goes.
            metadata={"namespace": args.namespace, "labels": labels,
                      # A Job that failed in an earlier update is replaced on the next, not awaited again.
                      "annotations": {"pulumi.com/replaceUnready": "true"}},
            spec={"backoffLimit": BACKOFF_LIMIT, "activeDeadlineSeconds": DEADLINE_SECONDS, "template": template},
            opts=k8s_opts(self, depends),
        )
