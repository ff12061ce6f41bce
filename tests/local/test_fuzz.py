"""Fuzz the twin's API from infra/openapi.yaml with schemathesis: no 5xx, every response conforms to the document.

Every operation of the document (TODOs, auth, orders through the authorizer), positive and negative data,
bounded (80 examples per mode) so it runs in well under two minutes.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from infra.openapi import SPEC_PATH
from tests.local.conftest import RunningTwin

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local-dev-twin")]

SCHEMA = schemathesis.openapi.from_path(SPEC_PATH)
EXAMPLES = 80


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzzed_requests_never_get_a_5xx_and_responses_conform(dev_twin: RunningTwin, mode: GenerationMode) -> None:
    strategy: st.SearchStrategy = SCHEMA.as_strategy(generation_mode=mode)

    # No shrinking: a failing request is reported as generated (shrinking would replay slow failures many times).
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=dev_twin.api_url, timeout=30)
        assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} " \
                                            f"{response.text[:300]}"
        # `nextToken` is opaque: any string is schema-valid, yet only tokens the API issued are accepted (the
        # documented 400), so "schema-valid data must be accepted" does not hold for it; every other check runs.
        case.validate_response(response, excluded_checks=[positive_data_acceptance])

    run()
