"""The mock provider's contract: how a rejection names its resource, and what the output and invoke registries
answer for types and tokens they do and do not list."""

from __future__ import annotations

import pytest
from pulumi.runtime.mocks import MockCallArgs

from sim import outputs
from sim.capture import RecordingMocks
from sim.rules import CloudRejection, check


def test_a_rejection_is_prefixed_with_the_resource_type_and_name() -> None:
    with pytest.raises(CloudRejection) as err:
        check("aws:sqs/queue:Queue", "jobs", {"delaySeconds": 901})
    assert str(err.value) == "aws:sqs/queue:Queue 'jobs': delaySeconds 901 must be 0 to 900"
    assert err.value.why == "delaySeconds 901 must be 0 to 900"


def test_rules_for_every_type_name_the_type_they_rejected() -> None:
    with pytest.raises(CloudRejection, match=r"^kubernetes:core/v1:ConfigMap 'cm': metadata.name 'Bad_Name' is not "
                                             "a DNS-1123 name$"):
        check("kubernetes:core/v1:ConfigMap", "cm", {"metadata": {"name": "Bad_Name"}})


def test_a_type_without_rules_is_accepted() -> None:
    check("aws:sns/topic:Topic", "t", {"anything": "goes"})


def answer(type_token: str, name: str, inputs: dict[str, object]) -> tuple[str, dict[str, object]]:
    return outputs.answer(outputs.Registration(type_token, name, inputs, "eu-west-1"))


def test_a_listed_type_gets_the_provider_computed_outputs() -> None:
    rid, out = answer("aws:sqs/queue:Queue", "jobs", {"name": "jobs-q"})
    assert rid == "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs-q"
    assert out["arn"] == "arn:aws:sqs:eu-west-1:123456789012:jobs-q"


def test_an_unlisted_kubernetes_type_gets_an_autonamed_namespaced_object() -> None:
    rid, out = answer("kubernetes:core/v1:ConfigMap", "cm", {"metadata": {"namespace": "shop"}})
    name = out["metadata"]["name"]  # type: ignore[index]
    assert name.startswith("cm-") and len(name) == len("cm-") + 7
    assert rid == f"shop/{name}"


def test_autonames_are_stable_across_runs() -> None:
    assert answer("aws:dynamodb/table:Table", "todos", {}) == answer("aws:dynamodb/table:Table", "todos", {})


def test_an_unlisted_aws_type_gets_an_arn_of_its_service() -> None:
    _, out = answer("aws:sns/topic:Topic", "alerts", {})
    assert str(out["arn"]).startswith("arn:aws:sns:eu-west-1:123456789012:alerts/")


def test_reading_an_unlisted_type_names_where_to_add_it() -> None:
    with pytest.raises(NotImplementedError, match=r"sim/outputs\.py"):
        outputs.read("aws:sns/topic:Topic", "alerts", "arn:aws:sns:eu-west-1:123456789012:alerts", "eu-west-1")


def test_session_context_of_an_assumed_role_is_its_iam_role() -> None:
    answered, failures = RecordingMocks("eu-west-1").call(MockCallArgs(
        token="aws:iam/getSessionContext:getSessionContext",
        args={"arn": "arn:aws:sts::123456789012:assumed-role/Deployer/ci-run-7"}, provider=""))
    assert answered["issuerArn"] == "arn:aws:iam::123456789012:role/Deployer"
    assert failures == []


def test_an_unlisted_invoke_names_where_to_add_it() -> None:
    with pytest.raises(NotImplementedError, match=r"sim/invokes\.py"):
        RecordingMocks("eu-west-1").call(MockCallArgs(token="aws:ec2/getAmi:getAmi", args={}, provider=""))
