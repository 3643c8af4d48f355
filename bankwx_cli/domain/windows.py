"""The customer-service window (protocol sheet §5.3), tracked beside the outbox.

A follower's message opens a window of 48 hours for 5 customer-service messages; a menu click,
a scan or a follow opens one of a minute for 3. bankwx hears of them from the agents' lookup,
``talk_to_agent`` and the late-answer path (``heard_message``); a follower it never heard of
has no open window. A unit WeChat refuses with 45015 or 45047 closes the window
(``closed_by_wechat``, from the outbox's recording transaction). The messages used are the
follower's customer-service units of any lane enqueued since the window opened and not
cancelled or failed, so a late answer and an agent's replies share one allowance.
``allowance`` is read in the transaction that enqueues, so that a check and its enqueue are
one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bankwx_cli.clock import iso

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext

#: kind -> (how long it stays open, messages it allows)
WINDOWS: dict[str, tuple[timedelta, int]] = {
    "message": (timedelta(hours=48), 5),
    "event": (timedelta(minutes=1), 3),
}


@dataclass(frozen=True)
class Allowance:
    """What the follower's open window still allows (``left`` 0 and ``expires_at`` None when
    no window is open)."""

    kind: str | None
    expires_at: str | None
    left: int

    @property
    def open(self) -> bool:
        return self.expires_at is not None


NONE = Allowance(None, None, 0)


def heard(app: AppContext, account: str, openid: str, kind: str, at: datetime) -> None:
    """The follower wrote (``message``) or clicked, scanned or followed (``event``); joins the
    caller's transaction."""
    app.store.windows.heard(account, openid, kind, iso(at))


def heard_message(app: AppContext, account: str, openid: str, kind: str, message_id: int) -> None:
    """``heard`` for an inbound of the log, as of when it arrived (a late answer learns of it
    seconds later; what was enqueued for the follower meanwhile counts against its window)."""
    arrived = app.store.windows.arrived_at(message_id)
    at = datetime.fromisoformat(arrived.replace("Z", "+00:00")) if arrived else app.clock.now()
    heard(app, account, openid, kind, at)


def allowance(app: AppContext, account: str, openid: str) -> Allowance:
    """The open window with messages left, preferring the longest-lived; else the open window
    (spent), else none."""
    now = app.clock.now()
    best = NONE
    for kind, opened_at in app.store.windows.opened(account, openid).items():
        length, limit = WINDOWS.get(kind, WINDOWS["event"])
        opened = datetime.fromisoformat(opened_at.replace("Z", "+00:00"))
        expires = opened + length
        if expires <= now:
            continue
        left = max(0, limit - app.store.windows.used(account, openid, opened_at))
        found = Allowance(kind, iso(expires), left)
        if (found.left > 0, found.expires_at or "") > (best.left > 0, best.expires_at or ""):
            best = found
    return best


def closed_by_wechat(app: AppContext, account: str, openid: str) -> None:
    """A 45015 or 45047: the window is closed or spent, whatever bankwx counted."""
    app.store.windows.close(account, openid)
