"""The opaque `nextToken` of every paged list: base64url (unpadded) of a compact JSON object.

Only the wire format lives here; each API checks the decoded object's shape itself, since only it knows which keys
it issued and whose they are.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


def encode(key: dict[str, Any]) -> str:
    """The token for `key` (e.g. DynamoDB's LastEvaluatedKey with plain values)."""
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode(token: str) -> object | None:
    """The JSON value in `token`, or None when it is not base64url of JSON (the caller answers 400)."""
    try:
        return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
