"""Lambda: functions, invoke permissions and asynchronous invocation settings."""

from __future__ import annotations

import json
import re
from typing import Any

from sim.rules.core import CloudRejection, rule

LAMBDA_RUNTIMES = {"python3.12", "python3.13"}
_ENV_NAME = re.compile(r"^[a-zA-Z]([a-zA-Z0-9_])+$")
_RESERVED_ENV = {"_HANDLER", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_NAME",
                 "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR"}


@rule("aws:lambda/function:Function")
def _lambda_function(inputs: dict[str, Any]) -> None:
    if inputs.get("runtime") not in LAMBDA_RUNTIMES:
        raise CloudRejection(f"runtime {inputs.get('runtime')!r} is not one of {sorted(LAMBDA_RUNTIMES)}")
    if not 128 <= int(inputs.get("memorySize", 128)) <= 10240:
        raise CloudRejection("memorySize must be 128 to 10240 MB")
    if not 1 <= int(inputs.get("timeout", 3)) <= 900:
        raise CloudRejection("timeout must be 1 to 900 seconds")
    if not re.match(r"^[A-Za-z0-9_.]+\.[A-Za-z0-9_]+$", str(inputs.get("handler", ""))):
        raise CloudRejection(f"handler {inputs.get('handler')!r} is not module.function")
    if not str(inputs.get("role", "")).startswith("arn:aws:iam::"):
        raise CloudRejection(f"role {inputs.get('role')!r} is not an IAM role ARN")
    for arch in inputs.get("architectures") or ["x86_64"]:
        if arch not in ("arm64", "x86_64"):
            raise CloudRejection(f"architecture {arch!r}")
    variables = (inputs.get("environment") or {}).get("variables") or {}
    for key, value in variables.items():
        if not _ENV_NAME.match(key) or key in _RESERVED_ENV:
            raise CloudRejection(f"environment variable name {key!r} is invalid or reserved")
        if not isinstance(value, str):
            raise CloudRejection(f"environment variable {key} must be a string, got {type(value).__name__}")
    if len(json.dumps(variables)) > 4096:
        raise CloudRejection("environment variables exceed 4 KB")


@rule("aws:lambda/permission:Permission")
def _lambda_permission(inputs: dict[str, Any]) -> None:
    if inputs.get("action") != "lambda:InvokeFunction":
        raise CloudRejection(f"action {inputs.get('action')!r}")
    if not str(inputs.get("principal", "")).endswith(".amazonaws.com"):
        raise CloudRejection(f"principal {inputs.get('principal')!r}")


_DESTINATION_SERVICES = ("sqs", "sns", "lambda", "events", "s3")


@rule("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")
def _function_event_invoke_config(inputs: dict[str, Any]) -> None:
    retries = inputs.get("maximumRetryAttempts")
    if retries is not None and not 0 <= int(retries) <= 2:
        raise CloudRejection(f"maximumRetryAttempts {int(retries)} must be 0 to 2")
    age = inputs.get("maximumEventAgeInSeconds")
    if age is not None and not 60 <= int(age) <= 21600:
        raise CloudRejection(f"maximumEventAgeInSeconds {int(age)} must be 60 to 21600")
    for outcome, config in (inputs.get("destinationConfig") or {}).items():
        destination = str((config or {}).get("destination") or "")
        if not any(destination.startswith(f"arn:aws:{s}:") for s in _DESTINATION_SERVICES):
            raise CloudRejection(f"{outcome} destination {destination!r} is not an SQS, SNS, Lambda, EventBridge "
                                 "or S3 ARN")


@rule("aws:lambda/function:Function")
def _lambda_destroy_time_groups(inputs: dict[str, Any]) -> None:
    replacement = inputs.get("replacementSecurityGroupIds")
    if replacement and not inputs.get("replaceSecurityGroupsOnDestroy"):
        raise CloudRejection("replacementSecurityGroupIds requires replaceSecurityGroupsOnDestroy")
    if inputs.get("replaceSecurityGroupsOnDestroy"):
        if not (inputs.get("vpcConfig") or {}).get("securityGroupIds"):
            raise CloudRejection("replaceSecurityGroupsOnDestroy needs a vpcConfig with security groups")
        for group in replacement or []:
            if not str(group).startswith("sg-"):
                raise CloudRejection(f"replacementSecurityGroupIds entry {group!r} is not a security group id")


@rule("aws:lambda/function:Function")
def _lambda_reserved_concurrency(inputs: dict[str, Any]) -> None:
    reserved = inputs.get("reservedConcurrentExecutions")
    # PutFunctionConcurrency takes 0 and up (the account's limit, 1000 by default); the provider's -1 removes it.
    if reserved is not None and not -1 <= int(reserved) <= 1000:
        raise CloudRejection(f"reservedConcurrentExecutions {int(reserved)} must be -1 (none) or 0 to the "
                             "account's concurrency limit (1000)")
