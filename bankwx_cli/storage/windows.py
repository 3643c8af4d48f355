"""The customer-service window (``domain/windows.py``): when a follower last opened one, and
the customer-service units sent to them since. Tables by migrations.py (m0010)."""

from __future__ import annotations

from bankwx_cli.storage.db import Database


class Windows:
    def __init__(self, db: Database) -> None:
        self.db = db

    def heard(self, account: str, openid: str, kind: str, at: str) -> None:
        """The follower opened a window of this kind (``message`` or ``event``) at ``at``."""
        self.db.execute(
            "INSERT INTO cs_windows (account, openid, kind, opened_at) VALUES (:a, :o, :k, :at) "
            "ON CONFLICT (account, openid, kind) DO UPDATE SET opened_at = excluded.opened_at "
            "WHERE excluded.opened_at > cs_windows.opened_at",
            {"a": account, "o": openid, "k": kind, "at": at},
        )

    def opened(self, account: str, openid: str) -> dict[str, str]:
        """When each kind of window was last opened, by kind."""
        rows = self.db.all(
            "SELECT kind, opened_at FROM cs_windows WHERE account = :a AND openid = :o",
            {"a": account, "o": openid},
        )
        return {row["kind"]: row["opened_at"] for row in rows}

    def used(self, account: str, openid: str, since: str) -> int:
        """Customer-service units for the follower enqueued since ``since`` that count against
        the window: any lane, unless cancelled or failed (WeChat refused them)."""
        return int(
            self.db.scalar(
                "SELECT count(*) FROM outbox WHERE account = :a AND openid = :o "
                "AND created_at >= :since AND kind = 'custom' "
                "AND state NOT IN ('cancelled', 'failed')",
                {"a": account, "o": openid, "since": since},
            )
            or 0
        )

    def arrived_at(self, message_id: int) -> str | None:
        """When an inbound message of the log arrived (its ``at``), or None."""
        found = self.db.scalar("SELECT at FROM messages WHERE id = :id", {"id": message_id})
        return None if found is None else str(found)

    def close(self, account: str, openid: str) -> None:
        """WeChat said the window is closed or spent (45015, 45047): forget it."""
        self.db.execute(
            "DELETE FROM cs_windows WHERE account = :a AND openid = :o",
            {"a": account, "o": openid},
        )
