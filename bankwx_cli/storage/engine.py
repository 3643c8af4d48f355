"""The conversation log (which is also the de-duplication record) and keyword rules.

An inbound row is claimed by the first delivery of a message (``INSERT ... ON CONFLICT DO
NOTHING`` on ``(account, dedup_key)``, a unique index of the rows that have a key), so the
store decides which process handles it, across workers and processes. Retries increment
``deliveries`` and read the stored reply. After 48 hours the reply and the key are cleared; the
(masked) log entry stays for its retention period.

A stored reply is sealed with the master key (``keys.Sealer``, purpose ``REPLY_PURPOSE``), in
the writer's thread, inside the unit that stores it; a reply that does not open (a damaged row,
another key) is read as absent, so that a retry gets what any message without a stored reply
gets, and ``bankwx check`` reports it. A reply stored in clear before replies were sealed is
still answered (``bankwx check`` reports it and ``check --fix`` seals it).

A message's passive reply is logged in the message's own row (``out_type``, ``out_content``:
what the log shows of it, masked), not in a row of its own: on the receiver's busiest path a
second row cost as much again as the first's columns. The log lists it as an entry of its own
all the same (direction ``out``, ``in_reply_to`` the message's id) whose id is the message's
id plus one: every row takes the id after the largest one's next (``max(id) + 2``), so that
id is never a row's. Messages an agent sends have rows of their own, as do the replies of a
store written before (their ids are whatever they were).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from operator import add, itemgetter
from typing import Any

from bankwx_cli.keys import Sealer, UnsealError
from bankwx_cli.models.messages import EngineState, InboundRow, LogEntry, OutboundRow
from bankwx_cli.models.replies import (
    Article,
    ImageReply,
    NewsReply,
    Reply,
    TextReply,
    reply_to_dict,
)
from bankwx_cli.models.rules import Rule
from bankwx_cli.storage.db import Database, Writer
from bankwx_cli.storage.sealed import SealedColumn

log = logging.getLogger(__name__)

REPLY_PURPOSE = "messages.reply"
REPLIES = SealedColumn("messages", "reply", REPLY_PURPOSE)


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming an inbound message."""

    first: bool
    id: int
    state: str
    reply: bytes | None
    deliveries: int
    claimed_at: float | None


class Messages:
    def __init__(self, db: Database, sealer: Sealer | None = None) -> None:
        self.db = db
        self.sealer = sealer or Sealer()

    def _seal(self, reply: bytes | None) -> bytes | None:
        return None if reply is None else self.sealer.seal(reply, REPLY_PURPOSE)

    def _open(self, message_id: int, stored: bytes | None) -> bytes | None:
        """The stored reply; None when there is none or it does not open."""
        if stored is None:
            return None
        stored = bytes(stored)
        if stored.startswith(b"<"):
            return stored  # stored in clear before replies were sealed
        try:
            return self.sealer.open(stored, REPLY_PURPOSE)
        except UnsealError:
            pass  # damaged, or sealed under another key
        log.warning(
            "the stored reply of message %s does not open with the master key; "
            "answered as absent (see bankwx check)",
            message_id,
        )
        return None

    @property
    def writer(self) -> Writer:
        """Group commit for the receiver: its claims and outcomes, many to a transaction."""
        return self.db.writer

    def claim(self, row: InboundRow, stale_before: float) -> Claim:
        """Insert the inbound row unless its dedup key exists; count a retry otherwise.

        A claim whose handler has been 'processing' since before stale_before (its process
        died) is taken over by this delivery.
        """
        with self.db.transaction():
            cursor = self.db.execute_positional(_CLAIM_SQL, row)
            if cursor.rowcount == 1:
                return Claim(True, int(cursor.lastrowid or 0), "processing", None, 1,
                             row.claimed_at)  # fmt: skip
            return self.claim_again(row, stale_before)

    def insert_answered_many(
        self, rows: list[AnsweredRow], replies: list[bytes | None]
    ) -> list[int | None]:
        """Insert first deliveries' rows already done: their answers (route, outcome,
        handling_ms, the reply's log entry; ``replies``, each row's reply in plaintext, sealed
        here) were decided before claiming. A few statements for them all (one multi-row
        INSERT per ``ROWS_PER_INSERT`` chunk). Returns the id of each row, in order, or None
        where its dedup key existed, in the store or earlier in ``rows``: then nothing is
        written for it, and ``claim_again`` says what the store holds. Joins the caller's
        transaction, which must hold the write lock (the ids are counted from the largest one).
        A row's values are joined to its id and sealed reply in C (``map``, ``operator.add``):
        the receiver's group write calls this for every group."""
        count = len(rows)
        keys = list(map(_ROW_KEY, rows))  # (account, dedup key)
        # each key's first row: the last one dict() keeps, counting down
        first = dict(zip(reversed(keys), range(count - 1, -1, -1), strict=True))
        kept, plains = rows, replies
        if len(first) < count:  # a key twice in the group: its first row only
            chosen = [index for index, key in enumerate(keys) if first[key] == index]
            kept, plains = [rows[i] for i in chosen], [replies[i] for i in chosen]
        sealed = self.sealer.seal_many(plains, REPLY_PURPOSE)
        start = int(self.db.scalar(_LAST_ID_SQL)) + 2
        new_ids = range(start, start + 2 * len(kept), 2)  # every other id (see above)
        values = list(map(add, kept, zip(new_ids, sealed, strict=True)))  # id, reply last
        whole = len(kept) == count  # every row kept, and (so far) every one added
        execute = self.db.execute_positional
        for chunk in _chunks(values):
            if execute(_insert_answered_sql(len(chunk)), _flat(chunk)).rowcount != len(chunk):
                whole = False  # some keys held
        if whole:
            return list(new_ids)
        ids: list[int | None] = [None] * count
        # which rows were added: the group's ids are its own (the write lock is held)
        for message_id, account, key in execute(
            _INSERTED_SQL, (new_ids[0], new_ids[-1])
        ).fetchall():
            ids[first[(account, key)]] = message_id
        return ids

    def log_reply(self, message_id: int, msg_type: str, content: str) -> None:
        """The log entry of a message's passive reply (masked already), in the message's row.
        Joins the caller's transaction."""
        self.db.execute_positional(
            "UPDATE messages SET out_type = ?, out_content = ? WHERE id = ?",
            (msg_type, content, message_id),
        )

    def claim_again(self, row: InboundRow, stale_before: float) -> Claim:
        """Another delivery of a message the store holds: count it; take over a claim that has
        been 'processing' since before stale_before (its process died: the claim comes back
        ``first``). Joins the caller's transaction."""
        key = {"account": row.account, "dedup_key": row.dedup_key}
        self.db.execute(
            "UPDATE messages SET deliveries = deliveries + 1 "
            "WHERE account = :account AND dedup_key = :dedup_key",
            key,
        )
        found = self.db.one(
            "SELECT id, state, reply, deliveries, claimed_at FROM messages "
            "WHERE account = :account AND dedup_key = :dedup_key",
            key,
        )
        assert found is not None  # noqa: S101 - the conflict says it exists
        if found["state"] == "processing" and (found["claimed_at"] or 0) < stale_before:
            self.db.execute(
                "UPDATE messages SET claimed_at = :now WHERE id = :id",
                {"now": row.claimed_at, "id": found["id"]},
            )
            return Claim(True, found["id"], "processing", None, found["deliveries"],
                         row.claimed_at)  # fmt: skip
        return self._claim(found, first=False)

    def take_over(self, message_id: int, claimed_at: float | None, now: float) -> bool:
        """Take a stale claim (as ``claim_again`` does for a new delivery): True when this
        caller now holds it, False when another did first or it is done. Joins the caller's
        transaction."""
        cursor = self.db.execute(
            "UPDATE messages SET claimed_at = :now WHERE id = :id AND state = 'processing' "
            "AND claimed_at IS :seen",
            {"now": now, "id": message_id, "seen": claimed_at},
        )
        return cursor.rowcount == 1

    def state_of(self, message_id: int) -> Claim:
        found = self.db.one(
            "SELECT id, state, reply, deliveries, claimed_at FROM messages WHERE id = :id",
            {"id": message_id},
        )
        assert found is not None  # noqa: S101
        return self._claim(found, first=False)

    def _claim(self, row: sqlite3.Row, first: bool) -> Claim:
        return Claim(
            first,
            row["id"],
            row["state"],
            self._open(row["id"], row["reply"]),
            row["deliveries"],
            row["claimed_at"],
        )

    def finish(
        self,
        message_id: int,
        reply: bytes | None,
        route: str,
        outcome: str,
        handling_ms: float,
        logged: tuple[str, str] | None,
    ) -> None:
        """Record the handler's result, and the reply's log entry (type, masked content; None:
        no reply) in the same statement."""
        out_type, out_content = logged or (None, None)
        self.db.execute(
            "UPDATE messages SET state = 'done', reply = :reply, route = :route, "
            "outcome = :outcome, handling_ms = :ms, out_type = :out_type, "
            "out_content = :out_content WHERE id = :id",
            {"reply": self._seal(reply), "route": route, "outcome": outcome, "ms": handling_ms,
             "out_type": out_type, "out_content": out_content, "id": message_id},
        )  # fmt: skip

    def insert_out(self, row: OutboundRow) -> None:
        """A message sent on its own (an agent's), as a row of its own."""
        self.db.execute_positional(_INSERT_OUT_SQL, row)

    def set_outcome(self, message_id: int, outcome: str) -> None:
        self.db.execute(
            "UPDATE messages SET outcome = :outcome WHERE id = :id",
            {"outcome": outcome, "id": message_id},
        )

    def all(
        self,
        *,
        account: str | None = None,
        openid: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int | None = None,
    ) -> list[LogEntry]:
        """Log entries newest first: of an account, a follower, from ``since``, before
        ``until`` (ISO times; None: any), at most ``limit`` (None: all)."""
        params: dict[str, Any] = {
            "account": account, "openid": openid, "since": since, "until": until
        }  # fmt: skip
        where = [
            clause
            for key, clause in (
                ("account", "account = :account"),
                ("openid", "openid = :openid"),
                ("since", "at >= :since"),
                ("until", "at < :until"),
            )
            if params[key]
        ]
        # the newest rows first, then their entries: a row's reply sorts just before it (the
        # same time, the id after its own), so the newest entries are the newest rows'
        rows = "FROM messages" + (" WHERE " + " AND ".join(where) if where else "")
        if limit:  # found in the index (``messages_at`` holds what the conditions name)
            newest = f"SELECT id {rows} ORDER BY at DESC, id DESC LIMIT :limit"
            if not account:
                newest = self._newest_of_each(where, params) or newest
            rows = f"FROM messages WHERE id IN ({newest})"
            params["limit"] = limit
        sql = _ENTRIES_SQL.format(rows=f"{_ROWS_SQL} {rows}") + (" LIMIT :limit" if limit else "")
        return [LogEntry(**dict(r)) for r in self.db.all(sql, params)]

    def _newest_of_each(self, where: list[str], params: dict[str, Any]) -> str | None:
        """The ids of the newest ``:limit`` rows over every account, as a query: each
        account's newest from the index (``messages_at`` begins with the account; there is no
        index by time alone, and sorting the whole log for a page of it is slow on a large
        store), merged. None (sort the log): it is empty, or holds more accounts than one
        query merges."""
        names = [r[0] for r in self.db.all(_ACCOUNTS_SQL)]
        if not names or len(names) > _MERGED_ACCOUNTS:
            return None
        parts = []
        for i, name in enumerate(names):
            params[f"account{i}"] = name
            conditions = " AND ".join([f"account = :account{i}", *where])
            parts.append(
                f"SELECT * FROM (SELECT id, at FROM messages WHERE {conditions} "  # noqa: S608
                "ORDER BY at DESC, id DESC LIMIT :limit)"
            )
        merged = " UNION ALL ".join(parts)
        return f"SELECT id FROM ({merged} ORDER BY at DESC, id DESC LIMIT :limit)"  # noqa: S608

    def count_before(self, account: str, before: str) -> int:
        """The entries ``purge_before`` would delete: the account's rows older than before
        and the replies logged in them (counted in the index's range, nothing loaded)."""
        return int(
            self.db.scalar(
                "SELECT count(*) + count(out_type) FROM messages "
                "WHERE account = :account AND at < :before",
                {"account": account, "before": before},
            )
        )

    def purge_before(self, account: str, before: str, batch: int = 1000) -> int:
        """Delete one batch of entries older than before; returns how many (0 when done): a
        reply logged in its message's row is an entry too."""
        with self.db.transaction():
            deleted = self.db.execute(
                "DELETE FROM messages WHERE id IN (SELECT id FROM messages "
                "WHERE account = :account AND at < :before LIMIT :batch) "
                "RETURNING out_type IS NOT NULL",
                {"account": account, "before": before, "batch": batch},
            ).fetchall()
            return len(deleted) + sum(int(replied) for (replied,) in deleted)

    def forget_keys_before(self, before: str, batch: int = 1000) -> int:
        """Clear dedup keys and stored replies older than before (one short batch)."""
        with self.db.transaction():
            cursor = self.db.execute(
                "UPDATE messages SET dedup_key = NULL, reply = NULL WHERE id IN (SELECT id "
                "FROM messages WHERE dedup_key IS NOT NULL AND at < :before LIMIT :batch)",
                {"before": before, "batch": batch},
            )
            return int(cursor.rowcount)


#: A first delivery answered at once, for ``insert_answered_many``: account, openid,
#: msg_type, event, content, msg_id, dedup_key, route, outcome, handling_ms, at, claimed_at,
#: and the reply's log entry: out_type, out_content (None, None: none). Its reply goes beside.
AnsweredRow = tuple[
    str, str, str, str, str, str, str, str, str, float, str, float, str | None, str | None
]
_ROW_KEY = itemgetter(0, 6)  # an AnsweredRow's (account, dedup key)

#: The id a new row takes: see the module's docstring.
_NEXT_ID = "(SELECT coalesce(max(id), 0) + 2 FROM messages)"
_LAST_ID_SQL = "SELECT coalesce(max(id), 0) FROM messages"
_CLAIM_SQL = (
    "INSERT INTO messages (id, account, openid, direction, msg_type, event, content, msg_id, "  # noqa: S608
    f"dedup_key, state, at, claimed_at) VALUES ({_NEXT_ID}, ?, ?, 'in', ?, ?, ?, ?, ?, "
    "'processing', ?, ?) ON CONFLICT (account, dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING"
)
_INSERT_OUT_SQL = (
    "INSERT INTO messages (id, account, openid, direction, msg_type, content, route, outcome, "  # noqa: S608
    f"in_reply_to, at) VALUES ({_NEXT_ID}, ?, ?, 'out', ?, ?, ?, ?, ?, ?)"
)

#: The accounts the log holds, each found by one step in ``messages_at`` (not a scan of it).
_ACCOUNTS_SQL = (
    "WITH RECURSIVE a(name) AS (SELECT (SELECT min(account) FROM messages) UNION ALL "
    "SELECT (SELECT min(account) FROM messages WHERE account > a.name) FROM a "
    "WHERE a.name IS NOT NULL) SELECT name FROM a WHERE name IS NOT NULL"
)
_MERGED_ACCOUNTS = 200  # accounts merged in one query (SQLite allows 500 parts)

#: The log's entries: each row of ``{rows}`` (``_ROWS_SQL`` and its FROM), and the reply logged in
#: a message's row as an entry of its own (``side.n`` 1), newest first.
_ROWS_SQL = (
    "SELECT id, at, account, openid, direction, msg_type, event, content, msg_id, route, "
    "outcome, handling_ms, deliveries, in_reply_to, out_type, out_content"
)
_ENTRIES_SQL = (
    "SELECT m.id + side.n AS id, at, account, openid, "
    "CASE side.n WHEN 0 THEN direction ELSE 'out' END AS direction, "
    "CASE side.n WHEN 0 THEN msg_type ELSE out_type END AS msg_type, "
    "CASE side.n WHEN 0 THEN event ELSE '' END AS event, "
    "CASE side.n WHEN 0 THEN content ELSE out_content END AS content, "
    "CASE side.n WHEN 0 THEN msg_id ELSE '' END AS msg_id, route, outcome, "
    "CASE side.n WHEN 0 THEN handling_ms END AS handling_ms, "
    "CASE side.n WHEN 0 THEN deliveries ELSE 1 END AS deliveries, "
    "CASE side.n WHEN 0 THEN in_reply_to ELSE m.id END AS in_reply_to "
    "FROM ({rows}) AS m CROSS JOIN (SELECT 0 AS n UNION ALL SELECT 1) AS side "
    "ON side.n = 0 OR out_type IS NOT NULL ORDER BY at DESC, id DESC"
)

# Chunk sizes, powers of two: a group of n rows takes as many statements as n has one bits
# (27: 16 + 8 + 2 + 1), eight shapes of statement a table for SQLite to keep prepared.
ROWS_PER_INSERT = (128, 64, 32, 16, 8, 4, 2, 1)


def _chunks(rows: list[Any]) -> list[list[Any]]:
    """rows in chunks of the sizes of ROWS_PER_INSERT, the largest that fit first."""
    chunks, at = [], 0
    for size in ROWS_PER_INSERT:
        while len(rows) - at >= size:
            chunks.append(rows[at : at + size])
            at += size
    return chunks


def _flat(chunk: list[tuple[Any, ...]]) -> list[Any]:
    """The rows' values in one list, for a multi-row statement's parameters."""
    return list(chain.from_iterable(chunk))


@lru_cache(maxsize=len(ROWS_PER_INSERT))
def _insert_answered_sql(count: int) -> str:
    """An AnsweredRow's values then its id and sealed reply, for count rows."""
    row = "(?, ?, 'in', ?, ?, ?, ?, ?, 'done', ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    return (
        "INSERT INTO messages (account, openid, direction, msg_type, event, content, msg_id, "  # noqa: S608
        "dedup_key, state, route, outcome, handling_ms, at, claimed_at, out_type, out_content, "
        "id, reply) VALUES "
        + ", ".join([row] * count)
        + " ON CONFLICT (account, dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING"
    )


# The rows a group's INSERTs of ``_insert_answered_sql`` added, when a conflict skipped some of
# their VALUES (their ids are known, not which were skipped). A RETURNING clause would say it
# for every row, at 15k instructions a row (sqlite3 buffers its rows, and Python makes a tuple
# of each).
_INSERTED_SQL = "SELECT id, account, dedup_key FROM messages WHERE id BETWEEN ? AND ?"


@lru_cache(maxsize=len(ROWS_PER_INSERT))
def _followed_sql(count: int) -> str:
    """``FollowerState.followed`` for count follows, applied in the order given."""
    return (
        "INSERT INTO follower_state (account, openid, subscribed, subscribe_at, scene) VALUES "  # noqa: S608
        + ", ".join(["(?, ?, 1, ?, ?)"] * count)
        + " ON CONFLICT (account, openid) DO UPDATE SET subscribed = excluded.subscribed, "
        "subscribe_at = excluded.subscribe_at, scene = excluded.scene"
    )


def _reply(kind: str | None, raw: str | None) -> Reply | None:
    """A rule's reply from its stored kind and JSON (its reply_to_dict() without the kind)."""
    if not kind or raw is None:
        return None
    data = json.loads(raw)
    if kind == "text":
        return TextReply(data["content"])
    if kind == "image":
        return ImageReply(data["media_id"])
    if kind == "news":
        return NewsReply(
            Article(data["title"], data.get("description", ""), data.get("url", ""),
                    data.get("picurl", ""))
        )  # fmt: skip
    return None


def _rule(row: Any) -> Rule:
    return Rule(
        id=row["id"],
        account=row["account"],
        pattern=row["pattern"],
        match=row["match"],
        priority=row["priority"],
        reply=_reply(row["reply_kind"], row["reply"]),
        action=row["action"],
        arg=row["arg"],
    )


class KeywordRules:
    """Keyword rules, given as Rule models without their compiled regex."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, rule: Rule, created_by: str, created_at: str) -> int:
        reply = None
        if rule.reply is not None:
            data = reply_to_dict(rule.reply)
            reply = json.dumps({k: v for k, v in data.items() if k != "kind"}, ensure_ascii=False)
        cursor = self.db.execute(
            "INSERT INTO keyword_rules (account, pattern, match, priority, reply_kind, reply, "
            "action, arg, created_by, created_at) VALUES (:account, :pattern, :match, "
            ":priority, :reply_kind, :reply, :action, :arg, :created_by, :created_at)",
            {
                "account": rule.account,
                "pattern": rule.pattern,
                "match": rule.match,
                "priority": rule.priority,
                "reply_kind": rule.reply.kind if rule.reply else None,
                "reply": reply,
                "action": rule.action,
                "arg": rule.arg,
                "created_by": created_by,
                "created_at": created_at,
            },
        )
        return int(cursor.lastrowid or 0)

    def for_account(self, account: str) -> list[Rule]:
        """The account's rules in the order they are tried: priority first, then the oldest."""
        return [
            _rule(r)
            for r in self.db.all(
                "SELECT * FROM keyword_rules WHERE account = :a ORDER BY priority DESC, id",
                {"a": account},
            )
        ]

    def get(self, rule_id: int) -> Rule | None:
        row = self.db.one("SELECT * FROM keyword_rules WHERE id = :id", {"id": rule_id})
        return None if row is None else _rule(row)

    def stored(self, rule_id: int) -> dict[str, Any]:
        """The rule's columns as stored, for the audit log."""
        row = self.db.one("SELECT * FROM keyword_rules WHERE id = :id", {"id": rule_id})
        if row is None:
            return {}
        data = dict(row)
        return {**{k: v for k, v in data.items() if k != "id"}, "id": data["id"]}

    def delete(self, rule_id: int) -> None:
        self.db.execute("DELETE FROM keyword_rules WHERE id = :id", {"id": rule_id})

    def version(self) -> str:
        row = self.db.one("SELECT count(*) AS n, max(id) AS m FROM keyword_rules")
        return f"{row['n']}:{row['m']}" if row else ""


class FollowerState:
    """What the engine learns about followers between syncs: subscriptions, location."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._upserts: dict[tuple[str, ...], str] = {}  # the statement per set of columns

    def followed(self, account: str, openid: str, at: str, scene: str | None) -> None:
        """A subscribe event: subscribed since ``at``, by ``scene`` (a QR follow's, else None)."""
        self._upsert(account, openid, subscribed=1, subscribe_at=at, scene=scene)

    def followed_many(self, follows: list[tuple[str, str, str, str | None]]) -> None:
        """``followed`` for many subscribe events, in order, each (account, openid, at, scene):
        a few statements for them all (the receiver's group write). Joins the caller's
        transaction."""
        for chunk in _chunks(follows):
            self.db.execute_positional(_followed_sql(len(chunk)), _flat(chunk))

    def unfollowed(self, account: str, openid: str, at: str) -> None:
        """An unsubscribe event."""
        self._upsert(account, openid, subscribed=0, unsubscribe_at=at)

    def located(
        self, account: str, openid: str, latitude: float | None, longitude: float | None, at: str
    ) -> None:
        """A location event (the follower's last reported position)."""
        self._upsert(account, openid, latitude=latitude, longitude=longitude, location_at=at)

    def set_scene(self, account: str, openid: str, scene: str | None) -> None:
        """The scene a hook records for the follower (``EngineState.scene``)."""
        self._upsert(account, openid, scene=scene)

    def _upsert(self, account: str, openid: str, **values: str | float | None) -> None:
        columns = tuple(values)
        sql = self._upserts.get(columns)
        if sql is None:
            cols = ", ".join(columns)
            params = ", ".join(f":{k}" for k in columns)
            sets = ", ".join(f"{k} = excluded.{k}" for k in columns)
            sql = self._upserts[columns] = (
                f"INSERT INTO follower_state (account, openid, {cols}) "  # noqa: S608 - ours
                f"VALUES (:account, :openid, {params}) "
                f"ON CONFLICT (account, openid) DO UPDATE SET {sets}"
            )
        self.db.execute(sql, {"account": account, "openid": openid, **values})

    def get(self, account: str, openid: str) -> EngineState | None:
        row = self.db.one(
            "SELECT subscribed, subscribe_at, unsubscribe_at, scene, latitude, longitude, "
            "location_at FROM follower_state WHERE account = :a AND openid = :o",
            {"a": account, "o": openid},
        )
        if row is None:
            return None
        subscribed = row["subscribed"]
        return EngineState(
            account=account,
            openid=openid,
            subscribed=None if subscribed is None else bool(subscribed),
            subscribe_at=row["subscribe_at"],
            unsubscribe_at=row["unsubscribe_at"],
            scene=row["scene"],
            latitude=row["latitude"],
            longitude=row["longitude"],
            location_at=row["location_at"],
        )

    def scene(self, account: str, openid: str) -> str | None:
        """The follower's recorded scene (a point read by primary key), or None."""
        row = self.db.one(
            "SELECT scene FROM follower_state WHERE account = :a AND openid = :o",
            {"a": account, "o": openid},
        )
        return None if row is None else row[0]

    def in_scenes(self, account: str, openids: list[str], scenes: tuple[str, ...]) -> set[str]:
        """Which of these followers have one of these scenes recorded (one query)."""
        named = {f"s{i}": scene for i, scene in enumerate(scenes)}
        rows = self.db.all(
            "SELECT openid FROM follower_state WHERE account = :account "  # noqa: S608 - names
            f"AND scene IN ({', '.join(':' + k for k in named)}) "
            "AND openid IN (SELECT value FROM json_each(:openids))",
            {"account": account, "openids": json.dumps(openids), **named},
        )
        return {row[0] for row in rows}
