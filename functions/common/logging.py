"""Structured JSON logging (Powertools Logger) with the request id on every line.

Decorate each entry point with `@logger.inject_lambda_context(correlation_id_path=API_GATEWAY_REST,
clear_state=True)`: every line then carries `function_request_id` (the Lambda request id) and `correlation_id`
(API Gateway's request id, the one a client sees in `x-amzn-RequestId`).
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

API_GATEWAY_REST = correlation_paths.API_GATEWAY_REST

__all__ = ["API_GATEWAY_REST", "Logger", "get_logger"]


def get_logger(service: str) -> Logger:
    """A JSON logger named after `POWERTOOLS_SERVICE_NAME` (falling back to `service`), level from `LOG_LEVEL`."""
    # Logger instances with the same service share one stdlib logger, so calling this per module is cheap.
    name = os.environ.get("POWERTOOLS_SERVICE_NAME") or service
    level = os.environ.get("LOG_LEVEL") or "INFO"
    return Logger(service=name, level=level.upper())
