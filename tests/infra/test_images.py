"""The image pipeline under the recording mocks: what `pulumi up` would create for it, input by input."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from functions.common.settings import RUNTIME_ENVIRONMENT
from functions.images.keys import derivative_keys
from functions.images.settings import Env
from infra.config import ConfigError, stack_config_values
from infra.layers import PILLOW, locked_packages, zip_path
from sim.account import ACCOUNT_ID
from sim.capture import Graph, Resource, capture
from tests.infra.conftest import TEST_SECRETS, Capture, run_main

COMPONENT = "serverless-mesh:images:ImagePipeline"
BUCKET = "aws:s3/bucket:Bucket"
FUNCTION = "aws:lambda/function:Function"
LAYER = "aws:lambda/layerVersion:LayerVersion"
TABLE = "aws:dynamodb/table:Table"
QUEUE = "aws:sqs/queue:Queue"
NOTIFICATION = "aws:s3/bucketNotification:BucketNotification"
PERMISSION = "aws:lambda/permission:Permission"
INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"

# Every image setting moved off its default, and the data protected: the "prod-like" stack.
TUNED = {
    "protectData": True,
    "imageBucketVersioning": True,
    "imageMemoryMb": 2048,
    "imageTimeoutSeconds": 120,
    "imageMaxBytes": 10_000_000,
    "imageMaxPixels": 40_000_000,
    "imageMaxRetries": 0,
    "imageMaxEventAgeSeconds": 120,
}


@pytest.fixture(scope="module")
def tuned_graph() -> Graph:
    return capture(run_main, stack_config_values("dev", TUNED, secrets=TEST_SECRETS), stack="dev")


def pipeline(graph: Graph) -> list[Resource]:
    """The component and every resource below it."""
    root = graph.one(COMPONENT, "images")
    found, frontier = [root], [root]
    while frontier:
        children = [c for p in frontier for c in graph.children(p)]
        found += children
        frontier = children
    return found


def one(graph: Graph, type_token: str) -> Resource:
    matches = [r for r in pipeline(graph) if r.type == type_token]
    assert len(matches) == 1, f"expected one {type_token} in the image pipeline, got {[r.urn for r in matches]}"
    return matches[0]


def by_name(graph: Graph, name: str) -> Resource:
    matches = [r for r in pipeline(graph) if r.name == name]
    assert len(matches) == 1, f"expected one resource named {name} in the image pipeline"
    return matches[0]


def policy_statements(graph: Graph) -> dict[str, dict[str, Any]]:
    policy = one(graph, ROLE_POLICY)
    return {st["Sid"]: st for st in json.loads(policy.inputs["policy"])["Statement"]}


def env_vars(graph: Graph) -> dict[str, str]:
    return dict(one(graph, FUNCTION).inputs["environment"]["variables"])


# --- Bucket -------------------------------------------------------------------------------------------------

def test_bucket_blocks_every_kind_of_public_access(dev_graph: Graph) -> None:
    block = by_name(dev_graph, "images-public-access")
    bucket = one(dev_graph, BUCKET)
    assert block.inputs["bucket"] == bucket.id, block.urn
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    assert {f: block.inputs.get(f) for f in flags} == dict.fromkeys(flags, True), block.urn


def test_bucket_encrypts_objects_by_default(dev_graph: Graph) -> None:
    sse = by_name(dev_graph, "images-encryption")
    assert sse.inputs["bucket"] == one(dev_graph, BUCKET).id, sse.urn
    [rule] = sse.inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256", sse.urn


def test_bucket_disables_acls_with_owner_enforced_ownership(dev_graph: Graph) -> None:
    ownership = by_name(dev_graph, "images-ownership")
    assert ownership.inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}, ownership.urn


def test_bucket_settings_are_applied_one_at_a_time(dev_graph: Graph) -> None:
    # S3 aborts concurrent configuration changes of one bucket (OperationAborted).
    chain = ["images-public-access", "images-ownership", "images-encryption", "images-versioning", "images-trigger"]
    for before, after in itertools.pairwise(chain):
        later = by_name(dev_graph, after)
        assert by_name(dev_graph, before).urn in later.dependencies, f"{later.urn} must wait for {before}"


def test_dev_bucket_is_destroyable(dev_graph: Graph) -> None:
    bucket = one(dev_graph, BUCKET)
    assert bucket.inputs["forceDestroy"] is True, bucket.urn
    assert not bucket.protect, bucket.urn
    assert not one(dev_graph, TABLE).protect, one(dev_graph, TABLE).urn


def test_protect_data_keeps_bucket_and_table(tuned_graph: Graph) -> None:
    bucket, table = one(tuned_graph, BUCKET), one(tuned_graph, TABLE)
    assert bucket.inputs["forceDestroy"] is False, bucket.urn
    assert bucket.protect, bucket.urn
    assert table.protect and table.inputs["deletionProtectionEnabled"] is True, table.urn


def test_versioning_is_suspended_by_default_and_enabled_by_config(dev_graph: Graph, tuned_graph: Graph) -> None:
    dev, tuned = by_name(dev_graph, "images-versioning"), by_name(tuned_graph, "images-versioning")
    assert dev.inputs["versioningConfiguration"]["status"] == "Suspended", dev.urn
    assert tuned.inputs["versioningConfiguration"]["status"] == "Enabled", tuned.urn


def test_metadata_table_is_on_demand_keyed_by_id(dev_graph: Graph) -> None:
    table = one(dev_graph, TABLE)
    assert table.inputs["billingMode"] == "PAY_PER_REQUEST", table.urn
    assert table.inputs["hashKey"] == "id" and "rangeKey" not in table.inputs, table.urn


# --- Trigger ------------------------------------------------------------------------------------------------

def test_notification_invokes_the_function_on_object_created_under_original(dev_graph: Graph) -> None:
    notification, function = one(dev_graph, NOTIFICATION), one(dev_graph, FUNCTION)
    assert notification.inputs["bucket"] == one(dev_graph, BUCKET).id, notification.urn
    assert not notification.inputs.get("queues") and not notification.inputs.get("topics"), notification.urn
    [config] = notification.inputs["lambdaFunctions"]
    assert config["lambdaFunctionArn"] == function.outputs["arn"], notification.urn
    assert config["events"] == ["s3:ObjectCreated:*"], notification.urn
    assert config["filterPrefix"] == "original/", notification.urn
    assert not config.get("filterSuffix"), notification.urn


def test_derivatives_never_match_the_trigger_filter(dev_graph: Graph) -> None:
    [config] = one(dev_graph, NOTIFICATION).inputs["lambdaFunctions"]
    keys = derivative_keys("original/2026/holiday photo.PNG")
    assert keys is not None
    for key in (keys.thumbnail, keys.medium):
        assert not key.startswith(config["filterPrefix"]), f"{key} would invoke the function again"


def test_notification_is_put_after_the_invoke_permission_exists(dev_graph: Graph) -> None:
    notification, permission = one(dev_graph, NOTIFICATION), one(dev_graph, PERMISSION)
    assert permission.urn in notification.dependencies, notification.urn


def test_only_this_bucket_in_this_account_may_invoke_the_function(dev_graph: Graph) -> None:
    permission = one(dev_graph, PERMISSION)
    assert permission.inputs["action"] == "lambda:InvokeFunction", permission.urn
    assert permission.inputs["principal"] == "s3.amazonaws.com", permission.urn
    assert permission.inputs["function"] == one(dev_graph, FUNCTION).outputs["name"], permission.urn
    assert permission.inputs["sourceArn"] == one(dev_graph, BUCKET).outputs["arn"], permission.urn
    assert permission.inputs["sourceAccount"] == ACCOUNT_ID, permission.urn


# --- Function -----------------------------------------------------------------------------------------------

def test_role_grants_exactly_the_prefixes_table_and_queue_the_code_uses(dev_graph: Graph) -> None:
    bucket_arn = one(dev_graph, BUCKET).outputs["arn"]
    statements = policy_statements(dev_graph)
    granted = {sid: (st["Action"], st["Resource"]) for sid, st in statements.items() if sid != "WriteOwnLogs"}
    assert granted == {
        "ReadOriginals": (["s3:GetObject"], [f"{bucket_arn}/original/*"]),
        "TellMissingFromForbidden": (["s3:ListBucket"], [bucket_arn]),
        "WriteDerivatives": (["s3:PutObject"], [f"{bucket_arn}/thumbnails/*", f"{bucket_arn}/medium/*"]),
        "MetadataTable": (["dynamodb:GetItem", "dynamodb:PutItem"], [one(dev_graph, TABLE).outputs["arn"]]),
        "FailureDestination": (["sqs:SendMessage"], [one(dev_graph, QUEUE).outputs["arn"]]),
    }, one(dev_graph, ROLE_POLICY).urn


def test_role_has_no_wildcard_action_or_resource(dev_graph: Graph) -> None:
    policy = one(dev_graph, ROLE_POLICY)
    for sid, st in policy_statements(dev_graph).items():
        assert st["Effect"] == "Allow", f"{policy.urn} {sid}"
        assert not any("*" in action for action in st["Action"]), f"{policy.urn} {sid}: {st['Action']}"
        for resource in st["Resource"]:
            # Only object paths below a fixed prefix (`.../original/*`) or log streams (`...:*`) may end in *.
            head = resource[:-2] if resource.endswith(("/*", ":*")) else resource
            assert "*" not in head and resource != "*", f"{policy.urn} {sid}: {resource}"


def test_environment_sets_exactly_the_handler_env_model(dev_graph: Graph) -> None:
    function = one(dev_graph, FUNCTION)
    assert set(env_vars(dev_graph)) == set(Env.model_fields) | set(RUNTIME_ENVIRONMENT), function.urn


def test_environment_values_name_the_bucket_table_and_limits_from_config(tuned_graph: Graph) -> None:
    env = Env.model_validate(env_vars(tuned_graph))  # what the handler's get_env() would parse
    seen = {"bucket": env.BUCKET_NAME, "table": env.TABLE_NAME, "bytes": env.MAX_IMAGE_BYTES,
            "pixels": env.MAX_IMAGE_PIXELS, "service": env.POWERTOOLS_SERVICE_NAME}
    assert seen == {
        "bucket": one(tuned_graph, BUCKET).outputs["bucket"],
        "table": one(tuned_graph, TABLE).outputs["name"],
        "bytes": TUNED["imageMaxBytes"],
        "pixels": TUNED["imageMaxPixels"],
        "service": "images",
    }, one(tuned_graph, FUNCTION).urn


def test_memory_and_timeout_follow_config(dev_graph: Graph, tuned_graph: Graph) -> None:
    dev, tuned = one(dev_graph, FUNCTION), one(tuned_graph, FUNCTION)
    assert (dev.inputs["memorySize"], dev.inputs["timeout"]) == (1024, 60), dev.urn  # Pulumi.yaml defaults
    assert (tuned.inputs["memorySize"], tuned.inputs["timeout"]) == (2048, 120), tuned.urn


def test_function_runs_the_images_handler_on_python312_arm64(dev_graph: Graph) -> None:
    function = one(dev_graph, FUNCTION)
    assert function.inputs["handler"] == "functions.images.handlers.handler", function.urn
    assert function.inputs["runtime"] == "python3.12" and function.inputs["architectures"] == ["arm64"], function.urn
    packed = set(function.inputs["code"]["assets"])
    assert "functions/images/handlers.py" in packed and "functions/common/aws.py" in packed, function.urn
    assert not any(p.startswith(("functions/todos/", "functions/auth/")) for p in packed), function.urn


def test_function_gets_the_pillow_layer_and_the_shared_deps_layer(dev_graph: Graph) -> None:
    function = one(dev_graph, FUNCTION)
    pillow = one(dev_graph, LAYER)
    deps = dev_graph.one(LAYER, "deps")
    assert function.inputs["layers"] == [pillow.outputs["arn"], deps.outputs["arn"]], function.urn


def test_pillow_layer_is_built_for_arm64_python312_from_the_images_lock(dev_graph: Graph) -> None:
    pillow = one(dev_graph, LAYER)
    assert pillow.inputs["compatibleRuntimes"] == ["python3.12"], pillow.urn
    assert pillow.inputs["compatibleArchitectures"] == ["arm64"], pillow.urn
    assert pillow.inputs["code"]["path"] == str(zip_path(PILLOW)), pillow.urn
    assert "pillow" in locked_packages(PILLOW.lock)


# --- Failures -----------------------------------------------------------------------------------------------

def test_async_invocations_retry_twice_within_an_hour_then_go_to_the_queue(dev_graph: Graph) -> None:
    config, function = one(dev_graph, INVOKE_CONFIG), one(dev_graph, FUNCTION)
    assert config.inputs["functionName"] == function.outputs["name"], config.urn
    assert "qualifier" not in config.inputs, config.urn  # S3 invokes the unqualified function
    assert config.inputs["maximumRetryAttempts"] == 2, config.urn
    assert config.inputs["maximumEventAgeInSeconds"] == 3600, config.urn
    assert config.inputs["destinationConfig"] == {"onFailure": {"destination": one(dev_graph, QUEUE).outputs["arn"]}}


def test_retries_and_event_age_follow_config(tuned_graph: Graph) -> None:
    config = one(tuned_graph, INVOKE_CONFIG)
    assert (config.inputs["maximumRetryAttempts"], config.inputs["maximumEventAgeInSeconds"]) == (0, 120), config.urn


def test_invoke_config_waits_for_the_role_policy(dev_graph: Graph) -> None:
    # Lambda checks that the execution role may send to the destination when the config is put.
    config = one(dev_graph, INVOKE_CONFIG)
    assert one(dev_graph, ROLE_POLICY).urn in config.dependencies, config.urn


def test_failure_queue_is_encrypted_and_keeps_records_14_days(dev_graph: Graph) -> None:
    queue = one(dev_graph, QUEUE)
    assert queue.inputs["sqsManagedSseEnabled"] is True, queue.urn
    assert queue.inputs["messageRetentionSeconds"] == 14 * 24 * 3600, queue.urn


@pytest.mark.parametrize(("key", "value", "allowed"), [
    ("imageMaxRetries", 3, "an integer from 0 to 2"),
    ("imageMaxRetries", -1, "an integer from 0 to 2"),
    ("imageMaxEventAgeSeconds", 59, "an integer from 60 to 21600"),
    ("imageMaxEventAgeSeconds", 21601, "an integer from 60 to 21600"),
])
def test_out_of_range_async_settings_fail_naming_the_key(program_graph: Capture, key: str, value: int,
                                                         allowed: str) -> None:
    with pytest.raises(ConfigError) as err:
        program_graph({key: value})
    assert str(err.value) == f'serverless-mesh:{key} must be {allowed}, got "{value}"'


# --- Component and exports ----------------------------------------------------------------------------------

def test_pipeline_registers_its_resources_under_one_component(dev_graph: Graph) -> None:
    names = {(r.type, r.name) for r in pipeline(dev_graph)}
    for expected in [(COMPONENT, "images"), (BUCKET, "images-bucket"), (TABLE, "images-metadata"),
                     (QUEUE, "images-failures"), (LAYER, "images-pillow"), (FUNCTION, "images-processor-function"),
                     (PERMISSION, "images-s3-invoke"), (NOTIFICATION, "images-trigger"),
                     (INVOKE_CONFIG, "images-async")]:
        assert expected in names, f"{expected} is not registered under the ImagePipeline component"


def test_exports_name_the_bucket_table_and_failure_queue(dev_graph: Graph) -> None:
    assert dev_graph.exports["imagesBucketName"] == one(dev_graph, BUCKET).outputs["bucket"]
    assert dev_graph.exports["imageMetadataTableName"] == one(dev_graph, TABLE).outputs["name"]
    assert dev_graph.exports["imageFailureQueueUrl"] == one(dev_graph, QUEUE).outputs["url"]
