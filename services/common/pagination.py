"""Opaque keyset cursors: the last key of a page, base64url-encoded JSON, validated on the way back in."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any

from fastapi import Query

from services.common.errors import Unprocessable

Limit = Annotated[int, Query(ge=1, le=100, description="Page size (1..100).")]
Cursor = Annotated[str | None, Query(max_length=512, description="`nextCursor` of the previous page.")]


def encode_cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, expected: type) -> Any:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise Unprocessable("cursor: not a cursor this service issued") from exc
    if not isinstance(key, expected) or isinstance(key, bool):
        raise Unprocessable("cursor: not a cursor this service issued")
    return key
