"""Cached, lazily built boto3 clients and resources.

Nothing is built, or even imported, at import: boto3 costs ~100-200 ms of cold start, so the first call imports
and builds the object, later calls reuse it (a Lambda container keeps it across invocations). botocore reads
`AWS_ENDPOINT_URL` itself, so tests and the local twin point every client at moto through the environment alone.
Building is locked because boto3 sessions are not thread-safe.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

_lock = threading.Lock()
_clients: dict[str, Any] = {}
_resources: dict[str, Any] = {}
_session: Any = None


def _get_session() -> Any:
    global _session
    if _session is None:
        import boto3.session  # deferred: importing boto3 costs cold-start time a function may not need

        _session = boto3.session.Session()
    return _session


def _config() -> Any:
    from botocore.config import Config

    # Standard retry mode backs off on throttling; a short connect timeout makes a dead endpoint fail fast, while
    # reads keep botocore's default (the function's own timeout bounds them).
    return Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5)


def client(name: str) -> Any:
    """The shared low-level client for service `name` (e.g. "dynamodb", "s3")."""
    found = _clients.get(name)
    if found is not None:
        return found
    with _lock:
        if name not in _clients:
            _clients[name] = _get_session().client(name, config=_config())
        return _clients[name]


def resource(name: str) -> Any:
    """The shared boto3 resource for service `name` (e.g. "dynamodb", "s3")."""
    found = _resources.get(name)
    if found is not None:
        return found
    with _lock:
        if name not in _resources:
            _resources[name] = _get_session().resource(name, config=_config())
        return _resources[name]


def client_error() -> type[ClientError]:
    """botocore's `ClientError`, for `except aws.client_error() as exc:` without importing botocore at module level.

    Python evaluates an `except` expression only when an exception is propagating, so botocore is imported only
    then (and by that time a client has loaded it anyway).
    """
    from botocore.exceptions import ClientError

    return ClientError


def reset() -> None:
    """Forget every cached client, e.g. after a test changed `AWS_ENDPOINT_URL` or the region."""
    global _session
    with _lock:
        _clients.clear()
        _resources.clear()
        _session = None
