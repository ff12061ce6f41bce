"""What S3, Lambda and SQS would refuse for the image pipeline's resource types, caught before `pulumi up`."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import stack_config_values
from infra.images import ImagePipeline, ImagePipelineArgs
from sim.capture import capture
from sim.rules import CloudRejection, check
from tests.infra.conftest import TEST_SECRETS

NOTIFICATION = "aws:s3/bucketNotification:BucketNotification"
INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
FN_A = "arn:aws:lambda:eu-west-1:123456789012:function:a"
FN_B = "arn:aws:lambda:eu-west-1:123456789012:function:b"
QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:failures"


def lambda_config(arn: str, events: list[str], prefix: str = "", suffix: str = "") -> dict[str, Any]:
    config: dict[str, Any] = {"lambdaFunctionArn": arn, "events": events}
    if prefix:
        config["filterPrefix"] = prefix
    if suffix:
        config["filterSuffix"] = suffix
    return config


def test_notification_with_an_unknown_event_name_is_rejected() -> None:
    with pytest.raises(CloudRejection, match=r"'trigger': unknown S3 event names \['s3:ObjectCreated'\]"):
        check(NOTIFICATION, "trigger", {"bucket": "b", "lambdaFunctions": [lambda_config(FN_A, ["s3:ObjectCreated"])]})


def test_notification_to_a_non_lambda_arn_is_rejected() -> None:
    with pytest.raises(CloudRejection, match=r"'trigger': lambdaFunctions destination .* is not an lambda ARN"):
        check(NOTIFICATION, "trigger", {"lambdaFunctions": [lambda_config(QUEUE_ARN, ["s3:ObjectCreated:*"])]})


@pytest.mark.parametrize(("first", "second"), [
    (("original/", ""), ("", "")),  # no prefix matches everything
    (("original/", ""), ("original/2026/", "")),  # nested prefix
    (("", ".jpg"), ("", "photo.jpg")),  # nested suffix
])
def test_overlapping_notification_filters_for_one_event_type_are_rejected(first: tuple[str, str],
                                                                         second: tuple[str, str]) -> None:
    configs = [lambda_config(FN_A, ["s3:ObjectCreated:*"], *first),
               lambda_config(FN_B, ["s3:ObjectCreated:Put"], *second)]
    with pytest.raises(CloudRejection, match=r"'trigger': configurations for .* overlap"):
        check(NOTIFICATION, "trigger", {"lambdaFunctions": configs})


@pytest.mark.parametrize(("events_b", "prefix_b", "suffix_b"), [
    (["s3:ObjectRemoved:*"], "original/", ""),  # different event type
    (["s3:ObjectCreated:*"], "thumbnails/", ""),  # disjoint prefixes
    (["s3:ObjectCreated:*"], "original/", ".png"),  # disjoint suffixes (first has .jpg)
])
def test_disjoint_notification_configurations_are_accepted(events_b: list[str], prefix_b: str, suffix_b: str) -> None:
    configs = [lambda_config(FN_A, ["s3:ObjectCreated:*"], "original/", ".jpg"),
               lambda_config(FN_B, events_b, prefix_b, suffix_b)]
    check(NOTIFICATION, "trigger", {"lambdaFunctions": configs})


@pytest.mark.parametrize(("inputs", "message"), [
    ({"maximumRetryAttempts": 3}, "maximumRetryAttempts 3 must be 0 to 2"),
    ({"maximumEventAgeInSeconds": 59}, "maximumEventAgeInSeconds 59 must be 60 to 21600"),
    ({"maximumEventAgeInSeconds": 21601}, "maximumEventAgeInSeconds 21601 must be 60 to 21600"),
    ({"destinationConfig": {"onFailure": {"destination": "arn:aws:dynamodb:eu-west-1:1:table/t"}}},
     "onFailure destination .* is not an SQS"),
])
def test_invoke_config_outside_lambda_limits_is_rejected(inputs: dict[str, Any], message: str) -> None:
    with pytest.raises(CloudRejection, match=f"'async': {message}"):
        check(INVOKE_CONFIG, "async", {"functionName": "f", **inputs})


@pytest.mark.parametrize(("type_token", "inputs", "message"), [
    ("aws:sqs/queue:Queue", {"messageRetentionSeconds": 15 * 24 * 3600}, "messageRetentionSeconds 1296000 must be"),
    ("aws:sqs/queue:Queue", {"sqsManagedSseEnabled": True, "kmsMasterKeyId": "alias/k"},
     "sqsManagedSseEnabled and kmsMasterKeyId are exclusive"),
    ("aws:s3/bucketVersioning:BucketVersioning", {"versioningConfiguration": {"status": "Off"}}, "status 'Off'"),
    ("aws:s3/bucketOwnershipControls:BucketOwnershipControls", {"rule": {"objectOwnership": "Owner"}},
     "objectOwnership 'Owner'"),
    ("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
     {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES128"}}]}, "sseAlgorithm 'AES128'"),
])
def test_bucket_and_queue_settings_s3_and_sqs_refuse_are_rejected(type_token: str, inputs: dict[str, Any],
                                                                   message: str) -> None:
    with pytest.raises(CloudRejection, match=f"'res': {message}"):
        check(type_token, "res", inputs)


def test_component_given_three_retries_fails_naming_the_resource_and_field() -> None:
    # The config stops imageMaxRetries=3 first; this proves the component itself would be refused too.
    def program() -> None:
        ImagePipeline("images", ImagePipelineArgs(
            memory_mb=1024, timeout_seconds=60, max_bytes=1_000_000, max_pixels=1_000_000, versioning=False,
            max_retries=3, max_event_age_seconds=3600, protect_data=False, log_retention_days=7))

    with pytest.raises(CloudRejection, match="'images-async': maximumRetryAttempts 3 must be 0 to 2"):
        capture(program, stack_config_values("dev", secrets=TEST_SECRETS))
