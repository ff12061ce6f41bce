"""A Secrets Manager secret holding one value the stack generates or is given (the shop's signing keys).

Written once because the lifecycle is one decision: a dev stack deletes its secrets at once (a re-created stack can
reuse the names), a protected stack keeps AWS's 30-day recovery window and Pulumi's `protect`.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws


def secret_holding(name: str, version_name: str, *, description: str, value: pulumi.Input[str],
                   protect_data: bool, parent: pulumi.Resource) -> aws.secretsmanager.Secret:
    """The secret `name` and its current version `version_name` holding `value`, both children of `parent`."""
    secret = aws.secretsmanager.Secret(
        name,
        description=description,
        recovery_window_in_days=30 if protect_data else 0,
        opts=pulumi.ResourceOptions(parent=parent, protect=protect_data),
    )
    # The only resource whose inputs hold the value: a secret Output, encrypted in the state.
    aws.secretsmanager.SecretVersion(
        version_name, secret_id=secret.id, secret_string=pulumi.Output.secret(value),
        opts=pulumi.ResourceOptions(parent=parent))
    return secret
