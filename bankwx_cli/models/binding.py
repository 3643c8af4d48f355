"""The binding page's server-side state (``domain/binding_page.py``): a browser's session and
the failed attempts counted per follower and per card. Times are Unix seconds."""

from __future__ import annotations

from dataclasses import dataclass

from bankwx_cli.models.changes import KEEP, Keep


@dataclass(frozen=True)
class BindSession:
    """A browser that came back from WeChat's authorisation, at the card step or the code step.

    ``customer_id``, ``card_last4``, ``card_key`` and ``otp_request`` are set once the card and
    phone checked (step ``code``); never a full card number or a phone number.
    """

    id: str  # a hash of the cookie's session id
    account: str
    openid: str
    csrf: str  # the form token
    step: str  # card, code
    created_at: str
    expires_at: float
    customer_id: str | None = None
    card_last4: str | None = None
    card_key: str | None = None  # the card's attempts key (a keyed hash of its number)
    otp_request: str | None = None
    otp_sent_at: float | None = None


@dataclass(frozen=True)
class BindSessionChange:
    """What a step changes in a session (a change set: ``KEEP`` leaves the field as stored)."""

    step: str | Keep = KEEP
    customer_id: str | Keep | None = KEEP
    card_last4: str | Keep | None = KEEP
    card_key: str | Keep | None = KEEP
    otp_request: str | Keep | None = KEEP
    otp_sent_at: float | Keep | None = KEEP


@dataclass(frozen=True)
class BindAttempts:
    """Failed attempts under one key (a follower, or a card by its keyed hash) in the window
    that started at ``window_start``; when it is locked, and when a code was last sent."""

    key: str
    window_start: float
    failures: int = 0
    locked_until: float | None = None
    code_sent_at: float | None = None
