"""What the back-end answers, as typed values (amounts in integer fen), and ``BankBackend``,
the one interface the domain calls.

Each ``parse_*`` takes a decoded JSON value and returns the model, or raises ``ValueError``
naming what does not follow the contract (``docs/backend-openapi.yaml``); the adapter turns
that into ``BackendUnavailableError`` (``bad_answer``). Card and account numbers arrive as
their last four digits only: a full number never enters bankwx from these paths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

_RATE = re.compile(r"-?[0-9]{1,6}(\.[0-9]{1,6})?")
_LAST4 = re.compile(r"[0-9]{4}")


@dataclass(frozen=True)
class Health:
    status: str
    version: str


@dataclass(frozen=True)
class CustomerMatch:
    """A card and phone that belong together: the customer and the card's last four digits."""

    customer_id: str
    card_last4: str


@dataclass(frozen=True)
class OtpRequest:
    """A code was sent to the customer's phone on file (``phone_masked``: 138****5678)."""

    request_id: str
    expires_in: int
    phone_masked: str


@dataclass(frozen=True)
class OtpResult:
    """Whether the code checked; when not, ``reason`` is wrong, expired or used."""

    valid: bool
    reason: str | None


@dataclass(frozen=True)
class Card:
    last4: str
    type: str  # debit or credit


@dataclass(frozen=True)
class Customer:
    """A customer; ``phone`` (the mobile number on file, for SMS) when the back-end gives it:
    used at the moment of sending, never stored."""

    id: str
    name: str
    cards: tuple[Card, ...]
    phone: str | None = None

    def __repr__(self) -> str:  # never the phone in a log line or a traceback
        return f"Customer(id={self.id!r}, cards={len(self.cards)})"


@dataclass(frozen=True)
class BankAccount:
    last4: str
    type: str
    currency: str
    balance_fen: int
    available_fen: int


@dataclass(frozen=True)
class Transaction:
    id: str
    at: str  # ISO 8601, UTC
    description: str
    amount_fen: int  # negative: money out
    currency: str
    account_last4: str


@dataclass(frozen=True)
class CardBill:
    card_last4: str
    period: str  # YYYY-MM
    statement_date: str  # YYYY-MM-DD
    due_date: str
    amount_fen: int
    min_payment_fen: int
    currency: str


@dataclass(frozen=True)
class Rate:
    """An interest rate: ``rate`` is a percentage per year as decimal text ("1.45")."""

    term: str
    name: str
    rate: str


@dataclass(frozen=True)
class RateTable:
    as_of: str
    rates: tuple[Rate, ...]


@dataclass(frozen=True)
class FxRate:
    """Exchange rates in yuan per ``unit`` of the currency, as decimal text."""

    currency: str
    name: str
    unit: int
    buy: str
    sell: str


@dataclass(frozen=True)
class FxTable:
    as_of: str
    rates: tuple[FxRate, ...]


@dataclass(frozen=True)
class Product:
    id: str
    name: str
    type: str
    rate: str | None
    min_amount_fen: int
    risk: str
    description: str


@dataclass(frozen=True)
class SmsReceipt:
    """The SMS gateway took a message: its ``id``; ``duplicate`` when the idempotency key was
    seen before (within 24 hours) and nothing new was sent."""

    id: str
    duplicate: bool


class BankBackend(Protocol):
    """Every back-end path of the contract. Each method raises BackendUnavailableError (try
    later) or BackendRefusedError (a 4xx answer: bad key, unknown customer, no match)."""

    def health(self) -> Health: ...
    def verify_customer(self, card: str, phone: str) -> CustomerMatch: ...
    def send_otp(self, customer_id: str) -> OtpRequest: ...
    def verify_otp(self, request_id: str, code: str) -> OtpResult: ...
    def customer(self, customer_id: str) -> Customer: ...
    def accounts(self, customer_id: str) -> list[BankAccount]: ...
    def transactions(self, customer_id: str, limit: int = 5) -> list[Transaction]: ...
    def card_bill(self, customer_id: str) -> CardBill: ...
    def deposit_rates(self) -> RateTable: ...
    def loan_rates(self) -> RateTable: ...
    def fx_rates(self) -> FxTable: ...
    def products(self) -> list[Product]: ...
    def customer_phone(self, customer_id: str) -> str: ...
    def send_sms(self, phone: str, text: str, idempotency_key: str) -> SmsReceipt: ...


# --- parsing ----------------------------------------------------------------------------------


def _obj(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"{what} is not a JSON object")
    return data


def _str(data: dict[str, Any], key: str, what: str, *, empty: bool = False) -> str:
    value = data.get(key)
    if not isinstance(value, str) or (not empty and not value):
        raise ValueError(f"{what}.{key} is not a non-empty string")
    return value


def _opt_str(data: dict[str, Any], key: str, what: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{what}.{key} is not a string or null")
    return value


def _int(data: dict[str, Any], key: str, what: str, *, minimum: int | None = None) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what}.{key} is not an integer")
    if minimum is not None and value < minimum:
        raise ValueError(f"{what}.{key} is below {minimum}")
    return value


def _bool(data: dict[str, Any], key: str, what: str) -> bool:
    value = data.get(key)
    if not isinstance(value, bool):
        raise ValueError(f"{what}.{key} is not a boolean")
    return value


def _last4(data: dict[str, Any], key: str, what: str) -> str:
    value = _str(data, key, what)
    if not _LAST4.fullmatch(value):
        raise ValueError(f"{what}.{key} is not four digits")
    return value


def _rate(data: dict[str, Any], key: str, what: str) -> str:
    value = _str(data, key, what)
    if not _RATE.fullmatch(value):
        raise ValueError(f"{what}.{key} is not a decimal number")
    return value


def _items(data: Any, key: str, what: str) -> list[dict[str, Any]]:
    value = _obj(data, what).get(key)
    if not isinstance(value, list):
        raise ValueError(f"{what}.{key} is not an array")
    return [_obj(item, f"{what}.{key}[{n}]") for n, item in enumerate(value)]


def parse_health(data: Any) -> Health:
    d = _obj(data, "health")
    return Health(_str(d, "status", "health"), _str(d, "version", "health", empty=True))


def parse_customer_match(data: Any) -> CustomerMatch:
    d = _obj(data, "match")
    return CustomerMatch(_str(d, "customer_id", "match"), _last4(d, "card_last4", "match"))


def parse_otp_request(data: Any) -> OtpRequest:
    d = _obj(data, "otp")
    return OtpRequest(
        _str(d, "request_id", "otp"),
        _int(d, "expires_in", "otp", minimum=0),
        _str(d, "phone_masked", "otp"),
    )


def parse_otp_result(data: Any) -> OtpResult:
    d = _obj(data, "otp_check")
    valid = _bool(d, "valid", "otp_check")
    reason = _opt_str(d, "reason", "otp_check")
    if not valid and reason not in ("wrong", "expired", "used"):
        raise ValueError("otp_check.reason is not wrong, expired or used")
    return OtpResult(valid, None if valid else reason)


def parse_customer(data: Any) -> Customer:
    d = _obj(data, "customer")
    cards = tuple(
        Card(_last4(c, "last4", "card"), _str(c, "type", "card"))
        for c in _items(d, "cards", "customer")
    )
    phone = _opt_str(d, "phone", "customer")
    return Customer(_str(d, "id", "customer"), _str(d, "name", "customer"), cards, phone or None)


def parse_sms_receipt(data: Any) -> SmsReceipt:
    d = _obj(data, "sms")
    return SmsReceipt(_str(d, "id", "sms"), _bool(d, "duplicate", "sms"))


def parse_accounts(data: Any) -> list[BankAccount]:
    w = "account"
    return [
        BankAccount(
            _last4(a, "last4", w),
            _str(a, "type", w),
            _str(a, "currency", w),
            _int(a, "balance_fen", w),
            _int(a, "available_fen", w),
        )
        for a in _items(data, "accounts", "accounts")
    ]


def parse_transactions(data: Any) -> list[Transaction]:
    w = "transaction"
    return [
        Transaction(
            _str(t, "id", w),
            _str(t, "at", w),
            _str(t, "description", w, empty=True),
            _int(t, "amount_fen", w),
            _str(t, "currency", w),
            _last4(t, "account_last4", w),
        )
        for t in _items(data, "transactions", "transactions")
    ]


def parse_card_bill(data: Any) -> CardBill:
    d, w = _obj(data, "card_bill"), "card_bill"
    return CardBill(
        _last4(d, "card_last4", w),
        _str(d, "period", w),
        _str(d, "statement_date", w),
        _str(d, "due_date", w),
        _int(d, "amount_fen", w),
        _int(d, "min_payment_fen", w),
        _str(d, "currency", w),
    )


def parse_rate_table(data: Any) -> RateTable:
    rates = tuple(
        Rate(_str(r, "term", "rate"), _str(r, "name", "rate"), _rate(r, "rate", "rate"))
        for r in _items(data, "rates", "rates")
    )
    return RateTable(_str(_obj(data, "rates"), "as_of", "rates"), rates)


def parse_fx_table(data: Any) -> FxTable:
    w = "fx_rate"
    rates = tuple(
        FxRate(
            _str(r, "currency", w),
            _str(r, "name", w),
            _int(r, "unit", w, minimum=1),
            _rate(r, "buy", w),
            _rate(r, "sell", w),
        )
        for r in _items(data, "rates", "fx")
    )
    return FxTable(_str(_obj(data, "fx"), "as_of", "fx"), rates)


def parse_products(data: Any) -> list[Product]:
    w = "product"
    products = []
    for p in _items(data, "products", "products"):
        rate = _opt_str(p, "rate", w)
        if rate is not None and not _RATE.fullmatch(rate):
            raise ValueError("product.rate is not a decimal number")
        products.append(
            Product(
                _str(p, "id", w),
                _str(p, "name", w),
                _str(p, "type", w),
                rate,
                _int(p, "min_amount_fen", w, minimum=0),
                _str(p, "risk", w),
                _str(p, "description", w, empty=True),
            )
        )
    return products
