"""The mock provider's answers to the data-source functions (invokes) the program calls, one function per token.

An answer is `(outputs, check failures)`: the SDK's mock monitor iterates the failures, so "none" is an empty list.
An invoke the program starts calling is one `@invoke("<token>")` function here.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from sim.account import ACCOUNT_ID, suffix

Answer = tuple[dict[str, Any], list[tuple[str, str]]]
Invoke = Callable[[dict[str, Any], str], Answer]
_BY_TOKEN: dict[str, Invoke] = {}


def invoke(token: str) -> Callable[[Invoke], Invoke]:
    def register(fn: Invoke) -> Invoke:
        _BY_TOKEN[token] = fn
        return fn

    return register


def answer(token: str, args: dict[str, Any], region: str) -> Answer:
    fn = _BY_TOKEN.get(token)
    if fn is None:
        raise NotImplementedError(f"the recording mock answers no invoke {token}; add it in sim/invokes.py")
    return fn(args, region)


@invoke("aws:index/getCallerIdentity:getCallerIdentity")
def _caller_identity(args: dict[str, Any], region: str) -> Answer:
    return {"accountId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/test", "userId": "AIDTEST",
            "id": ACCOUNT_ID}, []


@invoke("aws:iam/getSessionContext:getSessionContext")
def _session_context(args: dict[str, Any], region: str) -> Answer:
    # An assumed role's STS ARN maps to its IAM role ARN; any other principal is its own issuer.
    arn = str(args.get("arn", ""))
    issuer = arn
    if ":assumed-role/" in arn:
        account = arn.split(":")[4]
        role = arn.split(":assumed-role/")[1].split("/")[0]
        issuer = f"arn:aws:iam::{account}:role/{role}"
    return {"arn": arn, "issuerArn": issuer, "id": arn}, []


@invoke("aws:index/getRegion:getRegion")
def _region(args: dict[str, Any], region: str) -> Answer:
    return {"name": region, "region": region, "id": region}, []


@invoke("aws:index/getPartition:getPartition")
def _partition(args: dict[str, Any], region: str) -> Answer:
    return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}, []


@invoke("aws:index/getAvailabilityZones:getAvailabilityZones")
def _availability_zones(args: dict[str, Any], region: str) -> Answer:
    names = [f"{region}{s}" for s in "abc"]
    return {"names": names, "zoneIds": [f"euw1-az{i}" for i in range(1, 4)], "id": region}, []


@invoke("aws:ecr/getAuthorizationToken:getAuthorizationToken")
def _ecr_authorization_token(args: dict[str, Any], region: str) -> Answer:
    """A 12-hour registry token: user `AWS`, the password, and the registry's https endpoint."""
    registry = str(args.get("registryId") or ACCOUNT_ID)
    password = "mock-ecr-password-" + suffix(registry + region)
    token = base64.b64encode(f"AWS:{password}".encode()).decode()
    return {"authorizationToken": token, "expiresAt": "2030-01-01T12:00:00Z", "id": region, "password": password,
            "proxyEndpoint": f"https://{registry}.dkr.ecr.{region}.amazonaws.com", "region": region,
            "registryId": registry, "userName": "AWS"}, []


#: What `describe-addon-versions` would mark defaultVersion for a Kubernetes version (the format EKS uses:
#: `v<semver>-eksbuild.<n>`); the add-on rule in sim/rules/eks.py checks the same format.
EBS_CSI_DEFAULT_VERSION = "v1.48.0-eksbuild.1"


@invoke("aws:eks/getAddonVersion:getAddonVersion")
def _addon_version(args: dict[str, Any], region: str) -> Answer:
    if args.get("addonName") != "aws-ebs-csi-driver" or not str(args.get("kubernetesVersion", "")).startswith("1."):
        raise ValueError(f"the recording mock knows only aws-ebs-csi-driver versions for 1.x clusters, got {args}")
    return {"addonName": args["addonName"], "kubernetesVersion": args["kubernetesVersion"],
            "version": EBS_CSI_DEFAULT_VERSION, "id": args["addonName"]}, []
