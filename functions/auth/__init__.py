"""Auth functions: register, token and the API Gateway REQUEST authorizer.

The token's issuer and audience are written once here; both the issuer (`token`) and the verifier (`authorizer`)
read them from this module. Besides the common shape (see `functions`): `passwords` (scrypt hashing) and `tokens`
(JWT issue and verification), both pure.
"""

from __future__ import annotations

ISSUER = "serverless-mesh/auth"
AUDIENCE = "serverless-mesh/api"
