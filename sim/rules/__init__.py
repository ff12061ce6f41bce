"""What AWS and Kubernetes would reject, one module per service, checked when the recording mock registers a
resource, so a wiring bug fails a unit test or the twin's deploy the way it would fail `pulumi up`.

A rule for a new type is one `@rule("<type token>")` function in its service's module; importing the module here
registers it (a new service's module joins the import below).
"""

from sim.rules import (  # noqa: F401  (imported to register their rules)
    apigateway,
    cloudwatch,
    docker,
    dynamic,
    dynamodb,
    ec2,
    ecr,
    eks,
    helm,
    iam,
    istio,
    kubernetes,
    lambda_,
    rds,
    s3,
    secretsmanager,
    sqs,
)
from sim.rules.core import CloudRejection, check, rule

__all__ = ["CloudRejection", "check", "rule"]
