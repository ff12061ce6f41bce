"""Stack config: defaults applied like the CLI, and every bad value stopped at preview with the key named."""

from __future__ import annotations

import pytest

from infra.config import ConfigError, parse_stack_config, project_schema, stack_config_values
from sim.capture import Graph
from tests.infra.conftest import Capture


def test_dev_stack_gets_pulumi_yaml_defaults_and_its_own_values() -> None:
    values = stack_config_values("dev")
    cfg = parse_stack_config(values.project_raw())
    assert cfg.canary_weight == 10  # Pulumi.dev.yaml
    assert cfg.api_throttle_rate_limit == project_schema()["apiThrottleRateLimit"]["default"]
    assert cfg.region == "eu-west-1"


def test_overrides_win_over_the_stack_file() -> None:
    cfg = parse_stack_config(stack_config_values("dev", {"canaryWeight": 50}).project_raw())
    assert cfg.canary_weight == 50


def test_canary_weight_zero_stays_zero() -> None:
    # the classic `get_int(k) or default` bug would turn 0 into the default
    cfg = parse_stack_config(stack_config_values("dev", {"canaryWeight": 0}).project_raw())
    assert cfg.canary_weight == 0


def test_every_declared_key_has_a_description_and_every_setting_is_declared() -> None:
    schema = project_schema()
    for key, spec in schema.items():
        assert spec.get("description"), f"{key} has no description in Pulumi.yaml"
        assert spec.get("type") in ("integer", "string", "boolean", "array"), key
        if spec["type"] == "array":
            assert spec.get("items", {}).get("type") == "string", f"{key}: an array declares its items' type"
    from infra.config import SECRET_KEYS, StackConfig

    aliases = {f.alias for f in StackConfig.model_fields.values()} - {None, "aws:region", "aws:profile"}
    assert aliases | SECRET_KEYS == set(schema), "Pulumi.yaml and StackConfig declare different keys"


@pytest.mark.parametrize("value", ["-1", "101", "abc", "1.5", ""])
def test_bad_canary_weight_names_the_key_and_the_range(value: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_stack_config(stack_config_values("dev", {"canaryWeight": value}).project_raw())
    assert str(err.value) == f'serverless-mesh:canaryWeight must be an integer from 0 to 100, got "{value}"'


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"logRetentionDays": 8}, "serverless-mesh:logRetentionDays must be one of CloudWatch's retention periods"),
        ({"apiThrottleRateLimit": 500, "apiThrottleBurstLimit": 100}, "serverless-mesh:apiThrottleBurstLimit (100)"),
        ({"lambdaTimeoutSeconds": 30}, "serverless-mesh:lambdaTimeoutSeconds must be an integer from 1 to 29"),
        ({"protectData": "yes please"}, "serverless-mesh:protectData must be true or false"),
        ({"databaseMode": "sqlite"}, "serverless-mesh:databaseMode must be one of rds, incluster"),
        ({"meshTimeout": "ten"}, "serverless-mesh:meshTimeout must be a positive duration"),
        ({"meshTimeout": "1s", "meshPerTryTimeout": "2s"}, "serverless-mesh:meshTimeout (1s) must be at least"),
        ({"retireStable": True}, "serverless-mesh:retireStable can only be true when serverless-mesh:canaryWeight"),
        ({"v1Replicas": 0}, "serverless-mesh:v1Replicas must be at least 1 while serverless-mesh:canaryWeight"),
        ({"nodeMinSize": 3, "nodeDesiredSize": 2}, "serverless-mesh:nodeDesiredSize (2) must lie between"),
        ({"authorizerCacheSeconds": 1000, "tokenTtlSeconds": 600}, "serverless-mesh:authorizerCacheSeconds (1000)"),
        ({"nope": 1}, "serverless-mesh:nope is not a setting of this project"),
        # A built image is tagged `<tag>-<12 hex>`, which must stay within Docker's 128 characters.
        ({"servicesTag": "v" * 116}, "serverless-mesh:servicesTag must be an image tag of letters, digits"),
        ({"clusterEndpointPublicCidrs": []}, "serverless-mesh:clusterEndpointPublicCidrs must be a non-empty list"),
        ({"clusterEndpointPublicCidrs": ["1.2.3.0/33"]}, "serverless-mesh:clusterEndpointPublicCidrs must be"),
        ({"clusterEndpointPublicCidrs": ["1.2.3.4/24"]}, "serverless-mesh:clusterEndpointPublicCidrs must be"),
        ({"clusterEndpointPublicCidrs": ["10.0.0.0/8"]}, "serverless-mesh:clusterEndpointPublicCidrs must be"),
        ({"clusterEndpointPublicCidrs": "0.0.0.0/0"}, "serverless-mesh:clusterEndpointPublicCidrs must be a list"),
        ({"clusterAdminArns": ["arn:aws:sts::123456789012:assumed-role/Admin/me"]},
         "serverless-mesh:clusterAdminArns must be a list of IAM role or user ARNs"),
        ({"clusterAdminArns": ["arn:aws:iam::123456789012:role/A", "arn:aws:iam::123456789012:role/A"]},
         "serverless-mesh:clusterAdminArns must be a list of distinct"),
        ({"canaryWeight": 100, "retireStable": True}, "serverless-mesh:retireStable needs "
                                                      "serverless-mesh:confirmStableDrained true"),
        ({"confirmStableDrained": True}, "serverless-mesh:confirmStableDrained is only set together with "
                                         "serverless-mesh:retireStable"),
        ({"storageClassName": "gp2"}, "serverless-mesh:storageClassName names a StorageClass of an existing cluster"),
        ({"storageClassName": "Fast_SSD", "kubeconfig": "x"}, "serverless-mesh:storageClassName must be a string"),
    ],
)
def test_bad_settings_fail_with_a_message_naming_the_keys(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_stack_config(stack_config_values("dev", overrides).project_raw())
    assert str(err.value).startswith(message), str(err.value)


def test_bad_config_fails_the_program_before_anything_is_registered(program_graph: Capture) -> None:
    from sim.capture import _RecordingMonitor

    recorded: list[object] = []
    original = _RecordingMonitor.RegisterResource

    def spy(self: _RecordingMonitor, request: object) -> object:
        recorded.append(getattr(request, "type", None))
        return original(self, request)

    _RecordingMonitor.RegisterResource = spy  # type: ignore[method-assign]
    try:
        with pytest.raises(ConfigError, match=r'canaryWeight must be an integer from 0 to 100, got "150"'):
            program_graph({"canaryWeight": "150"})
    finally:
        _RecordingMonitor.RegisterResource = original  # type: ignore[method-assign]
    registered = [t for t in recorded if t != "pulumi:pulumi:Stack"]
    assert registered == [], f"resources were registered before the config failed: {registered}"


def test_missing_secret_fails_naming_the_key(program_graph: Capture) -> None:
    with pytest.raises(Exception, match="jwtSigningKey"):
        program_graph(secrets={"dbPassword": "p" * 24})


def test_short_secret_is_rejected_without_showing_it(program_graph: Capture) -> None:
    with pytest.raises(ConfigError) as err:
        graph: Graph = program_graph(secrets={"jwtSigningKey": "short-key", "dbPassword": "p" * 24})
        del graph
    assert "jwtSigningKey must be a secret of at least 32 characters" in str(err.value)
    assert "short-key" not in str(err.value)


def test_endpoint_cidrs_and_admins_arrive_as_the_engine_hands_arrays_over() -> None:
    cfg = parse_stack_config(stack_config_values("dev", {
        "clusterEndpointPublicCidrs": ["1.2.3.0/24", "0.0.0.0/0"],
        "clusterAdminArns": ["arn:aws:iam::123456789012:role/ops/Admin", "arn:aws:iam::123456789012:user/ci"],
        "aws:profile": "ops"}).project_raw())
    assert cfg.cluster_endpoint_public_cidrs == ("1.2.3.0/24", "0.0.0.0/0")
    assert cfg.cluster_admin_arns == ("arn:aws:iam::123456789012:role/ops/Admin", "arn:aws:iam::123456789012:user/ci")
    assert cfg.aws_profile == "ops"
    defaults = parse_stack_config(stack_config_values("dev").project_raw())
    assert defaults.cluster_endpoint_public_cidrs == ("0.0.0.0/0",) and defaults.cluster_admin_arns == ()
