"""The TODO API's Lambda functions: one entry point per route in `handlers.py`.

Layers: `handlers` (events in, responses out) -> `logic` (rules, takes a `ports.TodoRepository`) -> `adapters`
(DynamoDB, the only module that talks to AWS). `models` are the shapes, `settings` the environment contract,
`permissions` the table actions each entry point needs (read by the Pulumi component for its IAM policies).
"""
