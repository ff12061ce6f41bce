"""serverless-mesh: one stack, one config.

Deploys:
1. the TODO API: a DynamoDB table and one least-privilege Lambda per operation behind one REST API whose body is
   rendered from infra/openapi.yaml (request validation, CORS, stage throttling);

Every setting is read once, validated, from the stack config (infra/config.py); a bad value stops the preview
with a message naming the key. Exports every URL and name a user needs (`pulumi stack output`).
"""

import pulumi

from infra import config, openapi
from infra.api import HttpApi, HttpApiArgs
from infra.packaging import FUNCTIONS_DIR, dependency_layer
from infra.todos import TodosApi, TodosApiArgs

cfg, secrets = config.load()

deps_layer = dependency_layer("deps", FUNCTIONS_DIR / "requirements.txt",
                              description="Powertools, pydantic, PyJWT, requests for the API functions")

todos = TodosApi("todos", TodosApiArgs(
    memory_mb=cfg.lambda_memory_mb,
    timeout_seconds=cfg.lambda_timeout_seconds,
    log_retention_days=cfg.log_retention_days,
    protect_data=cfg.protect_data,
    layers=(deps_layer.arn,),  # type: ignore[attr-defined]
))

api = HttpApi("api", HttpApiArgs(
    spec=openapi.load_spec(),
    functions={**todos.functions},
    throttle_rate_limit=cfg.api_throttle_rate_limit,
    throttle_burst_limit=cfg.api_throttle_burst_limit,
))

pulumi.export("apiUrl", api.url)
pulumi.export("todosTableName", todos.table_name)
