"""The JWT signing key, fetched from Secrets Manager once per container (Powertools caches it for `max_age`)."""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters

# Re-read the secret every few minutes so a rotated key reaches warm containers without a redeploy.
CACHE_SECONDS = 300


def get_signing_key(secret_arn: str) -> str:
    """The SecretString of `secret_arn` (the raw HS256 key)."""
    value = parameters.get_secret(secret_arn, max_age=CACHE_SECONDS)
    if not isinstance(value, str) or not value:
        raise RuntimeError("the JWT secret has no SecretString")
    return value
