"""Alerts (tables ``alert_sources``, ``alert_rules``, ``alert_events``, ``alert_recipients``,
``alert_rejections``).

A source's key is stored as its keyed hash only (the domain hashes). An event's data and
rendered texts are sealed with the master key (purpose ``DATA_PURPOSE``), as outbox payloads.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from bankwx_cli.keys import Sealer, UnsealError
from bankwx_cli.models.alerts import DUPLICATE, AlertEvent, AlertRecipient, AlertRule, AlertSource
from bankwx_cli.models.changes import KEEP, Keep
from bankwx_cli.storage.db import Database
from bankwx_cli.storage.reports import AlertRollups
from bankwx_cli.storage.sealed import SealedColumn

DATA_PURPOSE = "alert.data"
EVENT_DATA = SealedColumn("alert_events", "data", DATA_PURPOSE, empty="''")

_SOURCE = "id, name, account, created_at, created_by, last_used_at, rotated_at, old_key_until"
_RULE = "id, account, type, template_id, fields, label, url, sms, security, created_at, created_by"
_EVENT = (
    "id, source, event_id, account, type, customer_id, occurred_at, security, amount_fen, "
    "state, reason, "
    "channel, sms_unit, received_at, received_ts, sent_at"
)
_RECIPIENT = "event, openid, unit_id, state, reason, msgid, accepted_ts, delivery, deferred"


def _source(row: Any) -> AlertSource:
    until = row["old_key_until"]
    return AlertSource(
        id=int(row["id"]),
        name=str(row["name"]),
        account=str(row["account"]),
        created_at=str(row["created_at"]),
        created_by=str(row["created_by"]),
        last_used_at=row["last_used_at"],
        rotated_at=row["rotated_at"],
        old_key_until=None if until is None else float(until),
    )


def _rule(row: Any) -> AlertRule:
    return AlertRule(
        id=int(row["id"]),
        account=str(row["account"]),
        type=str(row["type"]),
        template_id=str(row["template_id"]),
        fields=json.loads(row["fields"]),
        label=str(row["label"]),
        url=row["url"],
        sms=row["sms"],
        security=bool(row["security"]),
        created_at=str(row["created_at"]),
        created_by=str(row["created_by"]),
    )


def _event(row: Any) -> AlertEvent:
    return AlertEvent(
        id=int(row["id"]),
        source=str(row["source"]),
        event_id=str(row["event_id"]),
        account=str(row["account"]),
        type=str(row["type"]),
        customer_id=str(row["customer_id"]),
        occurred_at=row["occurred_at"],
        security=bool(row["security"]),
        amount_fen=None if row["amount_fen"] is None else int(row["amount_fen"]),
        state=str(row["state"]),
        reason=row["reason"],
        channel=row["channel"],
        sms_unit=None if row["sms_unit"] is None else int(row["sms_unit"]),
        received_at=str(row["received_at"]),
        received_ts=float(row["received_ts"]),
        sent_at=row["sent_at"],
    )


def _recipient(row: Any) -> AlertRecipient:
    accepted = row["accepted_ts"]
    return AlertRecipient(
        event=int(row["event"]),
        openid=str(row["openid"]),
        unit_id=None if row["unit_id"] is None else int(row["unit_id"]),
        state=str(row["state"]),
        reason=row["reason"],
        msgid=row["msgid"],
        accepted_ts=None if accepted is None else float(accepted),
        delivery=row["delivery"],
        deferred=bool(row["deferred"]),
    )


def _given(**values: object) -> dict[str, object]:
    """The columns an update sets (those not ``KEEP``); at least one."""
    found = {k: v for k, v in values.items() if v is not KEEP}
    if not found:
        raise ValueError("nothing to set")
    return found


def _in(prefix: str, values: Iterable[str], params: dict[str, Any]) -> str:
    names = []
    for i, value in enumerate(values):
        params[f"{prefix}{i}"] = value
        names.append(f":{prefix}{i}")
    return "(" + (", ".join(names) or "NULL") + ")"


class Alerts:
    def __init__(self, db: Database, sealer: Sealer | None = None) -> None:
        self.db = db
        self.sealer = sealer or Sealer()
        self.rollups = AlertRollups(db)  # the alerts report's counts, in each change

    # --- sources --------------------------------------------------------------------------

    def add_source(self, name: str, account: str, key_hash: str, at: str, by: str) -> bool:
        """False (nothing written) when the name is taken. Call inside a transaction."""
        cursor = self.db.execute(
            "INSERT INTO alert_sources (name, account, key_hash, created_at, created_by) "
            "VALUES (:n, :a, :h, :at, :by) ON CONFLICT (name) DO NOTHING",
            {"n": name, "a": account, "h": key_hash, "at": at, "by": by},
        )
        return cursor.rowcount == 1

    def sources(self, accounts: tuple[str, ...] | None = None) -> list[AlertSource]:
        params: dict[str, Any] = {}
        where = "" if accounts is None else f"WHERE account IN {_in('a', accounts, params)}"
        rows = self.db.all(f"SELECT {_SOURCE} FROM alert_sources {where} ORDER BY name", params)  # noqa: S608
        return [_source(r) for r in rows]

    def source(self, name: str) -> AlertSource | None:
        row = self.db.one(f"SELECT {_SOURCE} FROM alert_sources WHERE name = :n", {"n": name})  # noqa: S608
        return None if row is None else _source(row)

    def source_by_key(self, key_hash: str, now: float) -> AlertSource | None:
        """The source whose key, or old key still in its grace period, hashes to key_hash."""
        row = self.db.one(
            f"SELECT {_SOURCE} FROM alert_sources WHERE key_hash = :h "  # noqa: S608
            f"UNION ALL SELECT {_SOURCE} FROM alert_sources "
            "WHERE old_key_hash = :h AND old_key_until > :now LIMIT 1",
            {"h": key_hash, "now": now},
        )
        return None if row is None else _source(row)

    def remove_source(self, name: str) -> bool:
        cursor = self.db.execute("DELETE FROM alert_sources WHERE name = :n", {"n": name})
        return cursor.rowcount == 1

    def rotate(self, name: str, key_hash: str, old_until: float, at: str) -> bool:
        cursor = self.db.execute(
            "UPDATE alert_sources SET old_key_hash = key_hash, old_key_until = :until, "
            "key_hash = :h, rotated_at = :at WHERE name = :n",
            {"n": name, "h": key_hash, "until": old_until, "at": at},
        )
        return cursor.rowcount == 1

    def touch(self, source_id: int, at: str) -> None:
        self.db.execute(
            "UPDATE alert_sources SET last_used_at = :at WHERE id = :id",
            {"id": source_id, "at": at},
        )

    # --- rules ----------------------------------------------------------------------------

    def add_rule(self, rule: AlertRule) -> int | None:
        """The new rule's id; None when the account has a rule for the type."""
        cursor = self.db.execute(
            "INSERT INTO alert_rules (account, type, template_id, fields, label, url, sms, "
            "security, created_at, created_by) VALUES (:account, :type, :template_id, :fields, "
            ":label, :url, :sms, :security, :created_at, :created_by) "
            "ON CONFLICT (account, type) DO NOTHING",
            {
                "account": rule.account,
                "type": rule.type,
                "template_id": rule.template_id,
                "fields": json.dumps(dict(rule.fields), ensure_ascii=False),
                "label": rule.label,
                "url": rule.url,
                "sms": rule.sms,
                "security": int(rule.security),
                "created_at": rule.created_at,
                "created_by": rule.created_by,
            },
        )
        return int(cursor.lastrowid) if cursor.rowcount == 1 and cursor.lastrowid else None

    def rules(self, accounts: tuple[str, ...] | None = None) -> list[AlertRule]:
        params: dict[str, Any] = {}
        where = "" if accounts is None else f"WHERE account IN {_in('a', accounts, params)}"
        sql = f"SELECT {_RULE} FROM alert_rules {where} ORDER BY account, type"  # noqa: S608
        return [_rule(r) for r in self.db.all(sql, params)]

    def rule(self, account: str, type_: str) -> AlertRule | None:
        row = self.db.one(
            f"SELECT {_RULE} FROM alert_rules WHERE account = :a AND type = :t",  # noqa: S608
            {"a": account, "t": type_},
        )
        return None if row is None else _rule(row)

    def rule_by_id(self, rule_id: int) -> AlertRule | None:
        row = self.db.one(f"SELECT {_RULE} FROM alert_rules WHERE id = :id", {"id": rule_id})  # noqa: S608
        return None if row is None else _rule(row)

    def remove_rule(self, rule_id: int) -> bool:
        cursor = self.db.execute("DELETE FROM alert_rules WHERE id = :id", {"id": rule_id})
        return cursor.rowcount == 1

    # --- events ---------------------------------------------------------------------------

    def add_event(
        self,
        *,
        source: str,
        event_id: str,
        account: str,
        type_: str,
        customer_id: str,
        occurred_at: str | None,
        security: bool,
        amount_fen: int | None,
        content_hash: str,
        data: Mapping[str, Any],
        state: str,
        received_at: str,
        received_ts: float,
    ) -> int | None:
        """The stored event's row id; None when the source has an event with this id.

        ``data`` stays a mapping on purpose: it is the bank's own JSON payload of the event (and
        the texts rendered from it), whose fields each rule's template names; it is sealed as a
        document, never read column by column."""
        text = json.dumps(data, ensure_ascii=False)
        cursor = self.db.execute(
            "INSERT INTO alert_events (source, event_id, account, type, customer_id, "
            "occurred_at, security, amount_fen, content_hash, data, state, received_at, "
            "received_ts) VALUES (:source, :event_id, :account, :type, :customer_id, "
            ":occurred_at, :security, :amount_fen, :hash, :data, :state, :received_at, "
            ":received_ts) ON CONFLICT (source, event_id) DO NOTHING",
            {
                "source": source,
                "event_id": event_id,
                "account": account,
                "type": type_,
                "customer_id": customer_id,
                "occurred_at": occurred_at,
                "security": int(security),
                "amount_fen": amount_fen,
                "hash": content_hash,
                "data": self.sealer.seal(text, DATA_PURPOSE),
                "state": state,
                "received_at": received_at,
                "received_ts": received_ts,
            },
        )
        if cursor.rowcount != 1 or not cursor.lastrowid:
            return None
        self.rollups.moved([], self.rollups.event(int(cursor.lastrowid)))
        return int(cursor.lastrowid)

    def content_hash(self, source: str, event_id: str) -> str | None:
        value = self.db.scalar(
            "SELECT content_hash FROM alert_events WHERE source = :s AND event_id = :e",
            {"s": source, "e": event_id},
        )
        return None if value is None else str(value)

    def event(self, row_id: int) -> AlertEvent | None:
        row = self.db.one(f"SELECT {_EVENT} FROM alert_events WHERE id = :id", {"id": row_id})  # noqa: S608
        return None if row is None else _event(row)

    def events_by_id(self, event_id: str, source: str | None = None) -> list[AlertEvent]:
        sql = f"SELECT {_EVENT} FROM alert_events WHERE event_id = :e"  # noqa: S608
        params = {"e": event_id}
        if source is not None:
            sql += " AND source = :s"
            params["s"] = source
        return [_event(r) for r in self.db.all(sql + " ORDER BY id", params)]

    def data(self, row_id: int) -> dict[str, Any] | None:
        """The event's data and texts, opened; None when purged or not opening. The bank's own
        JSON payload (see ``add_event``), hence a dict and not a model."""
        stored = self.db.scalar("SELECT data FROM alert_events WHERE id = :id", {"id": row_id})
        if not stored:
            return None
        try:
            opened = self.sealer.open(bytes(stored), DATA_PURPOSE)
        except UnsealError:
            return None
        found: dict[str, Any] = json.loads(opened)
        return found

    def purge_data_before(self, account: str, before: str, batch: int = 1000) -> int:
        """Purge the sealed data of the account's events received before before (ISO time), and
        an amount an older bankwx kept beside it, in short transactions; the events stay.
        Returns how many were purged."""
        total = 0
        while True:
            with self.db.transaction():
                cursor = self.db.execute(
                    "UPDATE alert_events SET data = '', amount_fen = NULL WHERE id IN "
                    "(SELECT id FROM alert_events "
                    "WHERE account = :a AND received_at < :before AND data != '' LIMIT :batch)",
                    {"a": account, "before": before, "batch": batch},
                )
            if cursor.rowcount <= 0:
                return total
            total += cursor.rowcount

    def update_event(
        self,
        row_id: int,
        *,
        state: str | Keep = KEEP,
        reason: str | Keep | None = KEEP,
        channel: str | Keep | None = KEEP,
        sms_unit: int | Keep | None = KEEP,
        sent_at: str | Keep | None = KEEP,
    ) -> None:
        """Set some of state, reason, channel, sms_unit, sent_at (the others as stored)."""
        values = _given(state=state, reason=reason, channel=channel, sms_unit=sms_unit,
                        sent_at=sent_at)  # fmt: skip
        sets = ", ".join(f"{k} = :{k}" for k in sorted(values))
        counted = bool({"state", "channel"} & set(values))
        before = self.rollups.event(row_id) if counted else []
        self.db.execute(f"UPDATE alert_events SET {sets} WHERE id = :id", {**values, "id": row_id})  # noqa: S608
        if counted:
            self.rollups.moved(before, self.rollups.event(row_id))

    def event_of_sms(self, unit_id: int) -> AlertEvent | None:
        row = self.db.one(f"SELECT {_EVENT} FROM alert_events WHERE sms_unit = :u", {"u": unit_id})  # noqa: S608
        return None if row is None else _event(row)

    # --- recipients -----------------------------------------------------------------------

    def add_recipient(
        self,
        event: int,
        openid: str,
        unit_id: int | None,
        state: str,
        reason: str | None,
        deferred: bool = False,
    ) -> None:
        cursor = self.db.execute(
            "INSERT INTO alert_recipients (event, openid, unit_id, state, reason, deferred) "
            "VALUES (:e, :o, :u, :s, :r, :d) ON CONFLICT (event, openid) DO NOTHING",
            {"e": event, "o": openid, "u": unit_id, "s": state, "r": reason, "d": int(deferred)},
        )
        if cursor.rowcount == 1:
            self.rollups.moved([], self.rollups.recipient(event, openid))

    def mark_deferred(self, unit_id: int) -> None:
        """The recipient's unit waited for quiet hours (its latency is not counted)."""
        before = self.rollups.of_unit(unit_id)
        self.db.execute(
            "UPDATE alert_recipients SET deferred = 1 WHERE unit_id = :u", {"u": unit_id}
        )
        self.rollups.moved(before, self.rollups.of_unit(unit_id))

    def recipients(self, event: int) -> list[AlertRecipient]:
        rows = self.db.all(
            f"SELECT {_RECIPIENT} FROM alert_recipients WHERE event = :e ORDER BY openid",  # noqa: S608
            {"e": event},
        )
        return [_recipient(r) for r in rows]

    def recipient_of(self, unit_id: int) -> AlertRecipient | None:
        row = self.db.one(
            f"SELECT {_RECIPIENT} FROM alert_recipients WHERE unit_id = :u",  # noqa: S608
            {"u": unit_id},
        )
        return None if row is None else _recipient(row)

    def update_recipient(
        self,
        event: int,
        openid: str,
        *,
        state: str | Keep = KEEP,
        reason: str | Keep | None = KEEP,
        msgid: str | Keep | None = KEEP,
        accepted_ts: float | Keep | None = KEEP,
        delivery: str | Keep | None = KEEP,
    ) -> None:
        """Set some of state, reason, msgid, accepted_ts, delivery (the others as stored)."""
        values = _given(state=state, reason=reason, msgid=msgid, accepted_ts=accepted_ts,
                        delivery=delivery)  # fmt: skip
        sets = ", ".join(f"{k} = :{k}" for k in sorted(values))
        counted = bool({"state", "msgid", "accepted_ts"} & set(values))
        before = self.rollups.recipient(event, openid) if counted else []
        self.db.execute(
            f"UPDATE alert_recipients SET {sets} WHERE event = :e AND openid = :o",  # noqa: S608
            {**values, "e": event, "o": openid},
        )
        if counted:
            self.rollups.moved(before, self.rollups.recipient(event, openid))

    # --- job results before their msgid is recorded --------------------------------------

    def has_unit_with(self, account: str, msgid: str) -> bool:
        """Whether an outbox unit of the account holds this WeChat msgid."""
        found = self.db.scalar(
            "SELECT 1 FROM outbox WHERE account = :a AND wechat_msgid = :m LIMIT 1",
            {"a": account, "m": msgid},
        )
        return found is not None

    def keep_job_status(self, account: str, msgid: str, status: str, at: str) -> None:
        self.db.execute(
            "INSERT INTO alert_job_statuses (account, msgid, status, received_at) "
            "VALUES (:a, :m, :s, :at) ON CONFLICT (account, msgid) DO NOTHING",
            {"a": account, "m": msgid, "s": status, "at": at},
        )

    def take_job_status(self, account: str, msgid: str) -> str | None:
        """The job result kept for the msgid, removed; None when there is none."""
        row = self.db.one(
            "DELETE FROM alert_job_statuses WHERE account = :a AND msgid = :m RETURNING status",
            {"a": account, "m": msgid},
        )
        return None if row is None else str(row["status"])

    def forget_job_statuses_before(self, at: str) -> None:
        """Job results no unit claimed (another source's messages, or lost units)."""
        self.db.execute("DELETE FROM alert_job_statuses WHERE received_at < :at", {"at": at})

    # --- rejections and duplicates --------------------------------------------------------

    def note(
        self, source: str, account: str, event_id: str | None, status: str, reason: str | None,
        at: str, type_: str | None = None,
    ) -> None:  # fmt: skip
        """A rejected or duplicate event, for the counts (no data); ``type_``: the event's
        type when it gave one (a duplicate: the stored event's when not given)."""
        if type_ is None and event_id is not None and status == DUPLICATE:
            found = self.db.scalar(
                "SELECT type FROM alert_events WHERE source = :s AND event_id = :e",
                {"s": source, "e": event_id},
            )
            type_ = None if found is None else str(found)
        self.db.execute(
            "INSERT INTO alert_rejections (source, account, event_id, status, reason, "
            "received_at, type) VALUES (:s, :a, :e, :st, :r, :at, :t)",
            {
                "s": source,
                "a": account,
                "e": event_id,
                "st": status,
                "r": reason,
                "at": at,
                "t": type_,
            },
        )
        self.rollups.noted(account, at, type_, status)

    # --- status ---------------------------------------------------------------------------

    def _window(
        self, since: str | None, until: str | None, accounts: tuple[str, ...] | None, t: str = ""
    ) -> tuple[str, dict[str, Any]]:
        """A WHERE clause over received_at and account (of the table alias t, e.g. "e.")."""
        params: dict[str, Any] = {}
        where = ["1 = 1"]
        if since:
            where.append(f"{t}received_at >= :since")
            params["since"] = since
        if until:
            where.append(f"{t}received_at < :until")
            params["until"] = until
        if accounts is not None:
            where.append(f"{t}account IN {_in('a', accounts, params)}")
        return " AND ".join(where), params

    def counts(
        self, since: str | None, until: str | None, accounts: tuple[str, ...] | None
    ) -> dict[str, int]:
        """Events by state and channel, recipients by state, rejections and duplicates."""
        where, params = self._window(since, until, accounts)
        joined, _ = self._window(since, until, accounts, "e.")
        events = f"SELECT state, channel FROM alert_events WHERE {where}"  # noqa: S608
        join = "alert_recipients r JOIN alert_events e ON e.id = r.event"
        recipients = f"SELECT r.state AS state, r.msgid AS msgid FROM {join} WHERE {joined}"  # noqa: S608
        noted = f"SELECT status FROM alert_rejections WHERE {where}"  # noqa: S608
        found: dict[str, int] = {}

        def add(key: str, n: int) -> None:
            found[key] = found.get(key, 0) + n

        for row in self.db.all(
            f"SELECT state, channel, count(*) AS n FROM ({events}) GROUP BY state, channel",  # noqa: S608
            params,
        ):
            add("received", int(row["n"]))
            add(f"event:{row['state']}", int(row["n"]))
            if row["channel"] == "sms":
                add("sms", int(row["n"]))
        for row in self.db.all(
            f"SELECT state, msgid IS NOT NULL AS accepted, count(*) AS n FROM ({recipients}) "  # noqa: S608
            "GROUP BY state, accepted",
            params,
        ):
            add(f"recipient:{row['state']}", int(row["n"]))
            if row["accepted"]:
                add("sent_wechat", int(row["n"]))
        for row in self.db.all(
            f"SELECT status, count(*) AS n FROM ({noted}) GROUP BY status",  # noqa: S608
            params,
        ):
            add(f"noted:{row['status']}", int(row["n"]))
        deferred = f"SELECT count(*) FROM {join} WHERE {joined} AND r.deferred = 1"  # noqa: S608
        found["deferred"] = int(self.db.scalar(deferred, params) or 0)
        return found

    def latencies_ms(
        self, since: str | None, until: str | None, accounts: tuple[str, ...] | None
    ) -> list[float]:
        """Intake commit to WeChat's acceptance, per recipient (deferred ones excluded)."""
        where, params = self._window(since, until, accounts, "e.")
        join = "alert_recipients r JOIN alert_events e ON e.id = r.event"
        ms = "(r.accepted_ts - e.received_ts) * 1000"
        done = "r.accepted_ts IS NOT NULL AND r.deferred = 0"
        sql = f"SELECT {ms} AS ms FROM {join} WHERE {where} AND {done} ORDER BY ms"  # noqa: S608
        return [float(r["ms"]) for r in self.db.all(sql, params)]

    def subscribed(self, account: str, openid: str) -> bool | None:
        """Whether the follower is subscribed, as last known (the engine's state, else the
        synced list); None when not known."""
        row = self.db.one(
            "SELECT (SELECT subscribed FROM follower_state WHERE account = :a AND openid = :o) "
            "AS engine, (SELECT subscribed FROM followers WHERE account = :a AND openid = :o) "
            "AS listed",
            {"a": account, "o": openid},
        )
        if row is None:
            return None
        value = row["engine"] if row["engine"] is not None else row["listed"]
        return None if value is None else bool(value)
