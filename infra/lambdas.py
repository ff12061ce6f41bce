"""`LambdaFunction`: one function with its own least-privilege role and its log group.

Every function in the stack is built here, so every one gets the same guarantees: python3.12 on arm64, a role
that can do exactly the statements it is given plus writing its own log streams (no managed `*` policies), a
log group created before the function (so Lambda never creates one without retention), and an environment
whose variable names equal exactly what the code reads (its `Env` model), checked at preview, plus the layer's
library settings every function carries (`functions.common.settings.RUNTIME_ENVIRONMENT`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from functions.common.settings import RUNTIME_ENVIRONMENT
from infra.iam import assume_role_policy, policy_document, statement
from infra.packaging import LAMBDA_PYTHON

RUNTIME = f"python{LAMBDA_PYTHON}"
ARCHITECTURE = "arm64"


def physical_name(name: str) -> str:
    """`<project>-<stack>-<name>`, within Lambda's 64-character limit."""
    full = f"{pulumi.get_project()}-{pulumi.get_stack()}-{name}"
    if len(full) > 64:
        raise ValueError(f"function name {full!r} is longer than Lambda's 64 characters")
    return full


def check_environment(function: str, environment: Collection[str], contract: Collection[str]) -> None:
    """Fail when the variables set differ from the ones the code reads (a wiring bug AWS would not catch)."""
    missing, extra = sorted(set(contract) - set(environment)), sorted(set(environment) - set(contract))
    if missing or extra:
        raise ValueError(f"function {function}: environment must set exactly what its code reads; "
                         f"missing {missing}, not read {extra}")


@dataclass(frozen=True, kw_only=True)
class LambdaFunctionArgs:
    handler: str
    """Entry point, `functions.<group>.<module>.<function>`."""
    code: pulumi.Input[pulumi.Archive]
    env_contract: Collection[str]
    """The variable names the code reads (its `Env` model's fields)."""
    environment: Mapping[str, pulumi.Input[str]]
    statements: Sequence[pulumi.Input[dict[str, Any]]] = ()
    """IAM statements besides logging, each scoped to the resources the code touches."""
    memory_mb: int = 256
    timeout_seconds: int = 10
    log_retention_days: int = 14
    layers: Sequence[pulumi.Input[str]] = field(default_factory=tuple)
    vpc_config: pulumi.Input[aws.lambda_.FunctionVpcConfigArgs] | None = None
    replacement_security_group_ids: Sequence[pulumi.Input[str]] = ()
    """For a VPC function: the groups Lambda moves its ENIs to just before the function is deleted (see below)."""
    description: str = ""
    reserved_concurrency: int = -1
    """Concurrent executions reserved for the function (-1: none, the account's unreserved pool; 0 stops it)."""
    function_name: str = ""
    """The function's own name: its physical name is `<project>-<stack>-<function_name>` (empty: the component's
    name). Set when the component's name carries its parent's prefix but the deployed function keeps its name."""


def previous_names(opts: pulumi.ResourceOptions | None) -> tuple[str, ...]:
    """The names a component was known by (its `Alias(name=...)` options): its children were named after them."""
    return tuple(alias.name for alias in (opts.aliases if opts and opts.aliases else ())
                 if isinstance(alias, pulumi.Alias) and isinstance(alias.name, str))


class LambdaFunction(pulumi.ComponentResource):
    function_name: pulumi.Output[str]
    arn: pulumi.Output[str]
    invoke_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: LambdaFunctionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-mesh:functions:LambdaFunction", name, None, opts)
        own_name = args.function_name or name
        check_environment(own_name, args.environment, args.env_contract)
        fn_name = physical_name(own_name)
        self._previous_names = previous_names(opts)
        self.log_group = self._create_log_group(name, fn_name, args)
        self.role, self.policy = self._create_role(name, own_name, args)
        self.function = self._create_function(name, fn_name, args)
        self.function_name = self.function.name
        self.arn = self.function.arn
        self.invoke_arn = self.function.invoke_arn
        self.role_arn = self.role.arn
        self.register_outputs({"function_name": self.function_name, "arn": self.arn})

    def _child_opts(self, role: str, **extra: Any) -> pulumi.ResourceOptions:
        """`parent=self`, and when the component was renamed, its children's old names (`<old name>-<role>`) as
        aliases: the engine moves them in the state instead of replacing the role, log group and function."""
        aliases = [pulumi.Alias(name=f"{old}-{role}") for old in self._previous_names] or None
        return pulumi.ResourceOptions(parent=self, aliases=aliases, **extra)

    def _create_log_group(self, name: str, fn_name: str, args: LambdaFunctionArgs) -> aws.cloudwatch.LogGroup:
        return aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/lambda/{fn_name}",
            retention_in_days=args.log_retention_days,
            opts=self._child_opts("logs"),
        )

    def _create_role(self, name: str, own_name: str,
                     args: LambdaFunctionArgs) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=assume_role_policy(),
            description=f"Runs the {own_name} function",
            opts=self._child_opts("role"),
        )
        logging = statement(["logs:CreateLogStream", "logs:PutLogEvents"],
                            [self.log_group.arn.apply(lambda arn: f"{arn}:*")], sid="WriteOwnLogs")
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=pulumi.Output.json_dumps(policy_document([logging, *args.statements])),
            opts=self._child_opts("policy"),
        )
        return role, policy

    def _create_function(self, name: str, fn_name: str, args: LambdaFunctionArgs) -> aws.lambda_.Function:
        return aws.lambda_.Function(
            f"{name}-function",
            name=fn_name,
            description=args.description or None,
            runtime=RUNTIME,
            architectures=[ARCHITECTURE],
            handler=args.handler,
            code=args.code,
            role=self.role.arn,
            memory_size=args.memory_mb,
            timeout=args.timeout_seconds,
            reserved_concurrent_executions=args.reserved_concurrency,
            layers=list(args.layers) or None,
            environment=aws.lambda_.FunctionEnvironmentArgs(variables={**RUNTIME_ENVIRONMENT, **args.environment}),
            vpc_config=args.vpc_config,
            **self._destroy_time_network(args),
            # The inline policy before the function: Lambda creates a VPC function's ENIs at creation, with the
            # execution role (CreateFunction fails or the function stays Pending without the ENI rights), and a
            # function's first invocation needs its log rights. Depending on the policy also orders `destroy`: the
            # function goes first, while its role can still delete (and on destroy re-home) its ENIs.
            opts=self._child_opts("function", depends_on=[self.log_group, self.role, self.policy]),
        )

    @staticmethod
    def _destroy_time_network(args: LambdaFunctionArgs) -> dict[str, Any]:
        """`replace_security_groups_on_destroy`: before deleting a VPC function the provider updates its VPC config
        to `replacement_security_group_ids` and waits for that, then deletes it (terraform-provider-aws #37624,
        the form pulumi-aws 7 ships). The ENIs Lambda leaves behind for up to ~20 minutes then hold the
        replacement group, not the function's own, so `pulumi destroy` deletes the function's security group
        at once instead of waiting out the ENIs (pulumi/pulumi-aws#2642). The replacement must outlive the
        function: the VPC's default group, which goes with the VPC."""
        if args.vpc_config is None or not args.replacement_security_group_ids:
            return {}
        return {"replace_security_groups_on_destroy": True,
                "replacement_security_group_ids": list(args.replacement_security_group_ids)}
