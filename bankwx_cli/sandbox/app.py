"""The sandbox as a pure ASGI application: the back-end contract under ``/v1/`` (a bearer key)
and the ``/sandbox/`` control endpoints for tests (no key: the sandbox listens on loopback).

Every ``/v1/`` request is counted per endpoint (``GET /sandbox/state``), then waits the delay,
then fails when the sandbox is down or the fail rate draws it (503), then checks the key (401),
then is answered. Errors are ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import json
import logging
import random
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from bankwx_cli.sandbox.data import Bank
from bankwx_cli.sandbox.messaging import AlertFeed, SmsGateway

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Result = tuple[int, Any]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
OTP_TTL_S = 300
MAX_ADVANCE_S = 10 * 366 * 24 * 3600  # ten years at a time
VERSION = "sandbox-1"


class Refusal(Exception):
    """An error answer: HTTP status, error code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class Faults:
    delay_ms: int = 0
    fail_rate: float = 0.0
    down: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"delay_ms": self.delay_ms, "fail_rate": self.fail_rate, "down": self.down}


@dataclass
class Otp:
    request_id: str
    customer_id: str
    phone: str
    code: str
    sent_at: float
    used: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "phone": self.phone,
            "code": self.code,
            "sent_at": _iso(self.sent_at),
            "request_id": self.request_id,
            "customer_id": self.customer_id,
            "used": self.used,
        }


@dataclass
class SandboxState:
    """What the control endpoints read and change. ``initial`` faults come back on reset."""

    bank: Bank
    key: str
    initial: Faults = field(default_factory=Faults)
    faults: Faults = field(default_factory=Faults)
    offset_s: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0  # /v1/ requests being answered now (delays included)
    otps: list[Otp] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)
    lock: threading.Lock = field(default_factory=threading.Lock)
    sms: SmsGateway = field(default_factory=SmsGateway)  # sandbox/sms.py
    alerts: AlertFeed = field(default_factory=AlertFeed)

    def __post_init__(self) -> None:
        self.faults = Faults(**self.initial.to_json())
        self.rng = random.Random(self.bank.seed)

    def now(self) -> float:
        return time.time() + self.offset_s

    def reset(self) -> None:
        with self.lock:
            self.bank.reset()
            self.faults = Faults(**self.initial.to_json())
            self.offset_s = 0.0
            self.calls.clear()
            self.otps.clear()
            self.sms.clear()
            self.rng = random.Random(self.bank.seed)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:]


# --- routes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.body or b"null")
        except (ValueError, RecursionError):
            raise Refusal(400, "bad_request", "the body is not JSON") from None
        if not isinstance(data, dict):
            raise Refusal(400, "bad_request", "the body is not a JSON object")
        return data


Handler = Callable[[SandboxState, Request], Result | Awaitable[Result]]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Handler


ROUTES: list[Route] = []


def route(method: str, template: str) -> Callable[[Handler], Handler]:
    pattern = re.compile(
        "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
    )

    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(method, template, pattern, handler))
        return handler

    return register


def find(method: str, path: str) -> tuple[Route | None, dict[str, str], set[str]]:
    allowed: set[str] = set()
    for r in ROUTES:
        match = r.pattern.match(path)
        if match:
            if r.method == method:
                return r, match.groupdict(), allowed
            allowed.add(r.method)
    return None, {}, allowed


def _string(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise Refusal(400, "bad_request", f"'{key}' must be a non-empty string")
    return value


def _known_customer(state: SandboxState, cid: str) -> None:
    if state.bank.customer(cid) is None:
        raise Refusal(404, "unknown_customer", f"no customer '{cid}'")


@route("GET", "/v1/health")
def health(state: SandboxState, request: Request) -> Result:
    return 200, {"status": "ok", "version": VERSION, "time": _iso(state.now())}


@route("POST", "/v1/customers/verify")
def verify_customer(state: SandboxState, request: Request) -> Result:
    data = request.json()
    card, phone = _string(data, "card"), _string(data, "phone")
    found = state.bank.card(card)
    if found is None or not hmac.compare_digest(str(found["phone"]), phone):
        # One answer for an unknown card and a mismatch: nothing to learn from the difference.
        raise Refusal(422, "no_match", "the card and phone do not match a customer")
    return 200, {"customer_id": found["customer_id"], "card_last4": card[-4:]}


@route("POST", "/v1/otp/send")
def send_otp(state: SandboxState, request: Request) -> Result:
    cid = _string(request.json(), "customer_id")
    customer = state.bank.customer(cid)
    if customer is None:
        raise Refusal(404, "unknown_customer", f"no customer '{cid}'")
    with state.lock:
        otp = Otp(
            request_id=secrets.token_hex(8),
            customer_id=cid,
            phone=str(customer["phone"]),
            code=f"{state.rng.randrange(1_000_000):06d}",
            sent_at=state.now(),
        )
        state.otps.append(otp)
    return 200, {
        "request_id": otp.request_id,
        "expires_in": OTP_TTL_S,
        "phone_masked": _mask_phone(otp.phone),
    }


@route("POST", "/v1/otp/verify")
def verify_otp(state: SandboxState, request: Request) -> Result:
    data = request.json()
    request_id, code = _string(data, "request_id"), _string(data, "code")
    with state.lock:
        otp = next((o for o in state.otps if o.request_id == request_id), None)
        if otp is None:
            raise Refusal(404, "unknown_request", f"no code was sent with request '{request_id}'")
        if otp.used:
            return 200, {"valid": False, "reason": "used"}
        if state.now() >= otp.sent_at + OTP_TTL_S:
            return 200, {"valid": False, "reason": "expired"}
        if not hmac.compare_digest(otp.code, code):
            return 200, {"valid": False, "reason": "wrong"}
        otp.used = True
    return 200, {"valid": True, "reason": None}


@route("GET", "/v1/customers/{id}")
def customer(state: SandboxState, request: Request) -> Result:
    cid = request.params["id"]
    found = state.bank.customer(cid)
    if found is None:
        raise Refusal(404, "unknown_customer", f"no customer '{cid}'")
    cards = state.bank.all(
        "SELECT number, type FROM cards WHERE customer_id = :c ORDER BY type DESC, number",
        {"c": cid},
    )
    return 200, {
        "id": found["id"],
        "name": found["name"],
        "cards": [{"last4": r["number"][-4:], "type": r["type"]} for r in cards],
        "phone": found["phone"],  # the alerts' SMS fallback sends to it
    }


@route("GET", "/v1/customers/{id}/accounts")
def accounts(state: SandboxState, request: Request) -> Result:
    cid = request.params["id"]
    _known_customer(state, cid)
    rows = state.bank.all(
        "SELECT number, type, currency, balance_fen, available_fen FROM accounts "
        "WHERE customer_id = :c ORDER BY type, number",
        {"c": cid},
    )
    return 200, {
        "accounts": [
            {
                "last4": r["number"][-4:],
                "type": r["type"],
                "currency": r["currency"],
                "balance_fen": r["balance_fen"],
                "available_fen": r["available_fen"],
            }
            for r in rows
        ]
    }


@route("GET", "/v1/customers/{id}/transactions")
def transactions(state: SandboxState, request: Request) -> Result:
    cid = request.params["id"]
    text = request.query.get("limit", "10")
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise Refusal(400, "bad_request", "'limit' must be an integer from 1 to 100")
    _known_customer(state, cid)
    rows = state.bank.all(
        "SELECT id, at, description, amount_fen, currency, account_number FROM transactions "
        "WHERE customer_id = :c ORDER BY at DESC, id DESC LIMIT :n",
        {"c": cid, "n": int(text)},
    )
    return 200, {
        "transactions": [
            {
                "id": r["id"],
                "at": r["at"],
                "description": r["description"],
                "amount_fen": r["amount_fen"],
                "currency": r["currency"],
                "account_last4": r["account_number"][-4:],
            }
            for r in rows
        ]
    }


@route("GET", "/v1/customers/{id}/card-bill")
def card_bill(state: SandboxState, request: Request) -> Result:
    cid = request.params["id"]
    _known_customer(state, cid)
    row = state.bank.one(
        "SELECT card_number, period, statement_date, due_date, amount_fen, min_payment_fen, "
        "currency FROM card_bills WHERE customer_id = :c ORDER BY card_number LIMIT 1",
        {"c": cid},
    )
    if row is None:
        raise Refusal(404, "no_card_bill", f"customer '{cid}' has no credit card bill")
    return 200, {
        "card_last4": row["card_number"][-4:],
        "period": row["period"],
        "statement_date": row["statement_date"],
        "due_date": row["due_date"],
        "amount_fen": row["amount_fen"],
        "min_payment_fen": row["min_payment_fen"],
        "currency": row["currency"],
    }


def _rates(state: SandboxState, kind: str) -> Result:
    rows = state.bank.all(
        "SELECT term, name, rate FROM rates WHERE kind = :k ORDER BY position", {"k": kind}
    )
    as_of = state.bank.scalar("SELECT value FROM meta WHERE key = 'rates_as_of'")
    return 200, {"as_of": as_of, "rates": [dict(r) for r in rows]}


@route("GET", "/v1/rates/deposit")
def deposit_rates(state: SandboxState, request: Request) -> Result:
    return _rates(state, "deposit")


@route("GET", "/v1/rates/loan")
def loan_rates(state: SandboxState, request: Request) -> Result:
    return _rates(state, "loan")


@route("GET", "/v1/rates/fx")
def fx_rates(state: SandboxState, request: Request) -> Result:
    rows = state.bank.all("SELECT currency, name, unit, buy, sell FROM fx_rates ORDER BY position")
    as_of = state.bank.scalar("SELECT value FROM meta WHERE key = 'rates_as_of'")
    return 200, {"as_of": as_of, "rates": [dict(r) for r in rows]}


@route("GET", "/v1/products")
def products(state: SandboxState, request: Request) -> Result:
    rows = state.bank.all(
        "SELECT id, name, type, rate, min_amount_fen, risk, description FROM products ORDER BY id"
    )
    return 200, {"products": [dict(r) for r in rows]}


# --- control endpoints (tests) -----------------------------------------------------------------


@route("GET", "/sandbox/customers")
def control_customers(state: SandboxState, request: Request) -> Result:
    return 200, state.bank.customers()


@route("GET", "/sandbox/otp")
def control_otp(state: SandboxState, request: Request) -> Result:
    with state.lock:
        return 200, [o.to_json() for o in state.otps]


@route("GET", "/sandbox/state")
def control_state(state: SandboxState, request: Request) -> Result:
    with state.lock:
        return 200, {
            "calls": dict(sorted(state.calls.items())),
            "calls_total": sum(state.calls.values()),
            "in_flight": state.in_flight,
            "faults": state.faults.to_json(),
            "now": _iso(state.now()),
            "offset_s": state.offset_s,
            "otp_sent": len(state.otps),
            "seed": state.bank.seed,
        }


@route("POST", "/sandbox/faults")
def control_faults(state: SandboxState, request: Request) -> Result:
    data = request.json()
    unknown = sorted(set(data) - {"delay_ms", "fail_rate", "down"})
    if unknown:
        raise Refusal(400, "bad_request", f"unknown fault {', '.join(unknown)}")
    delay = data.get("delay_ms", state.faults.delay_ms)
    rate = data.get("fail_rate", state.faults.fail_rate)
    down = data.get("down", state.faults.down)
    if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= 600_000:
        raise Refusal(400, "bad_request", "'delay_ms' must be an integer from 0 to 600000")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
        raise Refusal(400, "bad_request", "'fail_rate' must be a number from 0 to 1")
    if not isinstance(down, bool):
        raise Refusal(400, "bad_request", "'down' must be true or false")
    with state.lock:
        state.faults = Faults(delay, float(rate), down)
        return 200, state.faults.to_json()


@route("POST", "/sandbox/clock")
def control_clock(state: SandboxState, request: Request) -> Result:
    advance = request.json().get("advance")
    if (
        isinstance(advance, bool)
        or not isinstance(advance, int | float)
        or not 0 <= advance <= MAX_ADVANCE_S
    ):
        raise Refusal(
            400, "bad_request", f"'advance' must be a number of seconds from 0 to {MAX_ADVANCE_S}"
        )
    with state.lock:
        state.offset_s += float(advance)
        return 200, {"now": _iso(state.now()), "offset_s": state.offset_s}


@route("POST", "/sandbox/reset")
def control_reset(state: SandboxState, request: Request) -> Result:
    state.reset()
    return 200, {"reset": True}


# --- the ASGI application -----------------------------------------------------------------------


class SandboxApp:
    """ASGI entry point over a ``SandboxState``."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif scope["type"] == "http":
            status, value = await self._answer(scope, receive)
            await _send_json(send, status, value)

    async def _answer(self, scope: Scope, receive: Receive) -> Result:
        try:
            body = await _read_body(receive)
        except Refusal as exc:
            return exc.status, _error(exc.code, exc.message)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        method, path = scope["method"], scope["path"]
        # Routes match the path as sent: an escaped '/' inside a customer id stays in the id.
        raw = scope.get("raw_path")
        routed = raw.decode("latin-1").split("?", 1)[0] if raw else path
        found, params, allowed = find(method, routed)
        params = {k: unquote(v) for k, v in params.items()}
        if found is None:
            if allowed:
                return 405, _error("method_not_allowed", f"use {' or '.join(sorted(allowed))}")
            return 404, _error("not_found", f"no endpoint {path}")
        request = Request(method, path, query, headers, body, params)
        state = self.state
        if not found.template.startswith("/v1/"):
            return await self._handle(found, request)
        with state.lock:
            state.in_flight += 1
        try:
            refused = await self._gate(found.template, request)
            return refused if refused is not None else await self._handle(found, request)
        finally:
            with state.lock:
                state.in_flight -= 1

    async def _handle(self, found: Route, request: Request) -> Result:
        state, method = self.state, request.method
        try:
            answer = found.handler(state, request)
            return await answer if inspect.isawaitable(answer) else answer
        except Refusal as exc:
            return exc.status, _error(exc.code, exc.message)
        except Exception as exc:  # a sandbox bug: still an answer in the contract's shape
            logger.exception("sandbox handler failed: %s %s", method, found.template)
            return 500, _error("internal", f"sandbox error: {type(exc).__name__}")

    async def _gate(self, template: str, request: Request) -> Result | None:
        """Count, delay, fail, and check the key: the bank's bus as tests want it."""
        state = self.state
        with state.lock:
            state.calls[template] = state.calls.get(template, 0) + 1
            faults = state.faults
            failing = faults.down or (
                faults.fail_rate > 0 and state.rng.random() < faults.fail_rate
            )
        if faults.delay_ms:
            await asyncio.sleep(faults.delay_ms / 1000)
        if failing:
            return 503, _error("unavailable", "the sandbox is down or failing on purpose")
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {state.key}".encode()):
            return 401, _error("unauthorized", "missing or wrong API key (Authorization: Bearer)")
        return None


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise Refusal(413, "too_large", f"the body is larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _send_json(send: Send, status: int, value: Any) -> None:
    body = json.dumps(value, ensure_ascii=False).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


from bankwx_cli.sandbox import sms as _sms  # noqa: E402 - its routes: the SMS gateway, transactions

del _sms
