"""Alerts (消息提醒): back-end events to template messages, preferences, quiet hours, SMS.

- Sources: each back-end system pushing events is a source of one account with its own API key,
  printed once and stored only as ``MasterKey.keyed_hash``; ``rotate`` keeps the old key valid
  for a grace period.
- Rules: one per account and event type: a template, its fields as expressions over the event
  (``{field|filter}``: ``yuan``, ``mask``, ``time``, ``date``), a label, a URL, the SMS text,
  whether it is a security alert (preferences and quiet hours do not apply).
- Intake (``POST /api/v1/alerts``, ``alert push``): each event validated and rendered at once; a
  rejected one leaves nothing. An event and its outbox units (or its suppression, deferral, SMS
  unit) are written in one transaction; a batch in transactions of at most ``CHUNK`` events, so
  that the receiver's group-commit writer, which shares the process's connection, waits for one
  at most. A stored event posted again answers ``duplicate``.
- Recipients: the customer's bound followers on the source's account, a template unit each in
  the alert lane (``client_msg_id`` from source, event id and openid); a follower known to be
  unsubscribed is unreached.
- Fallback, once per event: an unbound customer's alert is an SMS unit at intake; otherwise SMS
  once every recipient not suppressed is unreached (unit failed, or a ``failed…`` job status).
  A unit pending, sending, unknown or sent without a failed status holds it off.
- The outbox's hooks of the source type ``alert`` keep recipients and events in step: the
  before-send check (preferences, quiet hours, still bound), the final-state hook and the
  delivery hook (TEMPLATESENDJOBFINISH, through ``outbox.job_finished``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bankwx_cli.clock import BANK_TZ, iso
from bankwx_cli.domain import accounts, alert_preferences, audit, outbox, template_fields
from bankwx_cli.domain.account_settings import Setting
from bankwx_cli.domain.permissions import require, require_row, visible_accounts
from bankwx_cli.errors import (
    BankwxError,
    ConflictError,
    NotFoundError,
    ValidationError,
    WeChatError,
    WeChatUnavailableError,
)
from bankwx_cli.models.alerts import (
    ACCEPTED,
    DUPLICATE,
    REJECTED,
    AlertDetail,
    AlertEvent,
    AlertRecipient,
    AlertRule,
    AlertSource,
    AlertStatus,
    IntakeResult,
    NewKey,
    Rendered,
)
from bankwx_cli.models.batches import BatchFailure, BatchReport

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext
    from bankwx_cli.domain.outbox import Cancel, Defer
    from bankwx_cli.domain.routing import Decision, Runtime
    from bankwx_cli.extensions import Registry, Request, Response
    from bankwx_cli.models.outbox import OutboxUnit as Unit
    from bankwx_cli.wechat.callback import Inbound

log = logging.getLogger(__name__)

KEY_PURPOSE = "alert.source-key"
MAX_BODY = 1024 * 1024  # the intake's own body limit (--max-body stays the callbacks')
MAX_EVENTS = 500
MAX_EVENT_BYTES = 8 * 1024
CHUNK = 50  # events per transaction: a callback waits for one such transaction at most
DEFAULT_GRACE_S = 86_400
SMS_DEDUP_S = 86_400.0  # the gateway honours an idempotency key for 24 hours
UNMAPPED = ("first", "remark")  # hidden since WeChat's 2023 template reform; never required
SOURCE = "alert"  # the outbox source type: alert:<event row id>

_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_EXPR = re.compile(r"\{([^{}|]*)(?:\|([^{}]*))?\}")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")

SMS_SIGNATURE = Setting(
    "alerts.sms_signature",
    "str",
    "",
    "The bank's SMS signature, put before an alert's SMS text in 【】 (e.g. 示例银行).",
    "alerts",
    "text, '' for none",
)
SMS_COST_FEN = Setting(
    "alerts.sms_cost_fen",
    "int",
    0,
    "What one SMS costs, in fen: alert status values the SMS that WeChat alerts avoided.",
    "alerts",
    "a whole number of fen, 0 or more",
)


@dataclass(frozen=True)
class _Metrics:
    events: Any  # prometheus_client Counter and Histogram
    latency: Any


_metrics_lock = threading.Lock()


@cache
def _metrics() -> _Metrics:
    """The alerts' metrics, made on first use (prometheus_client is not imported by every
    command that loads this module); the lock: several threads may ask first at once."""
    with _metrics_lock:
        return _made_metrics()


@cache
def _made_metrics() -> _Metrics:
    from prometheus_client import Counter, Histogram

    return _Metrics(
        Counter("bankwx_alert_events_total", "Alert events taken at intake", ["status"]),
        Histogram(
            "bankwx_alert_latency_seconds",
            "Intake commit to WeChat's acceptance of an alert (deferred ones excluded)",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
        ),
    )


class AlertAuthError(BankwxError):
    """A missing or wrong source key (HTTP 401)."""


class AlertRequestError(ValidationError):
    """A body that is not JSON, or not one event or {"events": [...]} (HTTP 400)."""


class _Rejected(Exception):
    """An event refused: ``reason`` goes back to the source (its own data may be in it);
    ``kept``, what the store keeps, names no value of the event (rejections hold no data)."""

    def __init__(self, reason: str, kept: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kept = reason if kept is None else kept


class SmsRefusedError(WeChatError):
    """The SMS gateway (or the back-end, for the phone) refused: the unit fails with this."""

    def __init__(self, message: str) -> None:
        super().__init__(-2, "sms refused")
        self.args = (message,)


class SmsUnavailableError(WeChatUnavailableError):
    """The SMS gateway or back-end did not answer, or failed: tried again, then failed."""

    def __init__(self, message: str) -> None:
        super().__init__(-3, "sms unavailable")
        self.args = (message,)


# --- the seams to the other alert pieces (field types, preferences, the SMS gateway) -----------


def field_problem(name: str, value: str) -> str | None:
    """Why value breaks the field type of the placeholder name (protocol sheet §5.5), or None."""
    return template_fields.check_field(name, value)


# --- expressions ---------------------------------------------------------------------------


def _yuan(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            value = int(value)
        else:
            raise _Rejected(
                f"'{value}' is not a whole number of fen", "the value is not a whole number of fen"
            )
    sign = "-" if value < 0 else ""
    fen = abs(value)
    return f"{sign}{fen // 100:,}.{fen % 100:02d}元"


def _mask(value: Any) -> str:
    text = re.sub(r"\s", "", str(value))
    if len(text) < 4:
        raise _Rejected(
            f"'{value}' is too short to mask (4 characters at least)",
            "the value is too short to mask (4 characters at least)",
        )
    return f"尾号{text[-4:]}"


def _moment(value: Any) -> datetime:
    text = str(value).strip()
    if not _ISO.fullmatch(text):
        raise _Rejected(f"'{value}' is not an ISO 8601 time", "the value is not an ISO 8601 time")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _Rejected(
            f"'{value}' is not an ISO 8601 time", "the value is not an ISO 8601 time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=BANK_TZ)
    return moment.astimezone(BANK_TZ)


FILTERS: dict[str, Callable[[Any], str]] = {
    "yuan": _yuan,
    "mask": _mask,
    "time": lambda v: _moment(v).strftime("%Y年%m月%d日 %H:%M"),
    "date": lambda v: _moment(v).strftime("%Y年%m月%d日"),
}


def check_expression(expr: str, what: str) -> list[str]:
    """The names an expression reads; ValidationError for a bad filter or an empty name."""
    names = []
    for match in _EXPR.finditer(expr):
        name = match.group(1).strip()
        flt = match.group(2)
        if not name:
            raise ValidationError(f"{what} '{expr}' has an empty {{}}: write {{field|filter}}.")
        if flt is not None and flt.strip() not in FILTERS:
            raise ValidationError(
                f"{what} '{expr}': filter '{flt.strip()}' is unknown: use {', '.join(FILTERS)}."
            )
        names.append(name)
    rest = _EXPR.sub("", expr)
    if "{" in rest or "}" in rest:
        raise ValidationError(f"{what} '{expr}' has an unmatched brace: write {{field|filter}}.")
    return names


def _value(event: Mapping[str, Any], name: str) -> Any:
    if name in ("occurred_at", "type", "event_id", "customer_id"):
        return event.get(name)
    data = event.get("data") or {}
    if name.startswith("data."):
        name = name[5:]
    if name not in data:
        raise _Rejected(f"data.{name} is missing")
    value = data[name]
    if value is None or isinstance(value, dict | list):
        raise _Rejected(f"data.{name} is not a text or a number")
    return value


def evaluate(expr: str, event: Mapping[str, Any]) -> str:
    """The expression's text for the event; _Rejected naming a missing or unfit value."""

    def one(match: re.Match[str]) -> str:
        value = _value(event, match.group(1).strip())
        flt = (match.group(2) or "").strip()
        if flt:
            return FILTERS[flt](value)
        if isinstance(value, bool):
            return "是" if value else "否"
        return str(value)

    return _EXPR.sub(one, expr)


def render(rule: AlertRule, event: Mapping[str, Any], title: str = "") -> Rendered:
    """The rule's template data and SMS text for the event; _Rejected with a reason."""
    data: dict[str, dict[str, str]] = {}
    for name, expr in rule.fields.items():
        try:
            value = evaluate(expr, event)
        except _Rejected as exc:
            raise _Rejected(f"field {name}: {exc.reason}", f"field {name}: {exc.kept}") from None
        problem = field_problem(name, value)
        if problem:
            raise _Rejected(
                f"field {name} '{value}': {problem}", f"field {name}: the value {problem}"
            )
        data[name] = {"value": value}
    sms = evaluate(rule.sms, event) if rule.sms else _default_sms(title or rule.label, data)
    url = evaluate(rule.url, event) if rule.url else None
    return Rendered(rule.template_id, url, data, sms)


def _default_sms(title: str, data: Mapping[str, Mapping[str, str]]) -> str:
    values = [v["value"] for k, v in data.items() if k not in UNMAPPED and v["value"]]
    return f"{title}：{'，'.join(values)}"


# --- sources ---------------------------------------------------------------------------------


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValidationError(
            f"source name '{name}' is invalid: use 1 to 64 lowercase letters, digits, '.', '_' "
            "or '-', starting with a letter or digit."
        )
    return name


def _new_key() -> str:
    return "bxa_" + secrets.token_urlsafe(32)


def _hash(app: AppContext, key: str) -> str:
    return app.key.keyed_hash(key, KEY_PURPOSE)


def _source_named(app: AppContext, name: str, permission: str) -> AlertSource:
    found = app.store.alerts.source(name)
    if found is None:
        require(app, permission)  # the role first: a refused operator learns nothing
        raise NotFoundError(f"no alert source named '{name}'. See bankwx alert source list.")
    require_row(app, permission, found.account, target=f"alert source {name}")
    return found


def add_source(app: AppContext, name: str, account: str | None) -> NewKey:
    """A new source of the account and its key (shown once, stored as a keyed hash).
    Raises ValidationError, ConflictError (name taken), NotFoundError (account)."""
    require(app, "alert.source", account)
    acct = accounts.resolve(app, account)
    _check_name(name)
    key = _new_key()
    with app.store.transaction():
        if not app.store.alerts.add_source(
            name, acct.name, _hash(app, key), iso(app.clock.now()), app.operator
        ):
            raise ConflictError(f"an alert source named '{name}' exists. Choose another name.")
        audit.record(app, "alert.source.add", acct.name, {"source": name})
    return NewKey(name, key)


def list_sources(app: AppContext, account: str | None) -> list[AlertSource]:
    if account:
        require(app, "alert.read", account)
        return app.store.alerts.sources((accounts.get(app, account).name,))
    return app.store.alerts.sources(visible_accounts(app, "alert.read"))


def remove_source(app: AppContext, name: str) -> None:
    """Remove a source: its key stops working at once. Its stored events stay."""
    found = _source_named(app, name, "alert.source")
    with app.store.transaction():
        app.store.alerts.remove_source(name)
        audit.record(app, "alert.source.remove", found.account, {"source": name})


def rotate_source(app: AppContext, name: str, grace_s: int = DEFAULT_GRACE_S) -> NewKey:
    """A new key for the source; the old one stays valid for grace_s seconds."""
    if grace_s < 0:
        raise ValidationError(f"--grace '{grace_s}' is invalid: use 0 or more seconds.")
    found = _source_named(app, name, "alert.source")
    key = _new_key()
    with app.store.transaction():
        now = app.clock.now()
        until = now.timestamp() + grace_s
        app.store.alerts.rotate(name, _hash(app, key), until, iso(now))
        audit.record(app, "alert.source.rotate", found.account, {"source": name, "grace": grace_s})
    return NewKey(name, key)


def authenticate(app: AppContext, key: str | None) -> AlertSource:
    """The source whose key this is; AlertAuthError when it is missing or wrong."""
    if not key:
        raise AlertAuthError("a source key is required: Authorization: Bearer KEY")
    found = app.store.alerts.source_by_key(_hash(app, key), app.clock.time())
    if found is None:
        raise AlertAuthError("the source key is wrong, or was rotated and its grace is over")
    return found


# --- rules -----------------------------------------------------------------------------------


def parse_fields(pairs: Sequence[str]) -> dict[str, str]:
    """``NAME=EXPR`` options as a mapping; ValidationError for a pair without '='."""
    fields: dict[str, str] = {}
    for pair in pairs:
        name, sep, expr = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValidationError(f"--field '{pair}' is invalid: write NAME=EXPR.")
        if name in fields:
            raise ValidationError(f"--field '{name}' is given twice.")
        fields[name] = expr
    return fields


def add_rule(
    app: AppContext,
    type_: str,
    template_id: str,
    fields: Mapping[str, str],
    *,
    label: str | None = None,
    url: str | None = None,
    sms: str | None = None,
    security: bool = False,
    account: str | None = None,
) -> AlertRule:
    """A rule for the account's events of type_. The template must exist (synced on demand),
    each field be one of its placeholders, every placeholder be mapped but first and remark.
    Raises ValidationError, ConflictError (the type has a rule), NotFoundError."""
    from bankwx_cli.domain import templates

    require(app, "alert.rule", account)
    acct = accounts.resolve(app, account)
    if not _TYPE.fullmatch(type_):
        raise ValidationError(
            f"event type '{type_}' is invalid: use 1 to 64 letters, digits, '.', '_', ':' or '-'."
        )
    template = templates.template_for(app, acct, template_id)
    placeholders = list(dict.fromkeys(template.fields))
    for name, expr in fields.items():
        if name not in placeholders:
            raise ValidationError(
                f"template '{template_id}' has no field '{name}': use "
                f"{', '.join(placeholders) or 'none'}."
            )
        check_expression(expr, f"--field {name}")
    missing = [p for p in placeholders if p not in fields and p not in UNMAPPED]
    if missing:
        raise ValidationError(
            f"template '{template_id}' field(s) {', '.join(missing)} are not mapped: add "
            f"--field {missing[0]}=EXPR."
        )
    if sms is not None:
        if not sms.strip():
            raise ValidationError("--sms is empty: give the SMS text, or leave it out.")
        check_expression(sms, "--sms")
    if url is not None:
        check_expression(url, "--url")
        if not re.match(r"https?://", url):
            raise ValidationError(f"--url '{url}' is invalid: give an http or https URL.")
    rule = AlertRule(
        id=0,
        account=acct.name,
        type=type_,
        template_id=template_id,
        fields=dict(fields),
        label=(label or template.title).strip() or type_,
        url=url,
        sms=sms,
        security=security,
        created_at=iso(app.clock.now()),
        created_by=app.operator,
    )
    with app.store.transaction():
        rule_id = app.store.alerts.add_rule(rule)
        if rule_id is None:
            raise ConflictError(
                f"account {acct.name} has a rule for '{type_}'. Remove it first "
                "(bankwx alert rule list, bankwx alert rule remove ID)."
            )
        audit.record(app, "alert.rule.add", acct.name, {"type": type_, "template": template_id})
    found = app.store.alerts.rule_by_id(rule_id)
    if found is None:  # pragma: no cover - just written
        raise NotFoundError(f"no alert rule {rule_id}.")
    return found


def list_rules(app: AppContext, account: str | None) -> list[AlertRule]:
    if account:
        require(app, "alert.read", account)
        return app.store.alerts.rules((accounts.get(app, account).name,))
    return app.store.alerts.rules(visible_accounts(app, "alert.read"))


def remove_rule(app: AppContext, rule_id: int) -> AlertRule:
    found = app.store.alerts.rule_by_id(rule_id)
    if found is None:
        require(app, "alert.rule")
        raise NotFoundError(f"no alert rule {rule_id}. See bankwx alert rule list.")
    require_row(app, "alert.rule", found.account, target=f"alert rule {rule_id}")
    with app.store.transaction():
        app.store.alerts.remove_rule(rule_id)
        audit.record(app, "alert.rule.remove", found.account, {"type": found.type})
    return found


def test_rule(app: AppContext, type_: str, event_file: Path, account: str | None) -> Rendered:
    """What the account's rule for type_ makes of the event in the file (nothing is sent).
    Raises NotFoundError, ValidationError naming what is wrong with the event."""
    require(app, "alert.read", account)
    acct = accounts.resolve(app, account)
    rule = app.store.alerts.rule(acct.name, type_)
    if rule is None:
        raise NotFoundError(f"account {acct.name} has no rule for '{type_}'. See bankwx alert "
                            "rule list.")  # fmt: skip
    try:
        raw = json.loads(event_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"'{event_file}' is not a JSON event ({exc}).") from None
    try:
        event = _parse_event(raw)
        if event["type"] != type_:
            raise _Rejected(f"the event's type is '{event['type']}', not '{type_}'")
        rendered = render(rule, event)
    except _Rejected as exc:
        raise ValidationError(f"event in '{event_file}': {exc.reason}.") from None
    return _signed(acct_signature(app, acct.name), rendered)


# --- intake ----------------------------------------------------------------------------------


def _parse_event(raw: Any) -> dict[str, Any]:
    """The event's fields checked (shape only); _Rejected with the first problem."""
    if not isinstance(raw, dict):
        raise _Rejected("an event is a JSON object")
    for name in ("event_id", "type", "customer_id", "occurred_at"):
        value = raw.get(name)
        if not isinstance(value, str) or not value.strip():
            raise _Rejected(f"{name} is missing or not a text")
    if len(raw["event_id"]) > 128:
        raise _Rejected("event_id is longer than 128 characters")
    if len(raw["customer_id"]) > 64:
        raise _Rejected("customer_id is longer than 64 characters")
    _moment(raw["occurred_at"])
    if not isinstance(raw.get("data", {}), dict):
        raise _Rejected("data is not a JSON object")
    urgent = raw.get("urgent", False)
    if not isinstance(urgent, bool):
        raise _Rejected("urgent is not true or false")
    amount = (raw.get("data") or {}).get("amount_fen")
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int)):
        raise _Rejected("data.amount_fen is not a whole number of fen")
    size = len(json.dumps(raw, ensure_ascii=False).encode())
    if size > MAX_EVENT_BYTES:
        raise _Rejected(f"the event is {size} bytes: at most {MAX_EVENT_BYTES}")
    return raw


def _content_hash(raw: Mapping[str, Any]) -> str:
    text = json.dumps(raw, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def parse_body(body: bytes) -> list[Any]:
    """The events of a request body: one event, or {"events": [1 to 500]}. AlertRequestError."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        raise AlertRequestError("the body is not JSON") from None
    if not isinstance(parsed, dict):
        raise AlertRequestError('the body is one event or {"events": [EVENT, ...]}')
    if "events" not in parsed:
        return [parsed]
    events = parsed["events"]
    if not isinstance(events, list) or not events:
        raise AlertRequestError('"events" is a list of 1 to 500 events')
    if len(events) > MAX_EVENTS:
        raise AlertRequestError(f'"events" holds {len(events)} events: at most {MAX_EVENTS}')
    return events


def intake(app: AppContext, key: str | None, body: bytes) -> list[IntakeResult]:
    """``POST /api/v1/alerts``: authenticate, parse, and take the events (see ``take``).
    Raises AlertAuthError (401), AlertRequestError (400)."""
    source = authenticate(app, key)
    return take(app, source, parse_body(body))


def take(
    app: AppContext, source: AlertSource, events: Sequence[Any], lines: Sequence[int] = ()
) -> list[IntakeResult]:
    """Validate, render and store each event with its outbox units, in transactions of at most
    CHUNK events; a rejected event leaves nothing, the others are unaffected. Results in order.
    """
    results: list[IntakeResult] = []
    for start in range(0, len(events), CHUNK):
        chunk = events[start : start + CHUNK]
        with app.store.transaction():
            now = app.clock.now()
            batch = _Batch(acct_signature(app, source.account))
            for i, raw in enumerate(chunk):
                line = lines[start + i] if lines else None
                results.append(_take_one(app, source, raw, now, line, batch))
            app.store.alerts.touch(source.id, iso(now))
    counted = _metrics().events
    for result in results:
        counted.labels(result.status).inc()
    return results


@dataclass
class _Batch:
    """What the events of one transaction share: the SMS signature, the rules read."""

    signature: str
    rules: dict[str, AlertRule | None] = field(default_factory=dict)

    def rule(self, app: AppContext, account: str, type_: str) -> AlertRule | None:
        if type_ not in self.rules:
            self.rules[type_] = app.store.alerts.rule(account, type_)
        return self.rules[type_]


def _event_id(raw: Any) -> str | None:
    value = raw.get("event_id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None


def _event_type(raw: Any) -> str | None:
    """The type a rejected event gave, for the alerts report's row (None: none given)."""
    value = raw.get("type") if isinstance(raw, dict) else None
    return value[:64] if isinstance(value, str) else None


def _take_one(
    app: AppContext,
    source: AlertSource,
    raw: Any,
    now: datetime,
    line: int | None,
    batch: _Batch,
) -> IntakeResult:
    store = app.store.alerts
    event_id = _event_id(raw)
    try:
        with app.store.outbox.savepoint():
            return _store_event(app, source, raw, now, line, batch)
    except _Rejected as exc:
        store.note(source.name, source.account, event_id, REJECTED, exc.kept, iso(now),
                   _event_type(raw))  # fmt: skip
        return IntakeResult(event_id, REJECTED, exc.reason, line)


def _store_event(
    app: AppContext,
    source: AlertSource,
    raw: Any,
    now: datetime,
    line: int | None,
    batch: _Batch,
) -> IntakeResult:
    store = app.store.alerts
    if isinstance(raw, _BadLine):
        raise _Rejected(raw.reason)
    event = _parse_event(raw)
    event_id = str(event["event_id"])
    digest = _content_hash(event)
    stored = store.content_hash(source.name, event_id)
    if stored is not None:
        reason = None if stored == digest else "the stored event with this id has other content"
        store.note(source.name, source.account, event_id, DUPLICATE, reason, iso(now))
        return IntakeResult(event_id, DUPLICATE, reason, line)
    rule = batch.rule(app, source.account, str(event["type"]))
    if rule is None:
        raise _Rejected(f"no rule for type '{event['type']}' on account {source.account}")
    rendered = _signed(batch.signature, render(rule, event))
    security = rule.security or bool(event.get("urgent"))
    amount = (event.get("data") or {}).get("amount_fen")
    row = store.add_event(
        source=source.name,
        event_id=event_id,
        account=source.account,
        type_=rule.type,
        customer_id=str(event["customer_id"]),
        occurred_at=str(event["occurred_at"]),
        security=security,
        amount_fen=None,  # in the sealed data only: read from there at a deferred release
        content_hash=digest,
        data={"event": event, "rendered": rendered.to_json()},
        state="queued",
        received_at=iso(now),
        received_ts=now.timestamp(),
    )
    if row is None:  # another process stored it since we looked
        store.note(source.name, source.account, event_id, DUPLICATE, None, iso(now))
        return IntakeResult(event_id, DUPLICATE, None, line)
    customer = str(event["customer_id"])
    _fan_out(app, source, row, event_id, customer, rule, rendered, security, amount, now)
    return IntakeResult(event_id, ACCEPTED, None, line)


def _fan_out(
    app: AppContext,
    source: AlertSource,
    row: int,
    event_id: str,
    customer: str,
    rule: AlertRule,
    rendered: Rendered,
    security: bool,
    amount: int | None,
    now: datetime,
) -> None:
    """The event's recipients and units (in the intake's transaction)."""
    store = app.store.alerts
    account = source.account
    bound = app.store.bindings.for_customer(account, customer)
    if not bound:
        _sms(app, row, source.name, event_id, rendered, account, "unbound")
        return
    for binding in bound:
        openid = binding.openid
        if store.subscribed(account, openid) is False:
            store.add_recipient(row, openid, None, "unreached", "unsubscribed")
            continue
        verdict = None if security else _preference_verdict(app, account, openid, rule, amount, now)
        if isinstance(verdict, str):
            store.add_recipient(row, openid, None, "suppressed", verdict)
            continue
        payload: dict[str, Any] = {
            "touser": openid,
            "template_id": rendered.template_id,
            "client_msg_id": outbox.wechat_key(_unit_key(source.name, event_id, openid)),
            "data": {k: dict(v) for k, v in rendered.data.items()},
        }
        if rendered.url:
            payload["url"] = rendered.url
        unit = outbox.enqueue(
            app,
            account,
            "template",
            payload,
            _unit_key(source.name, event_id, openid),
            lane="alert",
            openid=openid,
            source=f"{SOURCE}:{row}",
            not_before=verdict,
        )
        deferred = verdict is not None
        store.add_recipient(row, openid, unit, "deferred" if deferred else "queued", None, deferred)
    _after_change(app, row)  # every one unsubscribed: SMS now


def _unit_key(source: str, event_id: str, openid: str) -> str:
    return f"alert:{source}:{event_id}:{openid}"


def acct_signature(app: AppContext, account: str) -> str:
    return str(SMS_SIGNATURE.read(accounts.get(app, account)) or "").strip()


def _signed(signature: str, rendered: Rendered) -> Rendered:
    if not signature:
        return rendered
    return Rendered(
        rendered.template_id, rendered.url, rendered.data, f"【{signature}】{rendered.sms}"
    )


def _sms(
    app: AppContext,
    row: int,
    source: str,
    event_id: str,
    rendered: Rendered | None,
    account: str,
    why: str,
) -> None:
    """The event's one SMS unit (joins the caller's transaction); nothing when it has one."""
    store = app.store.alerts
    found = store.event(row)
    if found is None or found.sms_unit is not None:
        return
    if rendered is None:
        data = store.data(row) or {}
        text = str((data.get("rendered") or {}).get("sms") or "")
    else:
        text = rendered.sms
    key = f"alert-sms:{source}:{event_id}"
    payload = {"customer_id": found.customer_id, "text": text, "idempotency_key": key}
    unit = outbox.enqueue(app, account, "sms", payload, key, lane="alert", source=f"{SOURCE}:{row}")
    store.update_event(row, sms_unit=unit, channel="sms", state="sms", reason=why)


# --- preferences and quiet hours ---------------------------------------------------------------


def _preference_verdict(
    app: AppContext, account: str, openid: str, rule: AlertRule, amount: int | None, now: datetime
) -> str | float | None:
    """A reason to suppress (text), a time to wait for (quiet hours), or None (send now): the
    follower's preferences (``alert_preferences.allows``); a type is switched off by its label
    or its name."""
    prefs = alert_preferences.preferences(app.store, account, openid)
    if rule.type in prefs.off_types:
        return f"switched off by the follower ({rule.label})"
    verdict = alert_preferences.allows(prefs, rule.label, amount, False, now)
    if verdict.kind == "suppress":
        if verdict.reason == alert_preferences.SWITCHED_OFF:
            return f"switched off by the follower ({rule.label})"
        return f"below the follower's minimum amount ({prefs.min_amount_fen} fen)"
    if verdict.kind == "defer" and verdict.until is not None:
        return verdict.until.timestamp()
    return None


# --- the outbox's hooks -----------------------------------------------------------------------


def _row(unit: Unit) -> int | None:
    try:
        return int((unit.source or "").split(":", 1)[1])
    except (IndexError, ValueError):
        return None


def _sealed_amount(app: AppContext, event: AlertEvent) -> int | None:
    """The event's data.amount_fen, from its sealed data (an amount is never kept in clear);
    None once purged, or in a row written before (its amount_fen column)."""
    data = app.store.alerts.data(event.id)
    if data is None:
        return event.amount_fen
    amount = ((data.get("event") or {}).get("data") or {}).get("amount_fen")
    return amount if isinstance(amount, int) and not isinstance(amount, bool) else None


def before_send(app: AppContext, unit: Unit) -> Defer | Cancel | None:
    """Before a template unit's first attempt (also after a deferral): still bound, not switched
    off, not below the minimum, not in quiet hours (security alerts: always sent)."""
    from bankwx_cli.domain.outbox import Cancel, Defer

    if unit.kind != "template" or unit.openid is None:
        return None
    row = _row(unit)
    event = None if row is None else app.store.alerts.event(row)
    if event is not None and event.channel == "sms":
        return Cancel("the alert went to the customer by SMS")
    if event is None or event.security:
        return None
    binding = app.store.bindings.get(unit.account, unit.openid)
    if binding is None or binding.customer_id != event.customer_id:
        return Cancel("the follower is no longer bound to the customer")
    rule = app.store.alerts.rule(event.account, event.type)
    if rule is None:
        return None
    verdict = _preference_verdict(
        app, unit.account, unit.openid, rule, _sealed_amount(app, event), app.clock.now()
    )
    if isinstance(verdict, str):
        return Cancel(verdict)
    if verdict is not None:
        app.store.alerts.mark_deferred(unit.id)
        app.store.alerts.update_recipient(event.id, unit.openid, state="deferred")
        return Defer(verdict, "quiet hours")
    return None


def finished(app: AppContext, unit: Unit) -> None:
    """A unit of an alert reached sent, failed, unknown or cancelled (its recording
    transaction): the recipient's or the SMS's state, then the event's, then the fallback."""
    row = _row(unit)
    store = app.store.alerts
    event = None if row is None else store.event(row)
    if event is None:
        return
    if unit.kind == "sms":
        if unit.state == "sent":
            store.update_event(event.id, state="sms", sent_at=iso(app.clock.now()))
        elif unit.state == "unknown":
            store.update_event(event.id, state="unknown", reason=unit.last_error)
        else:
            store.update_event(event.id, state="failed", reason=unit.last_error)
        return
    recipient = store.recipient_of(unit.id)
    if recipient is None:
        return
    if unit.state == "sent":
        accepted = app.clock.time()
        store.update_recipient(
            event.id, recipient.openid, state="sent", msgid=unit.wechat_msgid, accepted_ts=accepted
        )
        if not recipient.deferred:
            _metrics().latency.observe(max(0.0, accepted - event.received_ts))
        if event.sent_at is None:
            store.update_event(event.id, sent_at=iso(app.clock.now()))
        early = store.take_job_status(unit.account, unit.wechat_msgid or "")
        if early is not None and unit.wechat_msgid:
            app.store.outbox.record_delivery(unit.account, unit.wechat_msgid, early)
            _job_result(app, event.id, recipient.openid, early)
    elif unit.state == "cancelled":
        store.update_recipient(event.id, recipient.openid, state="suppressed",
                               reason=unit.last_error)  # fmt: skip
    else:
        store.update_recipient(event.id, recipient.openid, state=unit.state,
                               reason=unit.last_error)  # fmt: skip
    _after_change(app, event.id)


def delivered(app: AppContext, unit: Unit, status: str) -> None:
    """WeChat's job result on a sent template unit of an alert."""
    row = _row(unit)
    recipient = app.store.alerts.recipient_of(unit.id)
    if row is None or recipient is None:
        return
    _job_result(app, row, recipient.openid, status)
    _after_change(app, row)


def _job_result(app: AppContext, row: int, openid: str, status: str) -> None:
    store = app.store.alerts
    if status == "success":
        store.update_recipient(row, openid, state="delivered", delivery=status)
    else:
        store.update_recipient(row, openid, state="unreached", delivery=status,
                               reason=f"WeChat job status {status}")  # fmt: skip


def job_status(app: AppContext, runtime: Runtime, inbound: Inbound) -> Decision | None:
    """TEMPLATESENDJOBFINISH, after ``outbox.job_finished``: a result whose msgid no unit holds
    yet (the dispatcher has not recorded it) is kept, and applied when it is recorded."""
    keep_job_status(app, runtime.account.name, inbound.msg_id, inbound.fields.get("Status", ""))
    return None


def keep_job_status(app: AppContext, account: str, msgid: str, status: str) -> None:
    """Keep a job result for a msgid no unit holds yet (nothing when one does)."""
    store = app.store.alerts
    if not msgid or not status:
        return
    with app.store.transaction():
        if store.has_unit_with(account, msgid):
            return
        now = app.clock.now()
        store.keep_job_status(account, msgid, status, iso(now))
        store.forget_job_statuses_before(iso(now - timedelta(days=1)))


UNREACHED = ("unreached", "failed")


def _after_change(app: AppContext, row: int) -> None:
    """The event's state from its recipients, and its SMS when every recipient not suppressed
    is unreached (once)."""
    store = app.store.alerts
    event = store.event(row)
    if event is None:
        return
    if event.channel != "sms":
        counted = [r for r in store.recipients(row) if r.state != "suppressed"]
        if counted and all(r.state in UNREACHED for r in counted):
            _sms(app, row, event.source, event.event_id, None, event.account, "unreached")
            return
    _settle(app, row)


def _settle(app: AppContext, row: int) -> None:
    """Store the event's state as its recipients make it (an SMS event keeps its own)."""
    store = app.store.alerts
    event = store.event(row)
    if event is None or event.channel == "sms":
        return
    state = _wechat_state(store.recipients(row))
    if state != event.state:
        store.update_event(row, state=state)


def _wechat_state(recipients: Iterable[AlertRecipient]) -> str:
    states = {r.state for r in recipients if r.state != "suppressed"}
    if not states:
        return "suppressed"
    for state in ("delivered", "sent", "queued", "deferred", "unknown"):
        if state in states:
            return state
    return "failed"


# --- the SMS sender -----------------------------------------------------------------------------


def _gateway(app: AppContext) -> Any:
    """The SMS gateway client (``AppContext.sms_gateway`` where the store names one with
    ``backend set --sms-url``; else the back-end adapter, which serves ``/v1/sms/send`` too)."""
    found = getattr(app, "sms_gateway", None)
    return app.backend if found is None else found


def send_sms(app: AppContext, unit: Unit) -> str | None:
    """One SMS: the customer's phone from the back-end now (never stored), then the gateway,
    with the unit's idempotency key (honoured for 24 hours). A refusal (an unknown customer,
    no phone, a 4xx of the gateway) fails the unit with the reason; 5xx and timeouts are tried
    again, then fail."""
    from bankwx_cli.backend.errors import BackendRefusedError, BackendUnavailableError

    body = unit.body
    try:
        phone = app.backend.customer_phone(str(body["customer_id"]))
        if not phone:
            raise SmsRefusedError(f"customer {body['customer_id']} has no phone number")
        answer = _gateway(app).send_sms(phone, str(body["text"]), str(body["idempotency_key"]))
    except BackendRefusedError as exc:
        raise SmsRefusedError(str(exc)) from None
    except BackendUnavailableError as exc:
        raise SmsUnavailableError(str(exc)) from None
    except NotFoundError as exc:  # no back-end set
        raise SmsRefusedError(str(exc)) from None
    found = answer.get("id") if isinstance(answer, dict) else getattr(answer, "id", None)
    return None if found is None else str(found)


# --- status and show -----------------------------------------------------------------------


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    index = min(len(values) - 1, max(0, round(share * len(values) + 0.5) - 1))
    return round(values[index], 1)


def status(
    app: AppContext, since: str | None, until: str | None, account: str | None
) -> AlertStatus:
    """Counts and latency of the alerts received in [since, until)."""
    from bankwx_cli.clock import parse_user_time

    if account:
        require(app, "alert.read", account)
        scope: tuple[str, ...] | None = (accounts.get(app, account).name,)
    else:
        scope = visible_accounts(app, "alert.read")
    start = iso(parse_user_time(since, "--since")) if since else None
    end = iso(parse_user_time(until, "--until")) if until else None
    store = app.store.alerts
    raw = store.counts(start, end, scope)
    counts = {
        "received": raw.get("received", 0),
        "rejected": raw.get(f"noted:{REJECTED}", 0),
        "duplicates": raw.get(f"noted:{DUPLICATE}", 0),
        "suppressed": raw.get("recipient:suppressed", 0),
        "deferred": raw.get("deferred", 0),
        "sent_wechat": raw.get("sent_wechat", 0),
        "delivered": raw.get("recipient:delivered", 0),
        "sms": raw.get("sms", 0),
        "failed": raw.get("event:failed", 0),
        "unknown": raw.get("event:unknown", 0),
    }
    latencies = store.latencies_ms(start, end, scope)
    avoided = raw.get("event:sent", 0) + raw.get("event:delivered", 0)
    saved = None
    names = scope if scope is not None else tuple(a.name for a in app.store.accounts.all())
    costs = [SMS_COST_FEN.stored(accounts.get(app, n)) for n in names]
    known = [int(c) for c in costs if c]
    if known and len(set(known)) == 1:
        saved = avoided * known[0]
    return AlertStatus(
        since=start,
        until=end,
        account=account,
        counts=counts,
        latency_p50_ms=_percentile(latencies, 0.5),
        latency_p99_ms=_percentile(latencies, 0.99),
        sms_avoided=avoided,
        sms_saved_fen=saved,
    )


def show(app: AppContext, event_id: str, source: str | None = None) -> AlertDetail:
    """One event, its state and recipients; ``alert.show`` on the event's own account."""
    found = app.store.alerts.events_by_id(event_id, source)
    if not found:
        require(app, "alert.show")
        where = f" from source '{source}'" if source else ""
        raise NotFoundError(f"no alert event '{event_id}'{where}. See bankwx alert status.")
    if len(found) > 1:
        names = ", ".join(e.source for e in found)
        raise ValidationError(
            f"event id '{event_id}' came from several sources ({names}): name one with --source."
        )
    event = found[0]
    require_row(app, "alert.show", event.account, target=f"alert event {event_id}")
    return detail(app, event)


def detail(app: AppContext, event: AlertEvent) -> AlertDetail:
    recipients = tuple(app.store.alerts.recipients(event.id))
    state = event.state
    if event.channel == "sms" and state not in ("failed", "unknown"):
        state = "sms"
    return AlertDetail(event, state, recipients)


def purge_before(app: AppContext, account: str, cutoff: datetime) -> int:
    """Purge the data and texts of the account's events received before cutoff (with the
    conversation log, by its retention); the events, states and counts stay."""
    return app.store.alerts.purge_data_before(account, iso(cutoff))


# --- alert push ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _BadLine:
    reason: str


def push_file(app: AppContext, path: Path, source_name: str) -> list[IntakeResult]:
    """``alert push``: each line of a JSON Lines file an event, taken as the intake takes them.
    Raises NotFoundError (source), ValidationError (not UTF-8)."""
    found = _source_named(app, source_name, "alert.push")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError(f"'{path}' is not UTF-8 text.") from None
    events: list[Any] = []
    lines: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except (ValueError, RecursionError) as exc:
            events.append(_BadLine(f"not JSON ({exc})"))
        lines.append(number)
    if not events:
        raise ValidationError(f"'{path}' holds no events: one JSON event a line.")
    return take(app, found, events, lines)


def push_report(results: Sequence[IntakeResult], name: str) -> BatchReport:
    """The batch report of a push: accepted, duplicates (skipped), rejected (each named)."""
    failures = tuple(
        BatchFailure(f"line {r.line} ({r.event_id or 'no event_id'})", r.reason or "rejected")
        for r in results
        if r.status == REJECTED
    )
    return BatchReport(
        done=sum(1 for r in results if r.status == ACCEPTED),
        skipped=sum(1 for r in results if r.status == DUPLICATE),
        failures=failures,
        title=f"Pushed {name} (skipped: duplicates)",
        done_word="accepted",
        failed_word="rejected",
    )


# --- the HTTP intake ---------------------------------------------------------------------------


def _bearer(request: Request) -> str | None:
    for name, value in request.scope.get("headers") or ():
        if name.lower() == b"authorization":
            text = value.decode("latin-1").strip()
            scheme, _, key = text.partition(" ")
            return key.strip() if scheme.lower() == "bearer" else None
    return None


def _json(status: int, body: Any, outcome: str) -> Response:
    from bankwx_cli.extensions import Response

    text = json.dumps(body, ensure_ascii=False).encode()
    return Response(status, text, b"application/json", outcome)


def _error(status: int, code: str, message: str) -> Response:
    return _json(status, {"error": {"code": code, "message": message}}, code)


async def intake_route(request: Request) -> Response:
    """``POST /api/v1/alerts``: the work runs off the event loop, in the receiver's pool."""
    app = request.host.app
    try:
        results = await request.host.run(intake, app, _bearer(request), request.body)
    except AlertAuthError as exc:
        return _error(401, "unauthorized", str(exc))
    except AlertRequestError as exc:
        return _error(400, "bad_request", str(exc))
    except Exception:
        log.exception("alert intake failed")
        return _error(503, "unavailable", "the store is unreachable: post the events again")
    return _json(200, {"results": [r.to_json() for r in results]}, "ok")


def install(registry: Registry) -> None:
    """This area's declarations (bankwx_cli/extensions.py)."""
    registry.setting(SMS_SIGNATURE)
    registry.setting(SMS_COST_FEN)
    too_large = _error(413, "too_large", f"the body is over {MAX_BODY // 1024} KiB")
    registry.route("POST", "/api/v1/alerts", intake_route, max_body=MAX_BODY, too_large=too_large)
    registry.sender("sms", budget="sms", crash="idempotent", rate=50,
                    dedup_window_s=SMS_DEDUP_S)(send_sms)  # fmt: skip
    registry.before_send(SOURCE, before_send)
    registry.on_final(SOURCE, finished)
    registry.on_delivery(SOURCE, delivered)
    registry.on_event("templatesendjobfinish", job_status, order=10)
