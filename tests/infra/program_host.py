"""Run the Pulumi program the way the CLI's Python language host does, under plain SDK mocks.

Executed by tests/infra/test_program_venv.py with the interpreter of a venv made from requirements.txt alone,
so nothing here may import more than that venv holds (no tests.*, no sim.capture recording mock).

Mirrors pulumi/pulumi `sdk/python/cmd/pulumi-language-python-exec`: config comes from the engine's environment
(`PULUMI_CONFIG`, `PULUMI_CONFIG_SECRET_KEYS`) through `set_all_config`; the host changes to `--pwd` (the
project dir) and the engine's entry point is "." (pulumi-language-python `constructArguments`), so
`runpy.run_path(".", run_name="__main__")` runs `__main__.py` with the program dir put on sys.path by runpy;
the whole of it inside `pulumi.runtime.run_in_stack` on a fresh event loop. Prints one JSON line: the resources
registered (type, name; a dynamic resource with its serialized provider, as the state would keep it) and the modules
imported.

usage: program_host.py <project dir (--pwd)> <stack>
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import runpy
import sys
import traceback
from typing import Any

import pulumi
import pulumi.runtime
from pulumi.runtime import mocks as pulumi_mocks

PROJECT = "serverless-mesh"
ACCOUNT = "123456789012"


#: A fixed P-256 public key (the program venv has no `cryptography` to make one; the recording mock makes real ones).
FIXED_P256_PUBLIC_PEM = """-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEjlM7b6C/e0YluzBmfAH7YH75+Lio
D+9bMAYocDGHsqNz6x294DMYNm0Gn4Om9ZAAU8c2M8sEGyHFXhqGwfQAtA==
-----END PUBLIC KEY-----
"""


class Mocks(pulumi.runtime.Mocks):
    """Echoes inputs back with the few outputs providers compute that the program reads (ids, ARNs, names)."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.registered: list[dict[str, Any]] = []

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        outputs = dict(args.inputs)
        if not (args.resource_id and not outputs):  # a `Resource.get` read registers nothing
            self.registered.append({"type": args.typ, "name": args.name})
            if args.typ.startswith("pulumi-python:dynamic"):  # the pickled provider the CLI's provider host loads
                self.registered[-1]["provider"] = outputs.get("__provider")
        if args.typ.startswith("aws:"):
            service = args.typ.split(":")[1].split("/")[0]
            outputs.setdefault("arn", f"arn:aws:{service}:{self.region}:{ACCOUNT}:{args.name}")
            outputs.setdefault("name", args.name)
            outputs.update(self.COMPUTED.get(args.typ, {}))
        if args.typ.startswith("kubernetes:"):
            metadata = dict(outputs.get("metadata") or {})
            metadata.setdefault("name", args.name)
            outputs["metadata"] = metadata
            if args.typ == "kubernetes:helm.sh/v3:Release":  # the chart's objects are found by release name
                outputs["status"] = {"name": outputs.get("name", args.name),
                                     "namespace": outputs.get("namespace", "default")}
            # The platform reads the ingress gateway's LoadBalancer Service for its hostname.
            outputs.setdefault("status", {"loadBalancer": {"ingress": [{"hostname": f"{args.name}.elb.test"}]}})
        if args.typ == "tls:index/privateKey:PrivateKey":  # the program turns the public half into a JWKS
            outputs.update(publicKeyPem=FIXED_P256_PUBLIC_PEM, privateKeyPemPkcs8="-----BEGIN PRIVATE KEY-----")
        if args.typ == "random:index/randomPassword:RandomPassword":  # a Secret's stringData needs a string
            outputs.update(result="p" * int(outputs.get("length") or 16))
        if args.typ == "docker-build:index:Image":  # Deployments pull the pushed ref by digest
            tags = list(outputs.get("tags") or [])
            outputs.update(digest="sha256:" + "0" * 64, ref=f"{tags[0]}@sha256:{'0' * 64}" if tags else "")
        return f"{args.name}-id", outputs

    # Outputs the program dereferences (inside applies) that no input echoes.
    COMPUTED: dict[str, dict[str, Any]] = {
        "aws:eks/cluster:Cluster": {
            "endpoint": "https://eks.test", "certificateAuthority": {"data": "Y2E="},
            "identities": [{"oidcs": [{"issuer": "https://oidc.eks.test/id/X"}]}],
            "vpcConfig": {"clusterSecurityGroupId": "sg-1", "vpcId": "vpc-1"},
        },
        "aws:lambda/function:Function": {"invokeArn": "arn:aws:apigateway:test:lambda:path/functions/f/invocations"},
        "aws:apigateway/restApi:RestApi": {"rootResourceId": "root", "executionArn": "arn:aws:execute-api:test:1:a"},
        "aws:apigateway/stage:Stage": {"invokeUrl": "https://api.test/dev", "executionArn": "arn:x"},
        "aws:sqs/queue:Queue": {"url": "https://sqs.test/1/q"},
        "aws:ec2/vpc:Vpc": {"defaultSecurityGroupId": "sg-default"},
        "aws:ecr/repository:Repository": {"repositoryUrl": "1.dkr.ecr.test/repo", "registryId": ACCOUNT},
        "aws:rds/instance:Instance": {"address": "db.test", "endpoint": "db.test:5432", "port": 5432},
        "aws:s3/bucket:Bucket": {"bucket": "bucket-test"},
    }

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        token = args.token
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/test", "userId": "U", "id": ACCOUNT}, []
        if token == "aws:iam/getSessionContext:getSessionContext":
            return {"arn": args.args.get("arn", ""), "issuerArn": args.args.get("arn", ""), "id": "x"}, []
        if token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}, []
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}, []
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {"names": [f"{self.region}{s}" for s in "abc"], "id": self.region}, []
        if token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return {"userName": "AWS", "password": "p", "proxyEndpoint": "https://1.dkr.ecr.test", "id": "t"}, []
        if token == "aws:eks/getAddonVersion:getAddonVersion":
            return {"addonName": args.args.get("addonName"), "version": "v1.48.0-eksbuild.1", "id": "a"}, []
        raise NotImplementedError(f"the host test's mock answers no invoke {token}")


def main(pwd: str, stack: str) -> int:
    program = "."
    config = pulumi.runtime.get_config_env()
    pulumi.runtime.set_all_config(config, pulumi.runtime.get_config_secret_keys_env())
    mocks = Mocks(config.get("aws:region", "eu-west-1"))
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False)
    # set_mocks makes a root Stack for unit tests that never call run_in_stack; the host's run_in_stack makes
    # its own, and only one may exist, so drop the first to run the program exactly as the host does.
    pulumi.runtime.settings.ROOT.set(None)
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    sys.argv = [program]
    os.chdir(pwd)
    successful = False
    try:
        coro = pulumi.runtime.run_in_stack(lambda: runpy.run_path(program, run_name="__main__"))
        loop.run_until_complete(coro)
        successful = True
    except Exception:
        traceback.print_exc()
    finally:
        loop.close()
    print(json.dumps({"resources": mocks.registered, "modules": sorted(sys.modules)}))
    sys.stdout.flush()
    return 0 if successful else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
