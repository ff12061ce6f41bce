"""The API Gateway engine: a REST API (payload v1) served on 127.0.0.1 from the REST API body in the graph.

Everything comes from the body Pulumi deploys (`infra.openapi.render` output): routes (path template + method),
each operation's `x-amazon-apigateway-integration` (`aws_proxy` to a function's invoke ARN, or `mock` for the
CORS preflight), the request validators (`x-amazon-apigateway-request-validators`), the gateway responses that
shape the errors the gateway answers itself, and REQUEST authorizers (`x-amazon-apigateway-authorizer`).

One job per module: `spec` (the body as routes), `messages` (a request and a response), `validation` (request
validators, with API Gateway's messages), `responses` (gateway responses), `authorizer` (REQUEST authorizers and
their cache), `iam` (policy evaluation), `events` (the proxy and authorizer events, also used by the handler
tests), `handler` (the request path: route, authorize, validate, integrate), `server` (HTTP on loopback) and
`engine` (the twin's engine). The package imports nothing itself, so `events` stays cheap to import.
"""
