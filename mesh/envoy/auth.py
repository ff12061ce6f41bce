"""RequestAuthentication and AuthorizationPolicy -> Envoy `jwt_authn` and `rbac` HTTP filters for one workload.

What istiod programs into a gateway for these objects, reduced to the fields our specs use (anything else raises
`UnsupportedSpec`, so the twin never enforces less than the cluster):

* a policy applies to a workload when it lives in the workload's namespace (or the root namespace `istio-system`)
  and its `selector.matchLabels` are a subset of the workload's labels (no selector: every workload there);
* every `jwtRules` entry is a `jwt_authn` provider (issuer, audiences, inline `jwks`, `Authorization: Bearer`,
  `forwardOriginalToken`); the requirement is "any provider, or no token at all" (`allow_missing`), as istiod
  writes it: a token that is present but fails (signature, expiry, audience, an unknown issuer) is 401, a request
  without one goes on unauthenticated (an audience mismatch is jwt_authn's 403); `clock_skew_seconds` stays at
  Envoy's default of 60, as istiod leaves it, so a token is refused from a minute after its `exp`;
* DENY policies become an `rbac` filter with action DENY, evaluated before one `rbac` filter with action ALLOW
  holding every ALLOW policy's rules (so a workload with any ALLOW policy refuses, with 403, whatever none allows;
  an ALLOW policy without rules allows nothing);
* a rule is one RBAC policy: its `to` operations OR'ed (within one, methods AND paths AND hosts, each list OR'ed)
  as permissions, its `from` sources OR'ed and its `when` conditions AND'ed as principals;
* `requestPrincipals` (`<iss>/<sub>`, `*`, `<iss>/*`) and `request.auth.audiences` match the verified token's
  claims, which `jwt_authn` writes to its dynamic metadata under `jwt_payload` (Istio keeps them in its own
  `istio_authn` filter's metadata, which upstream Envoy does not have; the claims are the same).

`jwksUri` is refused: the twin has no network to fetch a key set from, and the stack inlines its `jwks` anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mesh.envoy.common import ListenerSpec, Resource, UnsupportedSpec, name_and_namespace

TYPE_JWT_AUTHN = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"
TYPE_RBAC = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
JWT_FILTER = "envoy.filters.http.jwt_authn"
RBAC_FILTER = "envoy.filters.http.rbac"
PAYLOAD_KEY = "jwt_payload"
ROOT_NAMESPACE = "istio-system"

_POLICY_KEYS = {"selector", "action", "rules"}
_RULE_KEYS = {"from", "to", "when"}
_SOURCE_KEYS = {"requestPrincipals", "notRequestPrincipals"}
_OPERATION_KEYS = {"methods", "paths", "hosts"}
_JWT_RULE_KEYS = {"issuer", "audiences", "jwks", "forwardOriginalToken"}
_NEVER = {"not_id": {"any": True}}


def applies_to(resource: Mapping[str, Any], listener: ListenerSpec) -> bool:
    """Whether a security policy selects the workload behind `listener`."""
    if listener.workload_namespace is None:
        return False
    _, namespace = name_and_namespace(resource)
    spec = resource.get("spec") or {}
    for key in ("targetRef", "targetRefs"):
        if spec.get(key):
            raise UnsupportedSpec(f"{resource.get('kind')}: {key} (Gateway API attachment) is not translated")
    if namespace not in (listener.workload_namespace, ROOT_NAMESPACE):
        return False
    wanted = (spec.get("selector") or {}).get("matchLabels") or {}
    labels = dict(listener.workload_labels)
    return all(labels.get(k) == v for k, v in wanted.items())


# --- jwt_authn ---------------------------------------------------------------------------------------------

def _provider(rule: Mapping[str, Any], where: str) -> dict[str, Any]:
    unknown = set(rule) - _JWT_RULE_KEYS
    if unknown:
        raise UnsupportedSpec(f"{where}: {sorted(unknown)} not translated (jwksUri needs a key server the twin "
                              "does not have)")
    if not rule.get("jwks"):
        raise UnsupportedSpec(f"{where}: an inline jwks is required")
    provider: dict[str, Any] = {
        "issuer": rule["issuer"],
        "local_jwks": {"inline_string": rule["jwks"]},
        "from_headers": [{"name": "Authorization", "value_prefix": "Bearer "}],
        "forward": bool(rule.get("forwardOriginalToken", False)),
        "payload_in_metadata": PAYLOAD_KEY,
    }
    if rule.get("audiences"):
        provider["audiences"] = list(rule["audiences"])
    return provider


def jwt_filter(request_authentications: Sequence[Mapping[str, Any]]) -> Resource | None:
    providers: dict[str, Any] = {}
    issuers: list[str] = []
    for ra in request_authentications:
        name, namespace = name_and_namespace(ra)
        for i, rule in enumerate((ra.get("spec") or {}).get("jwtRules") or []):
            providers[f"origins-{len(providers)}"] = _provider(rule, f"{namespace}/{name}.jwtRules[{i}]")
            issuers.append(rule["issuer"])
    if not providers:
        return None
    requirements: list[dict[str, Any]] = [{"provider_name": p} for p in providers]
    requirements.append({"allow_missing": {}})
    config = {
        "@type": TYPE_JWT_AUTHN,
        "providers": providers,
        "rules": [{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": requirements}}}],
        "bypass_cors_preflight": True,
    }
    return {"name": JWT_FILTER, "typed_config": config}


# --- rbac --------------------------------------------------------------------------------------------------

def _or(items: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return items[0] if len(items) == 1 else {key: {"rules" if key.endswith("rules") else "ids": items}}


def _claim(name: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"filter": JWT_FILTER, "path": [{"key": PAYLOAD_KEY}, {"key": name}], "value": value}}


def _claim_is(name: str, text: str) -> dict[str, Any]:
    """A claim equal to `text`, or a list claim (`aud` may be either) containing it."""
    exact = {"string_match": {"exact": text}}
    return {"or_ids": {"ids": [_claim(name, exact), _claim(name, {"list_match": {"one_of": exact}})]}}


def _request_principal(value: str, issuers: Sequence[str]) -> dict[str, Any]:
    if value == "*":
        return _claim("iss", {"present_match": True})
    for issuer in sorted(issuers, key=len, reverse=True):
        if value.startswith(issuer + "/"):
            subject = value[len(issuer) + 1:]
            iss = _claim("iss", {"string_match": {"exact": issuer}})
            sub = _claim("sub", {"present_match": True} if subject == "*" else {"string_match": {"exact": subject}})
            return {"and_ids": {"ids": [iss, sub]}}
    return _NEVER  # no RequestAuthentication issues that principal: nothing can present it


def _source(source: Mapping[str, Any], issuers: Sequence[str], where: str) -> dict[str, Any]:
    unknown = set(source) - _SOURCE_KEYS
    if unknown:
        raise UnsupportedSpec(f"{where}: {sorted(unknown)} not translated (mTLS identities have no local "
                              "equivalent)")
    ids: list[dict[str, Any]] = []
    if source.get("requestPrincipals"):
        ids.append(_or([_request_principal(v, issuers) for v in source["requestPrincipals"]], "or_ids"))
    if source.get("notRequestPrincipals"):
        ids.append({"not_id": _or([_request_principal(v, issuers) for v in source["notRequestPrincipals"]],
                                  "or_ids")})
    return {"and_ids": {"ids": ids}} if ids else {"any": True}


def _condition(condition: Mapping[str, Any], where: str) -> dict[str, Any]:
    key, values = condition.get("key", ""), condition.get("values") or []
    if set(condition) - {"key", "values"} or not values:
        raise UnsupportedSpec(f"{where}: only `key` with `values` is translated")
    if key == "request.auth.audiences":
        claim = "aud"
    elif key.startswith("request.auth.claims[") and key.endswith("]"):
        claim = key[len("request.auth.claims["):-1]
    else:
        raise UnsupportedSpec(f"{where}: condition key {key!r} is not translated")
    return _or([_claim_is(claim, v) for v in values], "or_ids")


def _path(value: str) -> dict[str, Any]:
    if value == "*":
        return {"any": True}
    if value.endswith("*"):
        match: dict[str, Any] = {"prefix": value[:-1]}
    elif value.startswith("*"):
        match = {"suffix": value[1:]}
    else:
        match = {"exact": value}
    return {"url_path": {"path": match}}


def _host(value: str) -> dict[str, Any]:
    if value.endswith("*"):
        match: dict[str, Any] = {"prefix": value[:-1], "ignore_case": True}
    elif value.startswith("*"):
        match = {"suffix": value[1:], "ignore_case": True}
    else:
        match = {"exact": value, "ignore_case": True}
    return {"header": {"name": ":authority", "string_match": match}}


def _operation(operation: Mapping[str, Any], where: str) -> dict[str, Any]:
    unknown = set(operation) - _OPERATION_KEYS
    if unknown:
        raise UnsupportedSpec(f"{where}: {sorted(unknown)} not translated")
    rules: list[dict[str, Any]] = []
    if operation.get("methods"):
        rules.append(_or([{"header": {"name": ":method", "string_match": {"exact": m}}}
                          for m in operation["methods"]], "or_rules"))
    if operation.get("paths"):
        rules.append(_or([_path(p) for p in operation["paths"]], "or_rules"))
    if operation.get("hosts"):
        rules.append(_or([_host(h) for h in operation["hosts"]], "or_rules"))
    return {"and_rules": {"rules": rules}} if rules else {"any": True}


def _rbac_policy(rule: Mapping[str, Any], issuers: Sequence[str], where: str) -> dict[str, Any]:
    unknown = set(rule) - _RULE_KEYS
    if unknown:
        raise UnsupportedSpec(f"{where}: {sorted(unknown)} not translated")
    tos = [t.get("operation") or {} for t in rule.get("to") or []]
    if any(set(t) - {"operation"} for t in rule.get("to") or []):
        raise UnsupportedSpec(f"{where}.to: only `operation` is translated")
    permissions = [_operation(op, f"{where}.to[{i}]") for i, op in enumerate(tos)] or [{"any": True}]
    sources = [f.get("source") or {} for f in rule.get("from") or []]
    ids: list[dict[str, Any]] = []
    if sources:
        ids.append(_or([_source(s, issuers, f"{where}.from[{i}]") for i, s in enumerate(sources)], "or_ids"))
    ids += [_condition(c, f"{where}.when[{i}]") for i, c in enumerate(rule.get("when") or [])]
    principal = {"and_ids": {"ids": ids}} if ids else {"any": True}
    return {"permissions": permissions, "principals": [principal]}


def rbac_filters(authorization_policies: Sequence[Mapping[str, Any]], issuers: Sequence[str]) -> list[Resource]:
    """The DENY filter (if any DENY policy applies) then the ALLOW filter (if any ALLOW policy applies)."""
    by_action: dict[str, dict[str, Any]] = {"DENY": {}, "ALLOW": {}}
    for ap in authorization_policies:
        name, namespace = name_and_namespace(ap)
        spec = ap.get("spec") or {}
        unknown = set(spec) - _POLICY_KEYS
        if unknown:
            raise UnsupportedSpec(f"{namespace}/{name}: {sorted(unknown)} not translated")
        action = spec.get("action", "ALLOW")
        if action not in by_action:
            raise UnsupportedSpec(f"{namespace}/{name}: action {action} is not translated")
        if action == "DENY" and not spec.get("rules"):
            continue  # a DENY policy without rules denies nothing
        by_action[action].setdefault(f"ns[{namespace}]-policy[{name}]", {})
        for i, rule in enumerate(spec.get("rules") or []):
            where = f"{namespace}/{name}.rules[{i}]"
            by_action[action][f"ns[{namespace}]-policy[{name}]-rule[{i}]"] = _rbac_policy(rule, issuers, where)
    out: list[Resource] = []
    for action in ("DENY", "ALLOW"):
        names = by_action[action]
        if not names:
            continue
        policies = {k: v for k, v in names.items() if v}  # the bare name only marks "this workload has a policy"
        out.append({"name": RBAC_FILTER, "typed_config": {"@type": TYPE_RBAC,
                                                          "rules": {"action": action, "policies": policies}}})
    return out


def security_filters(listener: ListenerSpec, request_authentications: Sequence[Mapping[str, Any]],
                     authorization_policies: Sequence[Mapping[str, Any]]) -> list[Resource]:
    """The HTTP filters before the router for the workload behind `listener`, in Envoy's order."""
    ras = [ra for ra in request_authentications if applies_to(ra, listener)]
    aps = [ap for ap in authorization_policies if applies_to(ap, listener)]
    issuers = [r["issuer"] for ra in ras for r in (ra.get("spec") or {}).get("jwtRules") or []]
    jwt = jwt_filter(ras)
    return ([jwt] if jwt else []) + rbac_filters(aps, issuers)
