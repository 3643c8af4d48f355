"""The shared access tokens (sealed), their refresh leases, and API call counters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bankwx_cli.storage.db import Database

if TYPE_CHECKING:  # imported where used: every command opens the store (start-up time)
    from bankwx_cli.models.wechat import (
        ApiCallCount,
        ApiCallSummary,
        ApiHourCount,
        ApiLatencyCount,
        StoredToken,
    )


class Tokens:
    def __init__(self, db: Database) -> None:
        self.db = db

    def load(self, appid: str) -> StoredToken | None:
        row = self.db.one(
            "SELECT token_enc, expires_at, fetched_at FROM tokens "
            "WHERE appid = :a AND token_enc IS NOT NULL",
            {"a": appid},
        )
        if row is None:
            return None
        from bankwx_cli.models.wechat import StoredToken

        return StoredToken(
            bytes(row["token_enc"]), float(row["expires_at"]), float(row["fetched_at"])
        )

    def save(self, appid: str, token_enc: bytes, expires_at: float, fetched_at: float) -> None:
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO tokens (appid, token_enc, expires_at, fetched_at) "
                "VALUES (:a, :t, :e, :f) ON CONFLICT (appid) DO UPDATE SET "
                "token_enc = excluded.token_enc, expires_at = excluded.expires_at, "
                "fetched_at = excluded.fetched_at",
                {"a": appid, "t": token_enc, "e": expires_at, "f": fetched_at},
            )

    def discard(self, appid: str, token_enc: bytes) -> None:
        with self.db.transaction():
            self.db.execute(
                "UPDATE tokens SET token_enc = NULL, expires_at = NULL "
                "WHERE appid = :a AND token_enc = :t",
                {"a": appid, "t": token_enc},
            )

    def acquire(self, appid: str, holder: str, until: float, now: float) -> bool:
        with self.db.transaction():
            cursor = self.db.execute(
                "INSERT INTO tokens (appid, lease_holder, lease_until) VALUES (:a, :h, :u) "
                "ON CONFLICT (appid) DO UPDATE SET lease_holder = excluded.lease_holder, "
                "lease_until = excluded.lease_until "
                "WHERE tokens.lease_until IS NULL OR tokens.lease_until < :now "
                "OR tokens.lease_holder = excluded.lease_holder",
                {"a": appid, "h": holder, "u": until, "now": now},
            )
            return cursor.rowcount == 1

    def release(self, appid: str, holder: str) -> None:
        with self.db.transaction():
            self.db.execute(
                "UPDATE tokens SET lease_holder = NULL, lease_until = NULL "
                "WHERE appid = :a AND lease_holder = :h",
                {"a": appid, "h": holder},
            )

    def sealed_current(self, appid: str) -> bytes | None:
        value = self.db.scalar("SELECT token_enc FROM tokens WHERE appid = :a", {"a": appid})
        return None if value is None else bytes(value)


class ApiCalls:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self,
        rows: Sequence[ApiCallCount],
        hourly: Sequence[ApiHourCount] = (),
        latency: Sequence[ApiLatencyCount] = (),
    ) -> None:
        """Add counted calls, and in the same transaction the API report's hourly roll-up:
        ``hourly`` (calls, errors, retries) and ``latency`` (a histogram per hour)."""
        from dataclasses import asdict

        from bankwx_cli.storage.reports import Rollups

        rollups = Rollups(self.db)
        with self.db.transaction():
            for row in rows:
                self.db.execute(
                    "INSERT INTO api_calls (appid, endpoint, bucket, outcome, errcode, calls, "
                    "total_ms, max_ms, retries) VALUES (:appid, :endpoint, :bucket, :outcome, "
                    ":errcode, :calls, :total_ms, :max_ms, :retries) "
                    "ON CONFLICT (appid, endpoint, bucket, outcome, errcode) DO UPDATE SET "
                    "calls = api_calls.calls + excluded.calls, "
                    "total_ms = api_calls.total_ms + excluded.total_ms, "
                    "max_ms = max(api_calls.max_ms, excluded.max_ms), "
                    "retries = api_calls.retries + excluded.retries",
                    asdict(row),
                )
            for hour in hourly:
                counts = asdict(hour)
                rollups.add("rollup_api", counts, counts)
            for slot in latency:
                counts = asdict(slot)
                rollups.add("rollup_api_latency", counts, counts)

    def summary(self, appid: str | None = None, since: str | None = None) -> list[ApiCallSummary]:
        where, params = [], {}
        if appid:
            where.append("appid = :appid")
            params["appid"] = appid
        if since:
            where.append("bucket >= :since")
            params["since"] = since
        sql = (
            "SELECT appid, endpoint, outcome, errcode, sum(calls) AS calls, "
            "sum(total_ms) / sum(calls) AS avg_ms, max(max_ms) AS max_ms FROM api_calls"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " GROUP BY appid, endpoint, outcome, errcode ORDER BY appid, endpoint, outcome"
        from bankwx_cli.models.wechat import ApiCallSummary

        return [
            ApiCallSummary(
                appid=r["appid"],
                endpoint=r["endpoint"],
                outcome=r["outcome"],
                errcode=int(r["errcode"] or 0),
                calls=int(r["calls"]),
                avg_ms=float(r["avg_ms"] or 0.0),
                max_ms=float(r["max_ms"] or 0.0),
            )
            for r in self.db.all(sql, params)
        ]
