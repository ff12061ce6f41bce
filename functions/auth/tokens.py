"""JWT issue and verification (pure; the signing key is passed in).

PyJWT is imported on first use: it loads `cryptography` (~30 ms) for algorithms we never use, and `register`, which
shares this group's module, never touches a token.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from functions.auth import AUDIENCE, ISSUER
from functions.auth.errors import InvalidToken, WeakSigningKey

ALGORITHM = "HS256"
# RFC 7518 3.2: an HS256 key must be at least as long as the hash output.
MIN_KEY_BYTES = 32
# Small tolerance for clock skew between the issuing and the verifying container.
LEEWAY_SECONDS = 5


@dataclass(frozen=True, kw_only=True)
class Identity:
    """Who a verified token speaks for."""

    user_id: str
    username: str


def _check_key(key: str) -> bytes:
    raw = key.encode("utf-8")
    if len(raw) < MIN_KEY_BYTES:
        raise WeakSigningKey(f"the JWT signing key must be at least {MIN_KEY_BYTES} bytes")
    return raw


def issue_token(identity: Identity, *, key: str, ttl_seconds: int, now: datetime | None = None) -> str:
    """A signed HS256 JWT for `identity` that expires `ttl_seconds` from `now`."""
    import jwt

    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": identity.user_id,
        "username": identity.username,
        "iat": issued,
        "nbf": issued,
        "exp": issued + timedelta(seconds=ttl_seconds),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, _check_key(key), algorithm=ALGORITHM)


def verify_token(token: str, *, key: str) -> Identity:
    """The identity in `token` if its signature, expiry, issuer and audience all check out."""
    import jwt

    try:
        claims = jwt.decode(
            token,
            _check_key(key),
            # Pinning the algorithm list is what stops `alg: none` and algorithm-confusion tokens.
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    sub, username = claims.get("sub"), claims.get("username")
    if not isinstance(sub, str) or not sub or not isinstance(username, str):
        raise InvalidToken("token has no usable subject")
    return Identity(user_id=sub, username=username)


def bearer_token(header: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header value."""
    if not header:
        raise InvalidToken("no Authorization header")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise InvalidToken("Authorization header is not a Bearer token")
    return token
