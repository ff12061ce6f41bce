"""Session-wide fixtures: dummy AWS credentials, a real moto server on loopback, and the twin's trace collector."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import moto_server, reset_moto

# schemathesis' pytest plugin imports its report writers only at session end, and pytest rewrites a plugin's modules
# as they are imported. On CPython 3.11.7 that late `ast.parse` can die with "AST constructor recursion depth
# mismatch" once some test has hit a RecursionError, failing the session after every test passed. Importing the
# writers here, before any test runs, keeps that parse out of the session's end.
with contextlib.suppress(ImportError):
    import schemathesis.reporting.allure
import schemathesis.reporting.html.writer
import schemathesis.reporting.junitxml  # noqa: F401

# No test may ever reach a real AWS account: credentials are dummies and every client is pointed
# at a loopback endpoint by the fixtures below.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_SESSION_TOKEN", "testing")
os.environ["AWS_DEFAULT_REGION"] = os.environ.get("AWS_DEFAULT_REGION", "eu-west-1")
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a moto server started for this test session (one per xdist worker)."""
    with moto_server(tmp_path_factory.mktemp("moto")) as url:
        yield url


@pytest.fixture
def aws_endpoint(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty moto account for one test; boto3 clients built in the test talk to it via AWS_ENDPOINT_URL."""
    reset_moto(moto_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    return moto_endpoint


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Any]:
    """The twin's OTLP/HTTP collector on a free loopback port, storing spans under the test's tmp dir."""
    from local.traces.collector import CollectorServer  # protobuf: only the tests that trace pay for it
    from local.traces.store import SpanStore

    server = CollectorServer(SpanStore(tmp_path)).start()
    try:
        yield server
    finally:
        server.stop()
