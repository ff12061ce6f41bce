"""API Gateway's request validators: required parameters present, the JSON body valid against the operation's
schema (draft 4), and the errors phrased as API Gateway's validator phrases them. With `strict_parameters`, query
and path values are checked against their schemas too (API Gateway does not, so the functions must)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jsonschema

from local.gateway.messages import Request
from local.gateway.responses import GatewayError
from local.gateway.spec import Route


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return {str: "string", list: "array", dict: "object", type(None): "null"}.get(type(value), "unknown")


def aws_message(err: jsonschema.ValidationError) -> str:
    """One validation error phrased as API Gateway's validator (java json-schema-validator) phrases it."""
    v, inst, val = err.validator, err.instance, err.validator_value
    if v == "required":
        missing = [p for p in val if isinstance(inst, dict) and p not in inst]
        text = f"object has missing required properties ({_json(missing)})"
    elif v == "additionalProperties":
        allowed = set((err.schema.get("properties") or {}).keys())
        extra = sorted(k for k in inst if k not in allowed) if isinstance(inst, dict) else []
        text = f"object instance has properties which are not allowed by the schema: {_json(extra)}"
    elif v == "minLength":
        text = f"string {_json(inst)} is too short (length: {len(inst)}, required minimum: {val})"
    elif v == "maxLength":
        text = f"string {_json(inst)} is too long (length: {len(inst)}, maximum allowed: {val})"
    elif v == "pattern":
        text = f"ECMA 262 regex {_json(val)} does not match input string {_json(inst)}"
    elif v == "type":
        kinds = val if isinstance(val, list) else [val]
        text = (f"instance type ({_type_name(inst)}) does not match any allowed primitive type "
                f"(allowed: {_json(kinds)})")
    elif v == "minProperties":
        text = f"object has too few properties (found {len(inst)} but schema requires at least {val})"
    elif v == "maxProperties":
        text = f"object has too many properties (found {len(inst)} but schema requires at most {val})"
    elif v == "minimum":
        text = f"numeric instance is lower than the required minimum (minimum: {val}, found: {inst})"
    elif v == "maximum":
        text = f"numeric instance is greater than the required maximum (maximum: {val}, found: {inst})"
    elif v == "enum":
        text = f"instance value ({_json(inst)}) not found in enum (possible values: {_json(val)})"
    else:
        text = err.message
    where = "/" + "/".join(str(p) for p in err.absolute_path)
    return text if where == "/" else f"{text} at {where}"


def validation_string(validator: jsonschema.protocols.Validator, instance: Any) -> str | None:
    errors = sorted(validator.iter_errors(instance), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    if not errors:
        return None
    return "[" + ", ".join(aws_message(e) for e in errors) + "]"


def coerce(value: str, schema: Mapping[str, Any]) -> Any:
    kind = schema.get("type")
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
        if kind == "boolean" and value in ("true", "false"):
            return value == "true"
    except ValueError:
        return value
    return value


def validate_request(route: Route, request: Request, path_params: Mapping[str, str], *,
                     strict_parameters: bool = False) -> None:
    """Raise the GatewayError API Gateway answers for a request its validator rejects."""
    if route.validate_params:
        query, headers = request.query(), request.lower_headers
        missing, invalid = [], []
        for param in route.parameters:
            where, name = param["in"], param["name"]
            if where == "query":
                values = query.get(name)
                value = values[-1] if values else None
            elif where == "header":
                value = headers.get(name.lower())
            elif where == "path":
                value = path_params.get(name)
            else:
                continue
            if value in (None, "") and param.get("required"):
                missing.append(name)
            elif value is not None and strict_parameters and param.get("schema"):
                schema = param["schema"]
                validator = jsonschema.Draft4Validator(schema)
                problem = validation_string(validator, coerce(value, schema))
                if problem:
                    invalid.append(f"{where} parameter {name}: {problem}")
        if missing:
            text = f"Missing required request parameters: [{', '.join(missing)}]"
            raise GatewayError("BAD_REQUEST_PARAMETERS", text, validation=text)
        if invalid:
            raise GatewayError("BAD_REQUEST_PARAMETERS", "Invalid request parameters",
                               validation="; ".join(invalid))
    # API Gateway picks the model by Content-Type (none sent: application/json); other types pass through.
    content_type = (request.lower_headers.get("content-type") or "application/json").split(";")[0].strip()
    if route.validate_body and route.body_validator is not None and content_type.lower() == "application/json":
        if not request.body.strip():
            if route.body_required:
                raise GatewayError("BAD_REQUEST_BODY", "Invalid request body",
                                   validation="[Request body is required]")
            return
        try:
            document = json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise GatewayError("BAD_REQUEST_BODY", "Invalid request body",
                               validation=f"[Invalid JSON: {exc}]") from None
        problem = validation_string(route.body_validator, document)
        if problem:
            raise GatewayError("BAD_REQUEST_BODY", "Invalid request body", validation=problem)
