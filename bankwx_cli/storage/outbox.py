"""The durable outbox: units of work to send to WeChat, claimed by dispatchers in the store.

A unit moves pending -> sending -> sent | failed | unknown (| cancelled). A claim belongs to a
dispatcher that heartbeats in ``dispatchers``; a claim whose holder stopped heartbeating (or
whose process on this host is gone) is recovered by whichever dispatcher claims next.

A unit's payload is sealed with the master key (``keys.Sealer``, purpose ``PAYLOAD_PURPOSE``).
A finished unit's payload is purged with the conversation log's retention (the row stays, its
payload becomes ``PURGED``, read as None). A payload stored in clear before payloads were
sealed is still read (``bankwx check`` reports it and ``check --fix`` seals it); one that does
not open is read as None, and a pending unit with such a payload fails when it comes due.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any, cast

from bankwx_cli.errors import ValidationError
from bankwx_cli.keys import Sealer, UnsealError
from bankwx_cli.models.outbox import (
    Dispatcher,
    LaneBacklog,
    OutboxUnit,
    Pause,
    SendResult,
    UnitCounts,
    UnitFilter,
)
from bankwx_cli.storage.db import Database
from bankwx_cli.storage.sealed import SealedColumn

log = logging.getLogger(__name__)

PAYLOAD_PURPOSE = "outbox.payload"
PURGED = ""  # the payload column of a unit whose payload was purged
FINISHED = "('sent', 'failed', 'cancelled', 'unknown')"  # the states of a finished unit (SQL)
UNREADABLE = "the unit's payload does not open with the master key (see bankwx check)"
PAYLOADS = SealedColumn(
    "outbox", "payload", PAYLOAD_PURPOSE, empty="''", droppable=f"state IN {FINISHED}"
)

LANES = ("reply", "alert", "agent", "broadcast")


class Outbox:
    def __init__(self, db: Database, sealer: Sealer | None = None) -> None:
        self.db = db
        self.sealer = sealer or Sealer()

    # --- enqueue ------------------------------------------------------------------------------

    def enqueue(
        self,
        *,
        account: str,
        kind: str,
        lane: str,
        lane_rank: int,
        openid: str | None,
        payload: dict[str, Any],
        key: str,
        source: str | None,
        due_at: float,
        created_at: str,
    ) -> int | None:
        """Insert a pending unit unless its idempotency key exists; returns its id or None.
        ``payload`` is the body WeChat's endpoint for the kind takes (custom, template, mass):
        WeChat's JSON, sealed and sent as it is, hence a dict and not a model."""
        text = json.dumps(payload, ensure_ascii=False)
        row = {
            "account": account,
            "kind": kind,
            "lane": lane,
            "lane_rank": lane_rank,
            "openid": openid,
            "payload": self.sealer.seal(text, PAYLOAD_PURPOSE),
            "idempotency_key": key,
            "source": source,
            "state": "pending",
            "next_attempt_at": due_at,
            "created_at": created_at,
        }
        cursor = self.db.execute(
            "INSERT INTO outbox (account, kind, lane, lane_rank, openid, payload, "
            "idempotency_key, source, state, next_attempt_at, created_at, updated_at) VALUES "
            "(:account, :kind, :lane, :lane_rank, :openid, :payload, :idempotency_key, :source, "
            ":state, :next_attempt_at, :created_at, :created_at) "
            "ON CONFLICT (account, idempotency_key) DO NOTHING",
            row,
        )
        return int(cursor.lastrowid) if cursor.rowcount == 1 and cursor.lastrowid else None

    # --- dispatchers ----------------------------------------------------------------------------

    def heartbeat(self, holder: str, host: str, pid: int, now: float) -> None:
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO dispatchers (holder, host, pid, heartbeat_at) VALUES "
                "(:h, :host, :pid, :now) ON CONFLICT (holder) DO UPDATE SET "
                "heartbeat_at = excluded.heartbeat_at",
                {"h": holder, "host": host, "pid": pid, "now": now},
            )

    def retire(self, holder: str) -> None:
        with self.db.transaction():
            self.db.execute("DELETE FROM dispatchers WHERE holder = :h", {"h": holder})

    def dispatchers(self) -> list[Dispatcher]:
        return [Dispatcher.of(r) for r in self.db.all("SELECT * FROM dispatchers")]

    def stranded(self, holders: list[str]) -> list[OutboxUnit]:
        """Units in 'sending' claimed by these holders (dispatchers found dead)."""
        units: list[OutboxUnit] = []
        for holder in holders:
            units += [
                self._unit(r)
                for r in self.db.all(
                    "SELECT * FROM outbox WHERE state = 'sending' AND claimed_by = :h ORDER BY id",
                    {"h": holder},
                )
            ]
        return units

    def release(self, unit: OutboxUnit, state: str, error: str | None, now: float) -> bool:
        """A stranded unit back to pending, or to unknown with error; False if it moved on."""
        cursor = self.db.execute(
            "UPDATE outbox SET claimed_by = NULL, state = :state, "
            "last_error = coalesce(:error, last_error), updated_at = :at "
            "WHERE id = :id AND state = 'sending' AND claimed_by = :h",
            {"id": unit.id, "h": unit.claimed_by, "state": state, "error": error,
             "at": _iso(now)},
        )  # fmt: skip
        return cursor.rowcount == 1

    def forget(self, holders: list[str]) -> None:
        for holder in holders:
            self.db.execute("DELETE FROM dispatchers WHERE holder = :h", {"h": holder})

    def orphan_holders(self) -> list[str]:
        """Holders of 'sending' units that are not registered as dispatchers at all."""
        return [
            r[0]
            for r in self.db.all(
                "SELECT DISTINCT claimed_by FROM outbox WHERE state = 'sending' "
                "AND claimed_by IS NOT NULL AND claimed_by NOT IN (SELECT holder FROM dispatchers)"
            )
        ]

    def due(
        self, now: float, limit: int, account: str | None, source: str | None = None
    ) -> list[OutboxUnit]:
        """Due, unpaused units, reply lane first (of one source, when given)."""
        sql = (
            "SELECT * FROM outbox o WHERE o.state = 'pending' AND o.next_attempt_at <= :now "
            "AND NOT EXISTS (SELECT 1 FROM outbox_pauses p WHERE (p.account = o.account OR "
            "p.account = '*') AND (p.lane = o.lane OR p.lane = '*'))"
        )
        params: dict[str, Any] = {"now": now, "limit": limit}
        if account:
            sql += " AND o.account = :account"
            params["account"] = account
        if source:
            sql += " AND o.source = :source"
            params["source"] = source
        sql += " ORDER BY o.lane_rank, o.next_attempt_at, o.id LIMIT :limit"
        return [self._unit(r) for r in self.db.all(sql, params)]

    def mark_sending(self, ids: list[int], holder: str, now: float) -> None:
        for unit_id in ids:
            self.db.execute(
                "UPDATE outbox SET state = 'sending', claimed_by = :h, attempts = attempts + 1, "
                "first_attempt_at = coalesce(first_attempt_at, :now), updated_at = :at "
                "WHERE id = :id AND state = 'pending'",
                {"h": holder, "now": now, "id": unit_id, "at": _iso(now)},
            )

    def take_budget(self, account: str, endpoint: str, want: int, rate: int, now: float) -> int:
        """Take up to want calls from the account's per-second budget for endpoint: the
        budget of now's second, or of the next one when another dispatcher already counts in
        it (then calls counted there are not forgotten; a clock set back further starts
        afresh)."""
        window = int(now)
        row = self.db.one(
            "SELECT window, used FROM rate_budget WHERE account = :a AND endpoint = :e",
            {"a": account, "e": endpoint},
        )
        if row and row["window"] == window + 1:
            window += 1
        used = row["used"] if row and row["window"] == window else 0
        granted = max(0, min(want, rate - used))
        if granted:
            self.db.execute(
                "INSERT INTO rate_budget (account, endpoint, window, used) VALUES "
                "(:a, :e, :w, :u) ON CONFLICT (account, endpoint) DO UPDATE SET "
                "window = excluded.window, used = excluded.used",
                {"a": account, "e": endpoint, "w": window, "u": used + granted},
            )
        return granted

    def settle(self, unit_id: int, state: str, error: str | None, now: float) -> bool:
        """A pending unit refused before sending: to state (failed, cancelled) with error."""
        cursor = self.db.execute(
            "UPDATE outbox SET state = :state, last_error = :error, updated_at = :at "
            "WHERE id = :id AND state = 'pending'",
            {"id": unit_id, "state": state, "error": error, "at": _iso(now)},
        )
        return cursor.rowcount == 1

    def postpone(self, unit_id: int, until: float, now: float) -> None:
        self.db.execute(
            "UPDATE outbox SET next_attempt_at = :until, updated_at = :at "
            "WHERE id = :id AND state = 'pending'",
            {"id": unit_id, "until": until, "at": _iso(now)},
        )

    def finish(self, results: list[SendResult], holder: str, now: float) -> list[int]:
        """Record send results.

        Returns the ids recorded: a unit no longer in holder's claim (taken back from a
        dispatcher found dead, perhaps claimed again since) is not.
        """
        recorded: list[int] = []
        with self.db.transaction():
            for result in results:
                cursor = self.db.execute(
                    "UPDATE outbox SET state = :state, claimed_by = NULL, "
                    "attempts = attempts - :undo_attempt, "
                    "wechat_msgid = coalesce(:wechat_msgid, wechat_msgid), "
                    "last_error = :last_error, next_attempt_at = coalesce(:next_attempt_at, "
                    "next_attempt_at), updated_at = :at "
                    "WHERE id = :id AND state = 'sending' AND claimed_by = :holder",
                    {**asdict(result), "at": _iso(now), "holder": holder},
                )
                if cursor.rowcount == 1:
                    recorded.append(result.id)
        return recorded

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Inside a transaction: undo what the body wrote when it raises (and re-raise)."""
        self.db.execute("SAVEPOINT outbox_hook")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK TO outbox_hook")
            self.db.execute("RELEASE outbox_hook")
            raise
        self.db.execute("RELEASE outbox_hook")

    # --- operators ------------------------------------------------------------------------------

    def all(self, filters: UnitFilter, limit: int | None) -> list[OutboxUnit]:
        where: list[str] = []
        params: dict[str, Any] = {}
        for key in ("state", "lane", "account", "source", "kind"):
            value = getattr(filters, key)
            if value:
                where.append(f"{key} = :{key}")
                params[key] = value
        sql = "SELECT * FROM outbox"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id"
        if limit:
            sql += " LIMIT :limit"
            params["limit"] = limit
        return [self._unit(r) for r in self.db.all(sql, params)]

    def get(self, unit_id: int) -> OutboxUnit | None:
        row = self.db.one("SELECT * FROM outbox WHERE id = :id", {"id": unit_id})
        return None if row is None else self._unit(row)

    def retry(self, unit_id: int, now: float) -> None:
        """Back to pending. Raises ValidationError when the unit's payload was purged or does
        not open."""
        stored = self.db.scalar("SELECT payload FROM outbox WHERE id = :id", {"id": unit_id})
        if stored is not None and self._payload(unit_id, stored) is None:
            reason = (
                "was purged with the conversation log's retention (bankwx messages purge)"
                if stored == PURGED
                else "does not open with the master key (see bankwx check)"
            )
            raise ValidationError(
                f"unit {unit_id} cannot be sent again: its payload {reason}. Send the message anew."
            )
        self.db.execute(
            "UPDATE outbox SET state = 'pending', next_attempt_at = :now, claimed_by = NULL, "
            "first_attempt_at = NULL, updated_at = :at WHERE id = :id",
            {"id": unit_id, "now": now, "at": _iso(now)},
        )

    def cancel_source(self, source: str, now: float) -> list[OutboxUnit]:
        """Cancel the source's pending units; returns them as cancelled."""
        rows = self.db.all(
            "UPDATE outbox SET state = 'cancelled', updated_at = :at "
            "WHERE source = :source AND state = 'pending' RETURNING *",
            {"source": source, "at": _iso(now)},
        )
        return [self._unit(r) for r in rows]

    def has_open(self, source: str) -> bool:
        """Whether any unit of the source is still pending or sending."""
        row = self.db.one(
            "SELECT 1 FROM outbox WHERE source = :source AND state IN ('pending', 'sending') "
            "LIMIT 1",
            {"source": source},
        )
        return row is not None

    def counts(self, source: str | None = None) -> UnitCounts:
        """Units by state, of the source (or of the whole outbox)."""
        sql = "SELECT state, count(*) AS n FROM outbox"
        params: dict[str, Any] = {}
        if source:
            sql += " WHERE source = :source"
            params["source"] = source
        sql += " GROUP BY state"
        return UnitCounts({str(r["state"]): int(r["n"]) for r in self.db.all(sql, params)})

    def errors(self, source: str, limit: int, state: str | None = None) -> list[str]:
        """The source's distinct last errors, most frequent first: of its failed and unknown
        units, or of its units in state."""
        where = "state = :state" if state else "state IN ('failed', 'unknown')"
        return [
            str(r[0])
            for r in self.db.all(
                "SELECT last_error, count(*) AS n FROM outbox WHERE source = :source AND "  # noqa: S608
                f"{where} AND last_error IS NOT NULL GROUP BY last_error ORDER BY n DESC, "
                "min(id) LIMIT :limit",
                {"source": source, "state": state, "limit": limit},
            )
        ]

    def stranded_of(self, source: str) -> list[OutboxUnit]:
        """The source's units in 'sending', whoever claimed them."""
        return [
            self._unit(r)
            for r in self.db.all(
                "SELECT * FROM outbox WHERE source = :source AND state = 'sending' ORDER BY id",
                {"source": source},
            )
        ]

    def backlog(self, now: float) -> list[LaneBacklog]:
        """Pending units by lane, with how long the oldest has been due."""
        return [
            LaneBacklog(
                str(r["lane"]),
                int(r["pending"]),
                None if r["oldest_s"] is None else float(r["oldest_s"]),
            )
            for r in self.db.all(
                "SELECT lane, count(*) AS pending, :now - min(next_attempt_at) AS oldest_s "
                "FROM outbox WHERE state = 'pending' GROUP BY lane",
                {"now": now},
            )
        ]

    def next_due_at(self, account: str | None, source: str | None = None) -> float | None:
        """When the first pending unit (of the account, or of the source) is due."""
        sql = "SELECT min(next_attempt_at) FROM outbox WHERE state = 'pending'"
        params: dict[str, Any] = {}
        if account:
            sql += " AND account = :account"
            params["account"] = account
        if source:
            sql += " AND source = :source"
            params["source"] = source
        value = self.db.scalar(sql, params)
        return None if value is None else float(value)

    def record_delivery(self, account: str, msgid: str, status: str) -> list[OutboxUnit]:
        """WeChat's later delivery result on the units it names; returns them."""
        rows = self.db.all(
            "UPDATE outbox SET delivery_status = :status WHERE account = :a AND wechat_msgid = :m "
            "RETURNING *",
            {"status": status, "a": account, "m": msgid},
        )
        return [self._unit(r) for r in rows]

    # --- pauses ---------------------------------------------------------------------------------

    def pause(self, account: str, lane: str, by: str, at: str) -> None:
        self.db.execute(
            "INSERT INTO outbox_pauses (account, lane, paused_by, paused_at) VALUES "
            "(:a, :l, :b, :at) ON CONFLICT (account, lane) DO NOTHING",
            {"a": account, "l": lane, "b": by, "at": at},
        )

    def resume(self, account: str, lane: str) -> int:
        if account == "*" and lane == "*":
            cursor = self.db.execute("DELETE FROM outbox_pauses")
        else:
            cursor = self.db.execute(
                "DELETE FROM outbox_pauses WHERE account = :a AND lane = :l",
                {"a": account, "l": lane},
            )
        return int(cursor.rowcount)

    def pauses(self) -> list[Pause]:
        return [
            Pause.of(r) for r in self.db.all("SELECT * FROM outbox_pauses ORDER BY account, lane")
        ]

    # --- payloads at rest -----------------------------------------------------------------------

    def _unit(self, row: Any) -> OutboxUnit:
        return OutboxUnit.of(row, self._payload(int(row["id"]), row["payload"]))

    def _payload(self, unit_id: int, stored: str | bytes) -> dict[str, Any] | None:
        """The unit's payload; None when it was purged or does not open."""
        if isinstance(stored, str):  # PURGED, or stored in clear before payloads were sealed
            return _json_object(stored) if stored != PURGED else None
        try:
            return _json_object(self.sealer.open(stored, PAYLOAD_PURPOSE))
        except UnsealError:
            pass  # damaged, or sealed under another key
        log.warning("the payload of outbox unit %s does not open with the master key", unit_id)
        return None

    def purge_payloads_before(self, account: str, before: str, batch: int = 1000) -> int:
        """Purge the payloads of the account's finished units last changed before before (ISO
        time), in short transactions; the units stay. Returns how many were purged."""
        total, after = 0, 0
        while True:
            with self.db.transaction():
                ids = [
                    r[0]
                    for r in self.db.all(
                        "SELECT id FROM outbox WHERE id > :after AND account = :account "  # noqa: S608
                        f"AND state IN {FINISHED} AND updated_at < :before AND payload != '' "
                        "ORDER BY id LIMIT :batch",
                        {"after": after, "account": account, "before": before, "batch": batch},
                    )
                ]
                if not ids:
                    return total
                self.db.execute(
                    "UPDATE outbox SET payload = '' WHERE id IN "  # noqa: S608 - integers
                    f"({', '.join(str(int(i)) for i in ids)})"
                )
            total += len(ids)
            after = ids[-1]


def _json_object(text: str | bytes) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(text))  # enqueue() takes a JSON object


def _iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
