"""`ImagePipeline`: uploads under `original/` in one bucket become a thumbnail, a medium image and a metadata item.

S3 invokes the function asynchronously for every `ObjectCreated` under `original/`. Lambda retries a failed
invocation at most `max_retries` times within `max_event_age_seconds`, then hands the event to an SQS failure
queue, so an upload is never lost and never retried forever. The handler itself records files that can never
succeed as `failed` and returns, so only transient errors ever reach the queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from functions.images.keys import MEDIUM_PREFIX, ORIGINAL_PREFIX, THUMBNAIL_PREFIX
from functions.images.settings import Env as ImagesEnv
from infra import tables
from infra.dynamo import create_table
from infra.lambdas import LambdaFunction, LambdaFunctionArgs, statement
from infra.layers import PILLOW, dependency_layer
from infra.packaging import code_archive

HANDLER = "functions.images.handlers.handler"
TRIGGER_EVENTS = ("s3:ObjectCreated:*",)
# Lambda keeps on-failure records in the queue for SQS's maximum, 14 days, so an operator can replay them.
FAILURE_RETENTION_SECONDS = 14 * 24 * 3600


@dataclass(frozen=True, kw_only=True)
class ImagePipelineArgs:
    memory_mb: int
    timeout_seconds: int
    max_bytes: int
    """Uploads above this size are recorded as failed without being downloaded."""
    max_pixels: int
    """Decompression-bomb guard: images above width x height are recorded as failed."""
    versioning: bool
    max_retries: int
    """Asynchronous retries of a failed invocation (Lambda allows 0 to 2)."""
    max_event_age_seconds: int
    """How long Lambda keeps trying an event (60 to 21600) before sending it to the failure queue."""
    protect_data: bool
    log_retention_days: int
    layers: Sequence[pulumi.Input[str]] = ()
    """Shared dependency layers (Powertools, pydantic); the pipeline adds its own Pillow layer."""
    log_level: str = "INFO"
    otlp_endpoint: str = ""
    """`OTEL_EXPORTER_OTLP_ENDPOINT` of the function (the stack's `otlpEndpoint`; empty: tracing off)."""


class ImagePipeline(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    table_name: pulumi.Output[str]
    failure_queue_url: pulumi.Output[str]
    function_name: pulumi.Output[str]

    def __init__(self, name: str, args: ImagePipelineArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-mesh:images:ImagePipeline", name, None, opts)
        self.bucket, bucket_settings = self._create_bucket(name, args)
        self.table = create_table(f"{name}-metadata", tables.IMAGE_METADATA, protect=args.protect_data, parent=self)
        self.failure_queue = self._create_failure_queue(name)
        self.pillow_layer = self._create_pillow_layer(name)
        self.function = self._create_function(name, args)
        self.notification = self._create_trigger(name, bucket_settings)
        self.invoke_config = self._create_invoke_config(name, args)

        self.bucket_name = self.bucket.bucket
        self.bucket_arn = self.bucket.arn
        self.table_name = self.table.name
        self.failure_queue_url = self.failure_queue.url
        self.function_name = self.function.function_name
        self.register_outputs({
            "bucket_name": self.bucket_name,
            "table_name": self.table_name,
            "failure_queue_url": self.failure_queue_url,
            "function_name": self.function_name,
        })

    # --- Storage ------------------------------------------------------------------------------------------

    def _create_bucket(self, name: str, args: ImagePipelineArgs) -> tuple[aws.s3.Bucket, pulumi.Resource]:
        """The bucket and its settings; returns the last setting, which the notification waits for."""
        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            # Dev stacks empty the bucket on `pulumi destroy`; protected stacks refuse to delete it at all.
            force_destroy=not args.protect_data,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect_data),
        )
        # S3 answers OperationAborted ("a conflicting conditional operation") when two configurations of one
        # bucket change at once, so each setting waits for the previous one.
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),  # ACLs off
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access]),
        )
        encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.
                BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="AES256"),
            )],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ownership]),
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            # S3 can suspend versioning but never return a bucket to "unversioned": Suspended is what off means
            # for a bucket that may have had it on, and behaves like unversioned for new objects.
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                status="Enabled" if args.versioning else "Suspended"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[encryption]),
        )
        return bucket, versioning

    def _create_failure_queue(self, name: str) -> aws.sqs.Queue:
        """Where Lambda sends an event it gave up on; the record's requestPayload names the bucket and key."""
        return aws.sqs.Queue(
            f"{name}-failures",
            message_retention_seconds=FAILURE_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            opts=pulumi.ResourceOptions(parent=self),
        )

    # --- Compute ------------------------------------------------------------------------------------------

    def _create_pillow_layer(self, name: str) -> pulumi.CustomResource:
        return dependency_layer(
            f"{name}-pillow", PILLOW,
            description="Pillow for the image function (manylinux aarch64 wheels, python3.12)",
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_function(self, name: str, args: ImagePipelineArgs) -> LambdaFunction:
        def objects(prefix: str) -> pulumi.Output[str]:
            return self.bucket.arn.apply(lambda arn: f"{arn}/{prefix}*")

        environment: dict[str, pulumi.Input[str]] = {
            "BUCKET_NAME": self.bucket.bucket,
            "TABLE_NAME": self.table.name,
            "MAX_IMAGE_BYTES": str(args.max_bytes),
            "MAX_IMAGE_PIXELS": str(args.max_pixels),
            "POWERTOOLS_SERVICE_NAME": "images",
            "LOG_LEVEL": args.log_level,
            "OTEL_EXPORTER_OTLP_ENDPOINT": args.otlp_endpoint,
        }
        statements = [
            # GetObject covers both GET and HEAD of the uploads; nothing outside original/ is ever read.
            statement(["s3:GetObject"], [objects(ORIGINAL_PREFIX)], sid="ReadOriginals"),
            # Without ListBucket, S3 answers 403 (not 404) for an upload deleted before it was processed; the
            # handler would retry a transient-looking error into the failure queue instead of skipping it.
            # S3 evaluates that check without a prefix, so a prefix condition cannot narrow it.
            statement(["s3:ListBucket"], [self.bucket.arn], sid="TellMissingFromForbidden"),
            statement(["s3:PutObject"], [objects(THUMBNAIL_PREFIX), objects(MEDIUM_PREFIX)], sid="WriteDerivatives"),
            # functions/images/adapters.py: get_item (ordering check) and a conditional put_item, nothing else.
            statement(["dynamodb:GetItem", "dynamodb:PutItem"], [self.table.arn], sid="MetadataTable"),
            # The on-failure destination is delivered with the function's own role.
            statement(["sqs:SendMessage"], [self.failure_queue.arn], sid="FailureDestination"),
        ]
        return LambdaFunction(
            f"{name}-processor",
            LambdaFunctionArgs(
                handler=HANDLER,
                code=code_archive(["images"]),
                env_contract=ImagesEnv.model_fields.keys(),
                environment=environment,
                statements=statements,
                memory_mb=args.memory_mb,
                timeout_seconds=args.timeout_seconds,
                log_retention_days=args.log_retention_days,
                layers=[self.pillow_layer.arn, *args.layers],  # type: ignore[attr-defined]
                description="Makes the thumbnail, medium image and metadata of uploads under original/",
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    # --- Wiring -------------------------------------------------------------------------------------------

    def _create_trigger(self, name: str, bucket_settings: pulumi.Resource) -> aws.s3.BucketNotification:
        # Bucket ARNs carry no account ID: source_account stops a bucket of the same name in another account
        # from invoking the function. A Lambda ARN's fifth field is its account.
        permission = aws.lambda_.Permission(
            f"{name}-s3-invoke",
            action="lambda:InvokeFunction",
            function=self.function.function_name,
            principal="s3.amazonaws.com",
            source_arn=self.bucket.arn,
            source_account=self.function.arn.apply(lambda arn: arn.split(":")[4]),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return aws.s3.BucketNotification(
            f"{name}-trigger",
            bucket=self.bucket.id,
            lambda_functions=[aws.s3.BucketNotificationLambdaFunctionArgs(
                lambda_function_arn=self.function.arn,
                events=list(TRIGGER_EVENTS),
                # Only uploads trigger the function. The derivatives it writes go under thumbnails/ and medium/,
                # outside this filter: were they inside it, every derivative would invoke the function again
                # and each invocation would write more derivatives (a recursive trigger loop).
                filter_prefix=ORIGINAL_PREFIX,
            )],
            # S3 validates the destination when the configuration is put: the permission must exist first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[permission, bucket_settings]),
        )

    def _create_invoke_config(self, name: str, args: ImagePipelineArgs) -> aws.lambda_.FunctionEventInvokeConfig:
        return aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-async",
            function_name=self.function.function_name,
            maximum_retry_attempts=args.max_retries,
            maximum_event_age_in_seconds=args.max_event_age_seconds,
            destination_config=aws.lambda_.FunctionEventInvokeConfigDestinationConfigArgs(
                on_failure=aws.lambda_.FunctionEventInvokeConfigDestinationConfigOnFailureArgs(
                    destination=self.failure_queue.arn),
            ),
            # Lambda checks that the role may send to the destination: wait for the role policy (a child).
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.function]),
        )
