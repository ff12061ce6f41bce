"""A small Pulumi program for the S3 events engine: bucket -> notification -> function, failures -> queue."""

import pulumi
import pulumi_aws as aws

from infra.lambdas import LambdaFunction, LambdaFunctionArgs, statement
from tests.local.testfns.settings import RecorderEnv

bucket = aws.s3.Bucket("uploads")
failures = aws.sqs.Queue("failures")
recorder = LambdaFunction("recorder", LambdaFunctionArgs(
    handler="tests.local.testfns.handlers.record_s3", code=pulumi.AssetArchive({}),
    env_contract=RecorderEnv.model_fields.keys(), environment={"BUCKET_NAME": bucket.bucket},
    statements=[statement(["s3:PutObject"], [bucket.arn.apply(lambda a: f"{a}/*")])],
    memory_mb=128, timeout_seconds=5))
permission = aws.lambda_.Permission("recorder-s3", action="lambda:InvokeFunction",
                                    function=recorder.function_name, principal="s3.amazonaws.com",
                                    source_arn=bucket.arn)
aws.s3.BucketNotification(
    "uploads-notify", bucket=bucket.id,
    lambda_functions=[aws.s3.BucketNotificationLambdaFunctionArgs(
        lambda_function_arn=recorder.arn, events=["s3:ObjectCreated:*"], filter_prefix="incoming/",
        filter_suffix=".txt")],
    opts=pulumi.ResourceOptions(depends_on=[permission]))
aws.lambda_.FunctionEventInvokeConfig(
    "recorder-async", function_name=recorder.function_name, maximum_retry_attempts=2,
    maximum_event_age_in_seconds=600,
    destination_config=aws.lambda_.FunctionEventInvokeConfigDestinationConfigArgs(
        on_failure=aws.lambda_.FunctionEventInvokeConfigDestinationConfigOnFailureArgs(destination=failures.arn)))
pulumi.export("bucketName", bucket.bucket)
pulumi.export("failureQueueUrl", failures.url)
