"""The binding page's server-side state (``domain/binding_page.py``): sessions of browsers that
came back from WeChat's authorisation, and failed attempts per follower and per card. Tables by
migrations.py (m0016)."""

from __future__ import annotations

from typing import Any

from bankwx_cli.storage.db import Database

_SESSION = (
    "id, account, openid, csrf, step, customer_id, card_last4, card_key, otp_request, "
    "otp_sent_at, created_at, expires_at"
)
_SETTABLE = {"step", "customer_id", "card_last4", "card_key", "otp_request", "otp_sent_at"}


class BindSessions:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- sessions -------------------------------------------------------------------------------

    def add(self, row: dict[str, Any]) -> None:
        """A new session (``row`` has every column); replaces one with the same id."""
        self.db.execute(
            f"INSERT OR REPLACE INTO bind_sessions ({_SESSION}) VALUES "  # noqa: S608
            "(:id, :account, :openid, :csrf, :step, :customer_id, :card_last4, :card_key, "
            ":otp_request, :otp_sent_at, :created_at, :expires_at)",
            row,
        )

    def get(self, session_id: str, now: float) -> dict[str, Any] | None:
        """The session, unless it expired."""
        row = self.db.one(
            f"SELECT {_SESSION} FROM bind_sessions WHERE id = :id AND expires_at > :now",  # noqa: S608
            {"id": session_id, "now": now},
        )
        return None if row is None else dict(row)

    def update(self, session_id: str, **values: Any) -> None:
        unknown = set(values) - _SETTABLE
        if unknown:
            raise ValueError(f"bind_sessions has no settable {sorted(unknown)}")
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

    def attempts(self, key: str) -> dict[str, Any] | None:
        row = self.db.one(
            "SELECT key, window_start, failures, locked_until, code_sent_at FROM bind_attempts "
            "WHERE key = :k",
            {"k": key},
        )
        return None if row is None else dict(row)

    def set_attempts(
        self,
        key: str,
        window_start: float,
        failures: int,
        locked_until: float | None,
        code_sent_at: float | None,
    ) -> None:
        self.db.execute(
            "INSERT INTO bind_attempts (key, window_start, failures, locked_until, code_sent_at) "
            "VALUES (:k, :w, :f, :l, :c) ON CONFLICT (key) DO UPDATE SET "
            "window_start = excluded.window_start, failures = excluded.failures, "
            "locked_until = excluded.locked_until, code_sent_at = excluded.code_sent_at",
            {"k": key, "w": window_start, "f": failures, "l": locked_until, "c": code_sent_at},
        )

    def last_message_at(self, account: str, openid: str, since: str) -> str | None:
        """When the follower last wrote (a message, not an event) at or after ``since``."""
        found = self.db.scalar(
            "SELECT max(at) FROM messages WHERE account = :a AND at >= :since AND openid = :o "
            "AND direction = 'in' AND msg_type != 'event'",
            {"a": account, "since": since, "o": openid},
        )
        return None if found is None else str(found)
