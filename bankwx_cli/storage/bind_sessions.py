"""The binding page's server-side state (``domain/binding_page.py``): sessions of browsers that
came back from WeChat's authorisation, and failed attempts per follower and per card. Tables by
migrations.py (m0016)."""

from __future__ import annotations

import sqlite3

from bankwx_cli.models.binding import BindAttempts, BindSession, BindSessionChange
from bankwx_cli.models.changes import given
from bankwx_cli.storage.db import Database

_SESSION = (
    "id, account, openid, csrf, step, customer_id, card_last4, card_key, otp_request, "
    "otp_sent_at, created_at, expires_at"
)


def _text(value: str | None) -> str | None:
    return None if value is None else str(value)


def _number(value: float | None) -> float | None:
    return None if value is None else float(value)


def _session(row: sqlite3.Row) -> BindSession:
    return BindSession(
        id=str(row["id"]),
        account=str(row["account"]),
        openid=str(row["openid"]),
        csrf=str(row["csrf"]),
        step=str(row["step"]),
        created_at=str(row["created_at"]),
        expires_at=float(row["expires_at"]),
        customer_id=_text(row["customer_id"]),
        card_last4=_text(row["card_last4"]),
        card_key=_text(row["card_key"]),
        otp_request=_text(row["otp_request"]),
        otp_sent_at=_number(row["otp_sent_at"]),
    )


class BindSessions:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- sessions -------------------------------------------------------------------------------

    def add(self, session: BindSession) -> None:
        """A new session; replaces one with the same id."""
        self.db.execute(
            f"INSERT OR REPLACE INTO bind_sessions ({_SESSION}) VALUES "  # noqa: S608
            "(:id, :account, :openid, :csrf, :step, :customer_id, :card_last4, :card_key, "
            ":otp_request, :otp_sent_at, :created_at, :expires_at)",
            {"id": session.id, "account": session.account, "openid": session.openid,
             "csrf": session.csrf, "step": session.step, "customer_id": session.customer_id,
             "card_last4": session.card_last4, "card_key": session.card_key,
             "otp_request": session.otp_request, "otp_sent_at": session.otp_sent_at,
             "created_at": session.created_at, "expires_at": session.expires_at},
        )  # fmt: skip

    def get(self, session_id: str, now: float) -> BindSession | None:
        """The session, unless it expired."""
        row = self.db.one(
            f"SELECT {_SESSION} FROM bind_sessions WHERE id = :id AND expires_at > :now",  # noqa: S608
            {"id": session_id, "now": now},
        )
        return None if row is None else _session(row)

    def update(self, session_id: str, change: BindSessionChange) -> None:
        values = given(change)
        if not values:
            return
        sets = ", ".join(f"{name} = :{name}" for name in values)
        self.db.execute(
            f"UPDATE bind_sessions SET {sets} WHERE id = :id",  # noqa: S608
            {**values, "id": session_id},
        )

    def remove(self, session_id: str) -> None:
        self.db.execute("DELETE FROM bind_sessions WHERE id = :id", {"id": session_id})

    def purge(self, now: float) -> int:
        """Forget expired sessions."""
        cursor = self.db.execute("DELETE FROM bind_sessions WHERE expires_at <= :now", {"now": now})
        return cursor.rowcount

    # --- failed attempts ----------------------------------------------------------------------

    def attempts(self, key: str) -> BindAttempts | None:
        row = self.db.one(
            "SELECT key, window_start, failures, locked_until, code_sent_at FROM bind_attempts "
            "WHERE key = :k",
            {"k": key},
        )
        if row is None:
            return None
        return BindAttempts(
            key=str(row["key"]),
            window_start=float(row["window_start"]),
            failures=int(row["failures"] or 0),
            locked_until=_number(row["locked_until"]),
            code_sent_at=_number(row["code_sent_at"]),
        )

    def set_attempts(self, attempts: BindAttempts) -> None:
        """Store the key's attempts (replacing what was stored)."""
        self.db.execute(
            "INSERT INTO bind_attempts (key, window_start, failures, locked_until, code_sent_at) "
            "VALUES (:k, :w, :f, :l, :c) ON CONFLICT (key) DO UPDATE SET "
            "window_start = excluded.window_start, failures = excluded.failures, "
            "locked_until = excluded.locked_until, code_sent_at = excluded.code_sent_at",
            {
                "k": attempts.key,
                "w": attempts.window_start,
                "f": attempts.failures,
                "l": attempts.locked_until,
                "c": attempts.code_sent_at,
            },
        )

    def last_message_at(self, account: str, openid: str, since: str) -> str | None:
        """When the follower last wrote (a message, not an event) at or after ``since``."""
        found = self.db.scalar(
            "SELECT max(at) FROM messages WHERE account = :a AND at >= :since AND openid = :o "
            "AND direction = 'in' AND msg_type != 'event'",
            {"a": account, "since": since, "o": openid},
        )
        return None if found is None else str(found)
