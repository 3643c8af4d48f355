"""Bank services: followers bound to bank customers, and the actions that answer from the
bank's back-end (balance, transactions, card bill, rates, products, bind, unbind).

A follower is bound to one customer (``follower unbind`` or the ``unbind`` action to change);
a customer may have several followers. A binding keeps the customer id and the card's last
four digits, never a full card number or a phone number. Bindings and unbindings are audited,
a follower's own as operator ``follower:OPENID``.

``balance``, ``transactions`` and ``card_bill`` are sensitive: the core never stores or logs
their replies in clear. Nothing here logs an amount or a number either. A back-end call is
bounded: it ends within ``WORK_S`` of the callback, else the follower gets the busy text
(``text.backend_busy``), as for any BackendUnavailableError. When the receiver's deadline
passes first, it answers success and the late hook (domain/outbox.py) sends the answer.

This module is imported to read the registry's settings and actions: it imports neither the
adapter (``app.backend`` builds it) nor the server.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

from bankwx_cli import texts
from bankwx_cli.clock import iso
from bankwx_cli.domain import account_settings, audit
from bankwx_cli.domain.account_settings import Setting
from bankwx_cli.errors import BankwxError, ConflictError, NotFoundError, ValidationError
from bankwx_cli.models.bank import Binding, masked_card
from bankwx_cli.models.replies import Reply, TextReply

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from bankwx_cli.backend.models import BankBackend
    from bankwx_cli.context import AppContext
    from bankwx_cli.domain.actions import ActionContext
    from bankwx_cli.extensions import Registry
    from bankwx_cli.models.accounts import Account

log = logging.getLogger(__name__)
T = TypeVar("T")

WORK_S = 15.0  # an action's back-end work ends within this many seconds of the callback
MAX_RECEIVER_DEADLINE_S = 5.0  # bankwx serve --deadline is below WeChat's 5 s
TRANSACTIONS_DEFAULT = 5
TRANSACTIONS_MAX = 10
POOL_THREADS = 32  # the receiver's handler threads; the adapter refuses past its own limit
_CUSTOMER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
NEEDS_BINDING = ("balance", "transactions", "card_bill", "bind")


# --- settings -----------------------------------------------------------------------------------


def _public_url(value: str) -> str:
    """https, or http to this machine; no user name, query or fragment; no trailing slash."""
    text = value.strip()
    if not text:
        return ""
    from bankwx_cli.backend.client import is_loopback_host  # only when a value is set

    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - read only to have urlsplit check it
    except ValueError:
        raise ValueError("not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an https://HOST[/PATH] URL")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise ValueError("a user name, password, query or fragment is not allowed")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError(
            f"plain HTTP to '{parts.hostname}', a host that is not this machine: use https"
        )
    return text.rstrip("/")


PUBLIC_URL = Setting(
    "public_url",
    "str",
    "",
    "Public base URL of this bankwx (the binding page is {public_url}/bind/ACCOUNT); the "
    "actions balance, transactions, card_bill and bind need it.",
    "bank",
    "an https URL (http only to 127.0.0.1 or localhost), '' for none",
    _public_url,
)


def bind_url(account: Account) -> str | None:
    """The account's binding page, or None when it has no public URL."""
    base = str(account_settings.value(account, "public_url") or "")
    return f"{base}/bind/{account.name}" if base else None


_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


def oauth_domain(account: Account, given: str | None = None) -> str | None:
    """The web authorisation domain to register with the simulator: ``given`` (checked), else
    the host of the account's public URL, else None (WeChat then refuses with 10003)."""
    if given is not None:
        host = given.strip().lower()
        if not _HOST.fullmatch(host):
            raise ValidationError(
                f"--oauth-domain '{given}' is invalid: give a host name only, without scheme, "
                "port or path (e.g. bank.example.com)."
            )
        return host
    base = str(account_settings.value(account, "public_url") or "")
    return urlsplit(base).hostname if base else None


# --- rule validators (when a rule naming the action is saved) -----------------------------


def _needs_public_url(app: AppContext, account: Account, arg: str | None) -> None:
    if bind_url(account) is None:
        raise ValidationError(
            f"the account '{account.name}' has no public URL, so unbound followers cannot be "
            "sent the binding link. Set it first: bankwx account update "
            f"{account.name} --public-url https://HOST"
        )


def _transactions_arg(app: AppContext, account: Account, arg: str | None) -> None:
    text = (arg or "").strip()
    if not text.isdigit() or not 1 <= int(text) <= TRANSACTIONS_MAX:
        raise ValidationError(
            f"--arg '{arg}' is invalid for transactions: give how many to show, a whole number "
            f"from 1 to {TRANSACTIONS_MAX} (default {TRANSACTIONS_DEFAULT})."
        )
    _needs_public_url(app, account, arg)


# --- rendering ----------------------------------------------------------------------------------


def yuan(fen: int, signed: bool = False) -> str:
    """Fen as yuan with thousands separators: 1234567 -> 12,345.67元 (signed: +12,345.67元)."""
    sign = "-" if fen < 0 else ("+" if signed and fen > 0 else "")
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{cents:02d}元"


def last4(value: str) -> str:
    return f"尾号{value}"


_ACCOUNT_TYPES = {"savings": "活期", "time_deposit": "定期", "current": "活期"}
_CARD_TYPES = {"debit": "借记卡", "credit": "信用卡"}
_RISKS = {"R1": "低风险", "R2": "中低风险", "R3": "中风险", "R4": "中高风险", "R5": "高风险"}


def _currency(code: str) -> str:
    return "" if code == "CNY" else f"（{code}）"


# --- bounded back-end work ----------------------------------------------------------------------

_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    from concurrent.futures import ThreadPoolExecutor  # on first use: start-up time

    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(POOL_THREADS, thread_name_prefix="bank")
        return _pool


def budget(ctx: ActionContext) -> float:
    """Seconds the action's back-end work may still take: it ends within WORK_S of the
    callback. The receiver's deadline (ctx.time_left()) is less than 5 s after the callback,
    so the callback was at most that long before it."""
    return max(0.0, min(WORK_S, ctx.time_left() + WORK_S - MAX_RECEIVER_DEADLINE_S))


class _Busy(Exception):
    """The back-end cannot answer (in time): the follower gets the busy text."""


def _within(ctx: ActionContext, work: Callable[[BankBackend], T]) -> T:
    """Run work against the back-end, bounded by the action's budget; _Busy when it cannot
    answer, fails, or is not done in time (it finishes in the background, unseen)."""
    from concurrent.futures import TimeoutError as FutureTimeout

    from bankwx_cli.backend.errors import BackendUnavailableError

    seconds = budget(ctx)
    try:
        backend = ctx.app.backend
    except BankwxError as exc:  # none configured, or its configuration refused
        log.warning("bank action for %s: no back-end: %s", ctx.account.name, exc)
        raise _Busy from None
    future: Future[T] = _executor().submit(work, backend)
    try:
        return future.result(timeout=seconds)
    except FutureTimeout:
        future.cancel()
        log.warning("bank action for %s: the back-end took over %.1f s", ctx.account.name, seconds)
        raise _Busy from None
    except BackendUnavailableError as exc:
        log.info("bank action for %s: back-end unavailable (%s)", ctx.account.name, exc.reason)
        raise _Busy from None


def _text(ctx: ActionContext, key: str, **values: str) -> str:
    found = texts.text(key, account_settings.texts_of(ctx.account))
    for name, value in values.items():
        found = found.replace("{" + name + "}", value)
    return found


def _busy(ctx: ActionContext) -> Reply:
    return TextReply(_text(ctx, "backend_busy"))


def _unbound(ctx: ActionContext) -> Reply:
    url = bind_url(ctx.account)
    if url is None:  # the setting was removed after the rule was saved
        log.warning("bank action for %s: no public_url for the binding link", ctx.account.name)
        return _busy(ctx)
    return TextReply(_text(ctx, "bind_link", url=url))


def _bound_query(
    ctx: ActionContext, work: Callable[[BankBackend, Binding], str], name: str
) -> Reply:
    """The binding, then work against the back-end; the link when unbound, busy when down."""
    from bankwx_cli.backend.errors import BackendRefusedError

    binding = ctx.app.store.bindings.get(ctx.account.name, ctx.openid)
    if binding is None:
        return _unbound(ctx)
    try:
        return TextReply(_within(ctx, lambda backend: work(backend, binding)))
    except _Busy:
        return _busy(ctx)
    except BackendRefusedError as exc:
        if exc.code == "no_card_bill":
            return TextReply(_text(ctx, "card_bill_none"))
        log.warning("bank action %s for %s: refused (%s)", name, ctx.account.name, exc.code)
        return _busy(ctx)


def _public_query(ctx: ActionContext, work: Callable[[BankBackend], str], name: str) -> Reply:
    from bankwx_cli.backend.errors import BackendRefusedError

    try:
        return TextReply(_within(ctx, work))
    except (_Busy, BackendRefusedError) as exc:
        if isinstance(exc, BackendRefusedError):
            log.warning("bank action %s for %s: refused (%s)", name, ctx.account.name, exc.code)
        return _busy(ctx)


# --- the actions --------------------------------------------------------------------------------


def balance(ctx: ActionContext) -> Reply:
    def work(backend: BankBackend, binding: Binding) -> str:
        found = backend.accounts(binding.customer_id)
        if not found:
            return "您名下暂无可查询的账户。"
        lines = ["您的账户余额："]
        for a in found:
            kind = _ACCOUNT_TYPES.get(a.type, a.type)
            line = f"{last4(a.last4)}（{kind}）{_currency(a.currency)}：余额{yuan(a.balance_fen)}"
            if a.available_fen != a.balance_fen:
                line += f"，可用{yuan(a.available_fen)}"
            lines.append(line)
        return "\n".join(lines)

    return _bound_query(ctx, work, "balance")


def transactions(ctx: ActionContext) -> Reply:
    text = (ctx.arg or "").strip()
    limit = int(text) if text.isdigit() else TRANSACTIONS_DEFAULT
    limit = min(max(limit, 1), TRANSACTIONS_MAX)

    def work(backend: BankBackend, binding: Binding) -> str:
        found = backend.transactions(binding.customer_id, limit)
        if not found:
            return "您近期没有交易记录。"
        lines = [f"最近{len(found)}笔交易："]
        for t in found:
            day = t.at[:10]
            what = t.description or "交易"
            amount = yuan(t.amount_fen, signed=True)
            lines.append(
                f"{day} {what} {amount}{_currency(t.currency)}（{last4(t.account_last4)}）"
            )
        return "\n".join(lines)

    return _bound_query(ctx, work, "transactions")


def card_bill(ctx: ActionContext) -> Reply:
    def work(backend: BankBackend, binding: Binding) -> str:
        bill = backend.card_bill(binding.customer_id)
        cur = _currency(bill.currency)
        return "\n".join(
            (
                f"信用卡{last4(bill.card_last4)} {bill.period} 账单：",
                f"本期应还：{yuan(bill.amount_fen)}{cur}",
                f"最低还款：{yuan(bill.min_payment_fen)}{cur}",
                f"账单日：{bill.statement_date}",
                f"到期还款日：{bill.due_date}",
            )
        )

    return _bound_query(ctx, work, "card_bill")


def rates(ctx: ActionContext) -> Reply:
    def work(backend: BankBackend) -> str:
        deposit, loan = backend.deposit_rates(), backend.loan_rates()
        lines = [f"存款利率（年利率，{deposit.as_of[:10]}）："]
        lines += [f"{r.name}：{r.rate}%" for r in deposit.rates]
        lines.append(f"贷款利率（年利率，{loan.as_of[:10]}）：")
        lines += [f"{r.name}：{r.rate}%" for r in loan.rates]
        return "\n".join(lines)

    return _public_query(ctx, work, "rates")


def fx_rates(ctx: ActionContext) -> Reply:
    def work(backend: BankBackend) -> str:
        table = backend.fx_rates()
        lines = [f"外汇牌价（人民币/外币，{table.as_of[:10]}）："]
        lines += [
            f"{r.name}（{r.currency}，每{r.unit}单位）：买入{r.buy} 卖出{r.sell}"
            for r in table.rates
        ]
        return "\n".join(lines)

    return _public_query(ctx, work, "fx_rates")


def products(ctx: ActionContext) -> Reply:
    def work(backend: BankBackend) -> str:
        found = backend.products()
        if not found:
            return "暂无在售产品。"
        lines = ["在售产品："]
        for p in found:
            rate = f"，参考年化{p.rate}%" if p.rate else ""
            risk = _RISKS.get(p.risk, p.risk)
            lines.append(f"{p.name}{rate}，{yuan(p.min_amount_fen)}起，{risk}")
        return "\n".join(lines)

    return _public_query(ctx, work, "products")


def bind(ctx: ActionContext) -> Reply:
    binding = ctx.app.store.bindings.get(ctx.account.name, ctx.openid)
    if binding is not None:
        return TextReply(_text(ctx, "bind_done", card=binding.card_last4))
    return _unbound(ctx)


def unbind(ctx: ActionContext) -> Reply:
    removed = remove_binding(
        ctx.app, ctx.account, ctx.openid, operator=follower_operator(ctx.openid)
    )
    if removed is None:
        return TextReply(_text(ctx, "unbind_none"))
    return TextReply(_text(ctx, "unbind_done", card=removed.card_last4))


# --- bindings -----------------------------------------------------------------------------------


def follower_operator(openid: str) -> str:
    """The audit trail's operator for a change a follower made themselves."""
    return f"follower:{openid}"


def _audit_params(binding: Binding) -> dict[str, str]:
    return {"openid": binding.openid, "customer_id": binding.customer_id, "card": binding.card}


def add_binding(
    app: AppContext,
    account: Account,
    openid: str,
    customer_id: str,
    card_last4: str,
    operator: str | None = None,
) -> Binding:
    """Store a binding (creating the follower's row if needed), audited; ``operator`` as for
    audit.record (``follower_operator(openid)`` for the follower's own). ConflictError when
    the follower is bound to another customer; the existing binding when to this one."""
    if not re.fullmatch(r"[0-9]{4}", card_last4):
        raise ValidationError("a binding keeps the card's last four digits only.")
    binding = Binding(account.name, openid, customer_id, card_last4, iso(app.clock.now()),
                      operator or app.identity.operator)  # fmt: skip
    with app.store.transaction():
        found = app.store.bindings.get(account.name, openid)
        if found is not None:
            if found.customer_id == customer_id:
                return found
            raise bound_elsewhere(found)
        app.store.followers.ensure(account.name, [openid], binding.bound_at)
        app.store.bindings.add(binding)
        audit.record(app, "binding.add", account.name, _audit_params(binding), operator=operator)
    return binding


def bound_elsewhere(found: Binding) -> ConflictError:
    """The refusal for a follower bound to another customer: one customer per follower."""
    return ConflictError(
        f"follower '{found.openid}' of account '{found.account}' is bound to another customer "
        f"(card {found.card}). Unbind first: bankwx follower unbind {found.openid} --yes"
    )


def remove_binding(
    app: AppContext, account: Account, openid: str, operator: str | None = None
) -> Binding | None:
    """Remove the follower's binding, audited; the binding removed, or None when none."""
    with app.store.transaction():
        found = app.store.bindings.get(account.name, openid)
        if found is None:
            return None
        app.store.bindings.remove(account.name, openid)
        audit.record(app, "binding.remove", account.name, _audit_params(found), operator=operator)
    return found


def binding_of(app: AppContext, account: Account, openid: str) -> Binding | None:
    return app.store.bindings.get(account.name, openid)


def bound_followers(app: AppContext, account: Account, customer_id: str) -> list[Binding]:
    """Every follower of the account bound to the customer (for alerts)."""
    return app.store.bindings.for_customer(account.name, customer_id)


def check_customer_id(customer_id: str) -> str:
    if not _CUSTOMER_ID.fullmatch(customer_id):
        raise ValidationError(
            f"--customer '{customer_id}' is invalid: give the bank's customer id (1 to 64 "
            "letters, digits, - or _)."
        )
    return customer_id


def customer_card(app: AppContext, customer_id: str) -> str:
    """The last four digits of the customer's card to bind (a debit card first), asked of the
    back-end. NotFoundError for a customer the back-end does not know; the back-end's errors
    (exit 1) when it cannot answer."""
    from bankwx_cli.backend.errors import BackendRefusedError

    try:
        customer = app.backend.customer(customer_id)
    except BackendRefusedError as exc:
        if exc.status == 404:
            raise NotFoundError(
                f"the back-end knows no customer '{customer_id}'. Check the id with the bank."
            ) from None
        raise
    cards = sorted(customer.cards, key=lambda c: c.type != "debit")
    if not cards:
        raise ValidationError(f"customer '{customer_id}' has no card at the back-end to bind.")
    return cards[0].last4


def describe(binding: Binding) -> str:
    return f"customer {binding.customer_id}, card {masked_card(binding.card_last4)}"


# --- the area -----------------------------------------------------------------------------------


def install(registry: Registry) -> None:
    registry.setting(PUBLIC_URL)
    registry.action(
        "balance",
        "Reply with the bound follower's account balances (the binding link when unbound).",
        validate=_needs_public_url,
        sensitive=True,
    )(balance)
    registry.action(
        "transactions",
        "Reply with the bound follower's latest transactions (the binding link when unbound).",
        arg=f"how many, 1 to {TRANSACTIONS_MAX}",
        default=str(TRANSACTIONS_DEFAULT),
        validate=_transactions_arg,
        sensitive=True,
    )(transactions)
    registry.action(
        "card_bill",
        "Reply with the bound follower's credit card bill (the binding link when unbound).",
        validate=_needs_public_url,
        sensitive=True,
    )(card_bill)
    registry.action("rates", "Reply with the deposit and loan interest rates.")(rates)
    registry.action("fx_rates", "Reply with the foreign exchange rates.")(fx_rates)
    registry.action("products", "Reply with the products on sale.")(products)
    registry.action(
        "bind",
        "Reply with the binding link (or the card already bound).",
        validate=_needs_public_url,
    )(bind)
    registry.action("unbind", "Remove the follower's binding and confirm it.")(unbind)
