"""The sandbox's SMS gateway (``POST /v1/sms/send``, behind the key and the faults like every
``/v1/`` path) and its core system pushing transactions to the alert intake (``POST
/sandbox/transactions``); ``GET /sandbox/sms`` lists what was "sent".

A repeated idempotency key sends nothing new for 24 hours (sandbox clock) and answers the first
message's id with ``duplicate: true``.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any

from bankwx_cli.sandbox.app import Refusal, Request, Result, SandboxState, _iso, route
from bankwx_cli.sandbox.messaging import push

_PHONE = re.compile(r"\+?[0-9][0-9-]{4,19}")
MAX_TEXT = 1000
MAX_KEY = 128
DEFAULT_TYPE = "transaction"
_EVENT_FIELDS = ("customer_id", "type", "event_id", "occurred_at", "urgent")


@route("POST", "/v1/sms/send")
def send_sms(state: SandboxState, request: Request) -> Result:
    data = request.json()
    phone, text, key = data.get("phone"), data.get("text"), data.get("idempotency_key")
    if not isinstance(phone, str) or not _PHONE.fullmatch(phone):
        raise Refusal(400, "bad_phone", "'phone' must be a phone number (digits, + and -)")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
        raise Refusal(400, "bad_request", f"'text' must be 1 to {MAX_TEXT} characters")
    if not isinstance(key, str) or not key or len(key) > MAX_KEY:
        raise Refusal(400, "bad_request", f"'idempotency_key' must be 1 to {MAX_KEY} characters")
    now = state.now()
    sms, duplicate = state.sms.send(phone, text, key, now, _iso(now))
    return 200, {"id": sms.id, "duplicate": duplicate}


@route("GET", "/sandbox/sms")
def control_sms(state: SandboxState, request: Request) -> Result:
    return 200, state.sms.listing()


def _event(state: SandboxState, data: dict[str, Any]) -> dict[str, Any]:
    """The alert event a core system makes of a transaction (a ValueError-free Refusal)."""
    cid, amount = data.get("customer_id"), data.get("amount_fen")
    if not isinstance(cid, str) or not cid:
        raise Refusal(400, "bad_request", "'customer_id' must be a non-empty string")
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise Refusal(400, "bad_request", "'amount_fen' must be an integer (fen)")
    if state.bank.customer(cid) is None:
        raise Refusal(404, "unknown_customer", f"no customer '{cid}'")
    kind = data.get("type", DEFAULT_TYPE)
    event_id = data.get("event_id") or "sbx-" + secrets.token_hex(8)
    if not isinstance(kind, str) or not kind or not isinstance(event_id, str):
        raise Refusal(400, "bad_request", "'type' and 'event_id' must be strings")
    account = state.bank.one(
        "SELECT number FROM accounts WHERE customer_id = :c ORDER BY type, number", {"c": cid}
    )
    details: dict[str, Any] = {"amount_fen": amount, "description": "转账"}
    if account is not None:
        details["account_last4"] = str(account["number"])[-4:]
    details.update({k: v for k, v in data.items() if k not in _EVENT_FIELDS})
    event: dict[str, Any] = {
        "event_id": event_id,
        "type": kind,
        "customer_id": cid,
        "occurred_at": data.get("occurred_at") or _iso(state.now()),
        "data": details,
    }
    if "urgent" in data:
        event["urgent"] = data["urgent"]
    return event


@route("POST", "/sandbox/transactions")
async def control_transaction(state: SandboxState, request: Request) -> Result:
    """``{"customer_id", "amount_fen", ...}``: a transaction, pushed to ``--alerts-url`` as one
    alert event (``type`` default ``transaction``; other fields go into ``data``). Answers the
    event and the intake's status and answer."""
    if state.alerts.url is None:
        raise Refusal(409, "no_alerts_url", "start the sandbox with --alerts-url URL")
    event = _event(state, request.json())
    status, answer = await asyncio.to_thread(push, state.alerts, event)
    return 200, {"event": event, "status": status, "answer": answer}
