"""The canary demo app: ``GET /version`` answers which version (v1 or v2) served the request."""
