"""docs/backend-openapi.yaml is a well-formed OpenAPI 3 document covering the contract, and the
sandbox's answers, success and error alike, match it (a small schema walk of our own)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

SPEC_PATH = Path(__file__).resolve().parents[2] / "docs" / "backend-openapi.yaml"
CONTRACT = {
    ("GET", "/v1/health"),
    ("POST", "/v1/customers/verify"),
    ("POST", "/v1/otp/send"),
    ("POST", "/v1/otp/verify"),
    ("GET", "/v1/customers/{id}"),
    ("GET", "/v1/customers/{id}/accounts"),
    ("GET", "/v1/customers/{id}/transactions"),
    ("GET", "/v1/customers/{id}/card-bill"),
    ("GET", "/v1/rates/deposit"),
    ("GET", "/v1/rates/loan"),
    ("GET", "/v1/rates/fx"),
    ("GET", "/v1/products"),
    ("POST", "/v1/sms/send"),
}
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
TYPES = {"object", "array", "string", "integer", "number", "boolean"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    loaded = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def resolve(spec: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert isinstance(ref, str) and ref.startswith("#/"), ref
        target: Any = spec
        for part in ref[2:].split("/"):
            assert isinstance(target, dict) and part in target, f"unresolved $ref {ref}"
            target = target[part]
        node = target
    return node


def check_schema(spec: dict[str, Any], schema: Any, where: str) -> None:
    """A schema uses only what the validator below understands, and is consistent."""
    schema = resolve(spec, schema)
    assert isinstance(schema, dict), where
    known = {"type", "properties", "required", "items", "enum", "pattern", "minimum", "maximum",
             "nullable", "description", "format", "example", "default", "allOf"}  # fmt: skip
    assert set(schema) <= known, (where, set(schema) - known)
    if "type" in schema:
        assert schema["type"] in TYPES, where
    if "pattern" in schema:
        re.compile(schema["pattern"])
    for name, sub in schema.get("properties", {}).items():
        check_schema(spec, sub, f"{where}.{name}")
    for name in schema.get("required", []):
        assert name in schema.get("properties", {}), f"{where}: required {name} not a property"
    if schema.get("type") == "array":
        check_schema(spec, schema["items"], f"{where}[]")
    for n, sub in enumerate(schema.get("allOf", [])):
        check_schema(spec, sub, f"{where}.allOf[{n}]")


def validate(spec: dict[str, Any], value: Any, schema: Any, where: str = "$") -> list[str]:
    """The ways value breaks schema (empty when it matches)."""
    schema = resolve(spec, schema)
    if value is None:
        return [] if schema.get("nullable") else [f"{where}: null"]
    problems: list[str] = []
    for sub in schema.get("allOf", []):
        problems += validate(spec, value, sub, where)
    kind = schema.get("type")
    checks = {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
    }
    if kind is not None and not checks[kind]:
        return [*problems, f"{where}: not {kind}: {value!r}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} not in {schema['enum']}")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        problems.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if "minimum" in schema and value < schema["minimum"]:
        problems.append(f"{where}: {value} below {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        problems.append(f"{where}: {value} above {schema['maximum']}")
    if isinstance(value, dict):
        problems += [f"{where}: missing {k}" for k in schema.get("required", []) if k not in value]
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                problems += validate(spec, value[key], sub, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for n, item in enumerate(value):
            problems += validate(spec, item, schema["items"], f"{where}[{n}]")
    return problems


def test_document_is_openapi_3(spec: dict[str, Any]) -> None:
    assert str(spec["openapi"]).startswith("3.")
    assert isinstance(spec["info"]["title"], str) and isinstance(spec["info"]["version"], str)
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    operation_ids: list[str] = []
    for path, item in spec["paths"].items():
        assert path.startswith("/"), path
        template_params = set(re.findall(r"\{(\w+)\}", path))
        shared = [resolve(spec, p) for p in item.get("parameters", [])]
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert method in METHODS, (path, method)
            operation_ids.append(operation["operationId"])
            params = shared + [resolve(spec, p) for p in operation.get("parameters", [])]
            for param in params:
                assert param["in"] in {"path", "query", "header", "cookie"}
                check_schema(spec, param["schema"], f"{path} {param['name']}")
            in_path = {p["name"] for p in params if p["in"] == "path"}
            assert in_path == template_params, path
            assert all(p["required"] for p in params if p["in"] == "path"), path
            if "requestBody" in operation:
                body = resolve(spec, operation["requestBody"])
                check_schema(spec, body["content"]["application/json"]["schema"], path)
            assert operation["responses"], path
            for status, response in operation["responses"].items():
                assert re.fullmatch(r"[1-5][0-9][0-9]|default", str(status)), (path, status)
                response = resolve(spec, response)
                assert isinstance(response["description"], str), (path, status)
                for media in response.get("content", {}).values():
                    check_schema(spec, media["schema"], f"{path} {status}")
    assert len(operation_ids) == len(set(operation_ids))
    for name, schema in spec["components"]["schemas"].items():
        check_schema(spec, schema, name)


def test_document_covers_the_contract(spec: dict[str, Any]) -> None:
    documented = {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS
    }
    assert documented == CONTRACT


def schema_for(spec: dict[str, Any], method: str, template: str, status: int) -> Any:
    operation = spec["paths"][template][method.lower()]
    response = resolve(spec, operation["responses"][str(status)])
    return response["content"]["application/json"]["schema"]


def test_sandbox_answers_match_the_document(spec: dict[str, Any], http: httpx.Client) -> None:
    people = http.get("/sandbox/customers").json()
    credit = next(p for p in people if any(c["type"] == "credit" for c in p["cards"]))
    debit_only = next(p for p in people if all(c["type"] == "debit" for c in p["cards"]))
    cid = credit["id"]
    card = credit["cards"][0]["number"]
    sent = http.post("/v1/otp/send", json={"customer_id": cid})
    request_id = sent.json()["request_id"]
    code = http.get("/sandbox/otp").json()[-1]["code"]
    calls: list[tuple[str, str, str, dict[str, Any] | None, int]] = [
        ("GET", "/v1/health", "/v1/health", None, 200),
        ("POST", "/v1/customers/verify", "/v1/customers/verify",
         {"card": card, "phone": credit["phone"]}, 200),
        ("POST", "/v1/customers/verify", "/v1/customers/verify",
         {"card": card, "phone": "1"}, 422),
        ("POST", "/v1/customers/verify", "/v1/customers/verify", {"card": 1}, 400),
        ("POST", "/v1/otp/send", "/v1/otp/send", {"customer_id": cid}, 200),
        ("POST", "/v1/otp/send", "/v1/otp/send", {"customer_id": "C0"}, 404),
        ("POST", "/v1/otp/verify", "/v1/otp/verify", {"request_id": request_id, "code": "x"}, 200),
        ("POST", "/v1/otp/verify", "/v1/otp/verify", {"request_id": request_id, "code": code}, 200),
        ("POST", "/v1/otp/verify", "/v1/otp/verify", {"request_id": "no", "code": code}, 404),
        ("GET", "/v1/customers/{id}", f"/v1/customers/{cid}", None, 200),
        ("GET", "/v1/customers/{id}", "/v1/customers/C0", None, 404),
        ("GET", "/v1/customers/{id}/accounts", f"/v1/customers/{cid}/accounts", None, 200),
        ("GET", "/v1/customers/{id}/transactions",
         f"/v1/customers/{cid}/transactions?limit=7", None, 200),
        ("GET", "/v1/customers/{id}/transactions",
         f"/v1/customers/{cid}/transactions?limit=0", None, 400),
        ("GET", "/v1/customers/{id}/card-bill", f"/v1/customers/{cid}/card-bill", None, 200),
        ("GET", "/v1/customers/{id}/card-bill",
         f"/v1/customers/{debit_only['id']}/card-bill", None, 404),
        ("GET", "/v1/rates/deposit", "/v1/rates/deposit", None, 200),
        ("GET", "/v1/rates/loan", "/v1/rates/loan", None, 200),
        ("GET", "/v1/rates/fx", "/v1/rates/fx", None, 200),
        ("GET", "/v1/products", "/v1/products", None, 200),
        ("POST", "/v1/sms/send", "/v1/sms/send",
         {"phone": credit["phone"], "text": "【银行】测试", "idempotency_key": "k1"}, 200),
        ("POST", "/v1/sms/send", "/v1/sms/send", {"phone": "x", "text": "t",
                                                  "idempotency_key": "k2"}, 400),
    ]  # fmt: skip
    seen = set()
    for method, template, path, body, status in calls:
        answer = http.request(method, path, json=body)
        assert answer.status_code == status, (path, answer.text)
        problems = validate(spec, answer.json(), schema_for(spec, method, template, status))
        assert problems == [], (path, status, problems)
        seen.add((method, template))
    assert seen == CONTRACT
    unauthorised = http.get("/v1/products", headers={"Authorization": "Bearer no"})
    assert unauthorised.status_code == 401
    assert validate(spec, unauthorised.json(), schema_for(spec, "GET", "/v1/products", 401)) == []
    http.post("/sandbox/faults", json={"down": True})
    for method, template in sorted(CONTRACT):
        path = template.replace("{id}", cid)
        answer = http.request(method, path, json={} if method == "POST" else None)
        assert answer.status_code == 503
        assert validate(spec, answer.json(), schema_for(spec, method, template, 503)) == []


def test_validator_sees_what_breaks_a_schema(spec: dict[str, Any]) -> None:
    account = {"$ref": "#/components/schemas/Account"}
    good = {"last4": "1234", "type": "savings", "currency": "CNY", "balance_fen": 1,
            "available_fen": 1}  # fmt: skip
    assert validate(spec, good, account) == []
    assert validate(spec, {**good, "balance_fen": 1.5}, account)
    assert validate(spec, {**good, "balance_fen": True}, account)
    assert validate(spec, {**good, "last4": "12345"}, account)
    assert validate(spec, {k: v for k, v in good.items() if k != "type"}, account)
    assert validate(spec, None, account)
