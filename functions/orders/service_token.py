"""The order function's credential for the mesh: a short-lived ES256 service token, minted here, verified by the
ingress gateway (`mesh.service_auth`: RequestAuthentication + AuthorizationPolicy).

Its issuer, subject and audience are the stack's service identity, never a user's: a user's access token (HS256,
no such issuer) is refused at the ingress, and this token is refused by the API's authorizer. The private key is a
PEM in Secrets Manager (the stack generates it); the public half is inlined in the RequestAuthentication.

One token is reused until `refresh_margin` seconds before it expires, so a warm container signs about once per
`ttl - margin` seconds rather than on every call; the key itself is read once per container (Powertools caches it
for `KEY_CACHE_SECONDS`, so a rotated key reaches warm containers without a redeploy).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from functools import cache
from typing import Any

from functions.orders.settings import ServiceClaims

ALGORITHM = "ES256"
KEY_CACHE_SECONDS = 300


class ServiceTokenMinter:
    """Signs service tokens with the key `load_key` returns, caching one until it is close to expiry."""

    def __init__(self, claims: ServiceClaims, load_key: Callable[[], str],
                 clock: Callable[[], float] = time.time) -> None:
        self._claims = claims
        self._load_key = load_key
        self._clock = clock
        self._lock = threading.Lock()  # the order flow's calls may run on several threads of one container
        self._token = ""
        self._expires = 0.0

    def token(self) -> str:
        with self._lock:
            now = self._clock()
            if now < self._expires - self._claims.refresh_margin_seconds:
                return self._token
            issued = int(now)
            expires = issued + self._claims.ttl_seconds
            body = {"iss": self._claims.issuer, "sub": self._claims.subject, "aud": self._claims.audience,
                    "iat": issued, "nbf": issued, "exp": expires, "jti": uuid.uuid4().hex}
            import jwt  # deferred: PyJWT brings cryptography, which only a minted token needs

            self._token = jwt.encode(body, self._load_key(), algorithm=ALGORITHM)
            self._expires = float(expires)
            return self._token


class ServiceTokenAuth:
    """A `requests` auth callable (a session's `auth` may be any callable on the prepared request): every request
    the session sends carries the current service token. No `requests` import: only adapters talk HTTP."""

    def __init__(self, minter: ServiceTokenMinter) -> None:
        self._minter = minter

    def __call__(self, request: Any) -> Any:
        request.headers["Authorization"] = f"Bearer {self._minter.token()}"
        return request


def read_private_key(secret_arn: str) -> str:
    """The PEM private key stored as the secret's SecretString."""
    from aws_lambda_powertools.utilities import parameters  # deferred: only the create-order path needs it

    value = parameters.get_secret(secret_arn, max_age=KEY_CACHE_SECONDS)
    if not isinstance(value, str) or "PRIVATE KEY-----" not in value:
        raise RuntimeError("the service token secret holds no PEM private key")
    return value


@cache
def service_auth(secret_arn: str, claims: ServiceClaims) -> ServiceTokenAuth:
    """One minter per container (and key), built on first use."""
    return ServiceTokenAuth(ServiceTokenMinter(claims, lambda: read_private_key(secret_arn)))
