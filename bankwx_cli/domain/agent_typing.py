"""The typing indicator while an agent types (protocol sheet §5.3, ``message/custom/typing``).

WeChat shows a follower "对方正在输入" for 15 s when asked within 30 s of the follower's last
interaction (45080 later), refuses a second request while one shows (45081), and ends it when a
message reaches the follower. The agent console asks once per follower message: the first
keystroke after the follower last wrote sends ``Typing``, later ones send nothing until the
follower writes again or the agent's reply has ended the indicator. It is never asked for more
than ``TYPING_WITHIN_S`` minus a margin after the follower's last message, by bankwx's clock
(bankwx hears of a message a moment after WeChat, so its count starts a little late).

Best effort: sent directly (not an outbox unit, nothing to retry later), off the console's
screen thread; a failure is logged and counted, never shown as an error.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bankwx_cli.domain import accounts
from bankwx_cli.errors import BankwxError, ConflictError

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext
    from bankwx_cli.models.agents import AgentSession

log = logging.getLogger(__name__)

TYPING_WITHIN_S = 30  # WeChat: the follower's last interaction at most this long ago
MARGIN_S = 2  # bankwx's record of the message trails WeChat's by the receiver's handling
TYPING_LASTS_S = 15  # WeChat shows the indicator this long


def _parsed(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def due(last_heard: datetime | None, sent_at: datetime | None, now: datetime) -> bool:
    """Whether a keystroke now asks WeChat for the indicator: the follower wrote recently
    enough (within ``TYPING_WITHIN_S - MARGIN_S``) and no ``Typing`` was sent since (one
    showing is never asked for again; a reply ended it: see ``Typist.replied``)."""
    if last_heard is None:
        return False
    if now - last_heard > timedelta(seconds=TYPING_WITHIN_S - MARGIN_S):
        return False
    return sent_at is None or sent_at < last_heard


@dataclass
class Typist:
    """One console's typing indicators: per session, when ``Typing`` was last sent; the sends
    made and the failures (counted, logged, otherwise ignored)."""

    sent_at: dict[int, datetime] = field(default_factory=dict)
    sends: int = 0
    failures: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def claim(self, app: AppContext, session: AgentSession) -> bool:
        """A keystroke in the session's reply line: True when ``Typing`` is to be sent now
        (then recorded as sent, so that the next keystroke sends nothing while it goes)."""
        if session.state != "open" or session.agent != app.operator:
            return False
        heard = app.store.agents.last_heard(session.id)
        now = app.clock.now()
        with self._lock:
            if not due(_parsed(heard) if heard else None, self.sent_at.get(session.id), now):
                return False
            self.sent_at[session.id] = now
            return True

    def replied(self, session_id: int) -> None:
        """The agent's reply reached the follower, ending the indicator: the next keystroke
        may ask again (while the follower's message is recent enough)."""
        with self._lock:
            self.sent_at.pop(session_id, None)

    def send(self, app: AppContext, session: AgentSession) -> bool:
        """Send ``Typing`` to the session's follower (after ``claim``); False when WeChat or
        the network refused it (counted)."""
        try:
            send_typing(app, session)
        except BankwxError as exc:
            with self._lock:
                self.failures += 1
            log.info("typing indicator for session %s not shown: %s", session.id, exc)
            return False
        with self._lock:
            self.sends += 1
        return True


def send_typing(app: AppContext, session: AgentSession) -> None:
    """Ask WeChat to show the session's follower that their agent types (one's own open
    session only). Raises ConflictError, WeChatError."""
    from bankwx_cli.wechat import kf

    if session.agent != app.operator:
        raise ConflictError(f"session {session.id} is not yours: no typing indicator.")
    kf.typing(app.client(accounts.get(app, session.account)), session.openid)
