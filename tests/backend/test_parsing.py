"""Whatever the back-end answers, parsing gives a model or ValueError (nothing else), and
answers that follow the contract come through unchanged; any text as a URL is accepted or
refused with BackendConfigError, and what is accepted is https or on this machine."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bankwx_cli.backend import models
from bankwx_cli.backend.client import check_url, is_loopback_host
from bankwx_cli.backend.errors import BackendConfigError

PARSERS: list[Callable[[Any], Any]] = [
    models.parse_health,
    models.parse_customer_match,
    models.parse_otp_request,
    models.parse_otp_result,
    models.parse_customer,
    models.parse_accounts,
    models.parse_transactions,
    models.parse_card_bill,
    models.parse_rate_table,
    models.parse_fx_table,
    models.parse_products,
]

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
keys = st.sampled_from(
    ["status", "version", "customer_id", "card_last4", "accounts", "last4", "balance_fen",
     "rates", "as_of", "valid", "reason", "products", "cards", "transactions", "rate", "x"]
)  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=6),
    max_leaves=20,
)


@pytest.mark.parametrize("parse", PARSERS, ids=lambda p: p.__name__)
@given(value=json_values)
def test_any_value_parses_or_is_refused(parse: Callable[[Any], Any], value: Any) -> None:
    with contextlib.suppress(ValueError):
        parse(value)


digits4 = st.text(alphabet="0123456789", min_size=4, max_size=4)
names = st.text(min_size=1, max_size=10)
fen = st.integers(min_value=-(10**15), max_value=10**15)


@given(
    st.lists(
        st.fixed_dictionaries(
            {"last4": digits4, "type": names, "currency": names, "balance_fen": fen,
             "available_fen": fen}
        ),
        max_size=5,
    )
)  # fmt: skip
def test_accounts_round_trip(rows: list[dict[str, Any]]) -> None:
    parsed = models.parse_accounts(json.loads(json.dumps({"accounts": rows})))
    assert [
        {"last4": a.last4, "type": a.type, "currency": a.currency,
         "balance_fen": a.balance_fen, "available_fen": a.available_fen}
        for a in parsed
    ] == rows  # fmt: skip


decimals = st.decimals(min_value=0, max_value=999_999, places=4, allow_nan=False).map(str)


@given(st.lists(st.tuples(names, names, decimals), max_size=5))
def test_rate_tables_round_trip(rows: list[tuple[str, str, str]]) -> None:
    data = {"as_of": "2026-12-01T00:00:00Z",
            "rates": [{"term": t, "name": n, "rate": r} for t, n, r in rows]}  # fmt: skip
    table = models.parse_rate_table(data)
    assert [(r.term, r.name, r.rate) for r in table.rates] == rows


def test_amounts_must_be_integers() -> None:
    bill = {"card_last4": "1234", "period": "2026-11", "statement_date": "2026-11-25",
            "due_date": "2026-12-15", "amount_fen": 100, "min_payment_fen": 10,
            "currency": "CNY"}  # fmt: skip
    assert models.parse_card_bill(bill).amount_fen == 100
    for bad in (1.0, "100", True, None):
        with pytest.raises(ValueError, match="amount_fen is not an integer"):
            models.parse_card_bill({**bill, "amount_fen": bad})


def test_a_failed_code_check_needs_a_known_reason() -> None:
    assert models.parse_otp_result({"valid": True, "reason": None}) == models.OtpResult(True, None)
    assert models.parse_otp_result({"valid": False, "reason": "expired"}).reason == "expired"
    with pytest.raises(ValueError, match="reason"):
        models.parse_otp_result({"valid": False, "reason": "other"})


@given(st.text(max_size=60))
def test_any_text_as_url(text: str) -> None:
    _check_url_verdict(text)


@given(
    st.sampled_from(["http", "https", "ftp", "HTTP"]),
    st.sampled_from(
        [
            "127.0.0.1",
            "localhost",
            "[::1]",
            "example.com",
            "10.1.2.3",
            "127.0.0.9",
            "[2001:db8::1]",
            "bank.localhost",
            "",
        ]
    ),
    st.one_of(st.none(), st.integers(min_value=0, max_value=70_000)),
    st.text(alphabet="abc/?#@:", max_size=6),
)
def test_built_urls(scheme: str, host: str, port: int | None, tail: str) -> None:
    _check_url_verdict(f"{scheme}://{host}{'' if port is None else f':{port}'}/{tail}")


def _check_url_verdict(text: str) -> None:
    try:
        base = check_url(text)
    except BackendConfigError:
        return
    parts = urlsplit(base)
    assert parts.scheme in ("http", "https")
    assert parts.hostname
    if parts.scheme == "http":
        assert is_loopback_host(parts.hostname)
    assert not base.endswith("/")
