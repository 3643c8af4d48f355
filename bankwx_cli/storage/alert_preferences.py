"""Followers' alert preferences (table ``alert_preferences``, one row per follower who set any;
no row: the defaults)."""

from __future__ import annotations

import json
import sqlite3

from bankwx_cli.models.alert_preferences import AlertPreferences
from bankwx_cli.storage.db import Database


def _preferences(row: sqlite3.Row) -> AlertPreferences:
    off = json.loads(row["off_types"] or "[]")
    return AlertPreferences(
        account=str(row["account"]),
        openid=str(row["openid"]),
        off_types=tuple(str(t) for t in off),
        min_amount_fen=None if row["min_amount_fen"] is None else int(row["min_amount_fen"]),
        quiet_hours=row["quiet_hours"],
        updated_at=str(row["updated_at"]),
    )


class AlertPreferencesStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, account: str, openid: str) -> AlertPreferences | None:
        """The follower's stored preferences, or None when they set nothing."""
        row = self.db.one(
            "SELECT account, openid, off_types, min_amount_fen, quiet_hours, updated_at "
            "FROM alert_preferences WHERE account = :a AND openid = :o",
            {"a": account, "o": openid},
        )
        return None if row is None else _preferences(row)

    def for_followers(self, account: str, openids: list[str]) -> dict[str, AlertPreferences]:
        """The stored preferences of these followers, by openid (those without: absent)."""
        found: dict[str, AlertPreferences] = {}
        for start in range(0, len(openids), 500):
            chunk = openids[start : start + 500]
            names = {f"o{i}": o for i, o in enumerate(chunk)}
            marks = ", ".join(f":{k}" for k in names)
            rows = self.db.all(
                "SELECT account, openid, off_types, min_amount_fen, quiet_hours, updated_at "  # noqa: S608
                f"FROM alert_preferences WHERE account = :a AND openid IN ({marks})",
                {"a": account, **names},
            )
            for row in rows:
                found[str(row["openid"])] = _preferences(row)
        return found

    def put(self, prefs: AlertPreferences) -> None:
        """Store the follower's preferences (a row of defaults is removed). Call inside a
        transaction."""
        if prefs.is_default:
            self.db.execute(
                "DELETE FROM alert_preferences WHERE account = :a AND openid = :o",
                {"a": prefs.account, "o": prefs.openid},
            )
            return
        self.db.execute(
            "INSERT INTO alert_preferences (account, openid, off_types, min_amount_fen, "
            "quiet_hours, updated_at) VALUES (:a, :o, :off, :min, :quiet, :at) "
            "ON CONFLICT (account, openid) DO UPDATE SET off_types = excluded.off_types, "
            "min_amount_fen = excluded.min_amount_fen, quiet_hours = excluded.quiet_hours, "
            "updated_at = excluded.updated_at",
            {
                "a": prefs.account,
                "o": prefs.openid,
                "off": json.dumps(list(prefs.off_types), ensure_ascii=False),
                "min": prefs.min_amount_fen,
                "quiet": prefs.quiet_hours,
                "at": prefs.updated_at,
            },
        )
