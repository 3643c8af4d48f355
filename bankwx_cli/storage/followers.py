"""Followers as the last sync saw them, their tags, the account's tags, and sync progress.

``followers`` holds what WeChat said: the follower list (``listed_at``, ``seen_pass``) and the
profiles (``profile_at``). ``list_seq`` numbers followers in the order the list first named
them (again when they follow anew), which is also the order the rows were written in: the
profile fetch walks that order, so that its updates touch few pages of the table.

What the callback engine learns between syncs stays in its own ``follower_state`` table; reads
here merge the two, and a subscribe or unsubscribe event newer than the row's ``listed_at``
wins. ``follower_sync`` (see follower_sync.py) holds one row per account: the pass under way
(cursor, phase, counts) and the lease of the process running it; the account's tags are in
tags.py.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from bankwx_cli.models.followers import (
    PROFILE_COLUMNS,
    Follower,
    FollowerCounts,
    FollowerRecord,
    Profile,
)
from bankwx_cli.storage.db import Database
from bankwx_cli.storage.reports import Rollups

T = TypeVar("T")
F = TypeVar("F", bound=Follower)


# The engine's latest subscription event for a row: its time, and whether it is newer than
# what the sync saw.
_EVENT_AT = "CASE WHEN s.subscribed = 1 THEN s.subscribe_at ELSE s.unsubscribe_at END"
_ENGINE_NEWER = f"(s.subscribed IS NOT NULL AND {_EVENT_AT} > f.listed_at)"
_ENGINE_SCENE = "CASE WHEN s.scene IS NOT NULL AND s.scene <> '' THEN 'ADD_SCENE_QR_CODE' END"

_MERGED = f"""
WITH merged AS (
    SELECT f.openid AS openid,
        CASE WHEN {_ENGINE_NEWER} THEN s.subscribed ELSE f.subscribed END AS subscribed,
        CASE WHEN {_ENGINE_NEWER} AND s.subscribed = 1 THEN s.subscribe_at
             ELSE f.subscribe_at END AS subscribe_at,
        CASE WHEN {_ENGINE_NEWER} AND s.subscribed = 1 THEN {_ENGINE_SCENE}
             ELSE f.subscribe_scene END AS subscribe_scene,
        CASE WHEN {_ENGINE_NEWER} AND s.subscribed = 1 THEN NULL ELSE f.qr_scene END AS qr_scene,
        CASE WHEN {_ENGINE_NEWER} AND s.subscribed = 1 THEN s.scene
             ELSE f.qr_scene_str END AS qr_scene_str,
        CASE WHEN {_ENGINE_NEWER} AND s.subscribed = 0 THEN s.unsubscribe_at
             WHEN {_ENGINE_NEWER} THEN NULL
             ELSE f.unsubscribe_at END AS unsubscribe_at,
        f.language AS language, f.remark AS remark, f.unionid AS unionid,
        f.blacklisted AS blacklisted, f.profile_at AS profile_at, f.listed_at AS listed_at,
        CASE WHEN {_ENGINE_NEWER} THEN 'engine' ELSE 'sync' END AS source
    FROM followers f
    LEFT JOIN follower_state s ON s.account = f.account AND s.openid = f.openid
    WHERE f.account = :account
    UNION ALL
    SELECT s.openid, s.subscribed,
        CASE WHEN s.subscribed = 1 THEN s.subscribe_at END,
        CASE WHEN s.subscribed = 1 THEN {_ENGINE_SCENE} END,
        NULL, s.scene,
        CASE WHEN s.subscribed = 0 THEN s.unsubscribe_at END,
        NULL, NULL, NULL, 0, NULL, NULL, 'engine'
    FROM follower_state s
    WHERE s.account = :account AND s.subscribed IS NOT NULL
      AND NOT EXISTS (
          SELECT 1 FROM followers f WHERE f.account = s.account AND f.openid = s.openid
      )
)
SELECT * FROM merged"""  # noqa: S608 - the fragments are constants of this module

# A profile's first fields (``Profile``: a user/info answer's, in this order) go to these
# columns: WeChat's "" and 0 mean none, and its Unix seconds become the store's UTC text. The
# conversion is SQL (SQLite's strftime; on PostgreSQL to_char(to_timestamp(...))) so that a
# sync's million of them run outside Python, whose lock the threads fetching from WeChat need.
_INFO_COLUMNS = (
    "openid", "subscribe_at", "subscribe_scene", "qr_scene", "qr_scene_str", "language",
    "remark", "unionid",
)  # fmt: skip
_INFO_VALUES = (
    "?, strftime('%Y-%m-%dT%H:%M:%S.000000Z', NULLIF(?, 0), 'unixepoch'), NULLIF(?, ''), "
    "NULLIF(?, 0), NULLIF(?, ''), NULLIF(?, ''), NULLIF(?, ''), NULLIF(?, '')"
)
_INFO_UPDATES = ", ".join(f"{c} = excluded.{c}" for c in _INFO_COLUMNS[1:])


def _rows_of(n: int, fixed: int) -> str:
    """VALUES rows: ``fixed`` plain parameters, then a user/info answer's."""
    row = "(" + "?, " * fixed + _INFO_VALUES + ")"
    return ", ".join([row] * n)


# Writes of many rows are one statement each (a multi-row VALUES or an IN list) rather than
# executemany: sqlite3 releases and retakes the GIL around every step, and a writer that
# steps once a row waits behind the threads fetching from WeChat for every row it writes.
# Those statements take positional parameters: SQLite finds a named parameter's name by a
# linear search, which makes binding hundreds of them quadratic.
ROWS_PER_STATEMENT = 2000  # x 14 parameters: under SQLite's usual limit of 32,766
# These writes stay statements rather than sqlite-utils' ``upsert_all``: measured with
# ``make bench-followers ARGS="--followers 200000 --threads 4"`` (2 runs each, back to back,
# 2 December 2026), the first load wrote 33,000-38,000 followers/s with these statements and
# 18,000-23,000/s with upsert_all (ratio to the ceiling 0.50-0.62 against 0.35-0.38): it caps
# a statement at 999 parameters (66 rows here, against 2,000), prepares every value in Python
# (and the subscribe time must be converted there: it applies a conversion again to the
# ``excluded`` row on a conflict), and looks up the table on every call.


def in_list(prefix: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """Named placeholders for a short IN (...) list, and their parameters."""
    names = [f"{prefix}{i}" for i in range(len(values))]
    return ", ".join(f":{n}" for n in names), dict(zip(names, values, strict=True))


def _marks(n: int, width: int = 1) -> str:
    """``?, ?, ...`` for an IN list (width 1), or ``(?, ?), (?, ?)`` rows of width."""
    if width == 1:
        return ", ".join(["?"] * n)
    row = "(" + ", ".join(["?"] * width) + ")"
    return ", ".join([row] * n)


def _chunks(items: Sequence[T], size: int = ROWS_PER_STATEMENT) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Followers:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _many(self, sql: str, rows: Iterable[dict[str, Any]]) -> int:
        with self.db._lock:
            cursor = self.db.conn.executemany(sql, rows)
            return int(cursor.rowcount)

    def _run(self, sql: str, params: Sequence[Any]) -> int:
        """One statement with positional parameters (bulk writes); rows changed."""
        with self.db._lock:
            return int(self.db.conn.execute(sql, params).rowcount)

    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self.db._lock:
            return [tuple(r) for r in self.db.conn.execute(sql, params).fetchall()]

    def bulk_mode(self, cache_mb: int = 32, checkpoint_pages: int = 16_384) -> None:
        """Settings of this connection for a sync's many writes: a larger page cache (a page of
        the list writes the follower index at random places) and a checkpoint every 64 MB of
        log rather than every 4 MB."""
        self.db.execute(f"PRAGMA cache_size = -{int(cache_mb) * 1024}")
        self.db.execute(f"PRAGMA wal_autocheckpoint = {int(checkpoint_pages)}")

    # --- the follower list ----------------------------------------------------------------------

    def last_seq(self, account: str) -> int:
        """The highest list_seq of the account's followers (0 without followers)."""
        last = self.db.scalar(
            "SELECT max(list_seq) FROM followers WHERE account = :a", {"a": account}
        )
        return int(last or 0)

    def _next_seq(self, account: str) -> int:
        return self.last_seq(account) + 1

    def upsert_listed(self, account: str, openids: Sequence[str], pass_no: int, at: str) -> int:
        """Record a page of the follower list; returns how many openids were new.

        A follower listed again after being seen unsubscribed followed anew: their profile is
        stale (new follow time and scene), so it is cleared for the next profile fetch, and
        they move to the end of the list order.
        """
        # Written in openid order: the index takes them with fewer page visits, and list_seq
        # (page by page, then by openid) keeps following the rows' order in the table.
        ordered = sorted(openids)
        base = self._next_seq(account)
        seq = {o: base + i for i, o in enumerate(ordered)}
        new = 0
        for some in _chunks(ordered):
            params: list[Any] = []
            for openid in some:
                params += [account, 1, at, pass_no, openid, seq[openid]]
            new += self._run(
                "INSERT INTO followers (account, subscribed, listed_at, seen_pass, openid, "  # noqa: S608
                f"list_seq) VALUES {_marks(len(some), 6)} "
                "ON CONFLICT (account, openid) DO NOTHING",
                params,
            )
        if new == len(openids):
            return new
        for some in _chunks(ordered):
            marks = _marks(len(some))
            back = self._rows(
                "SELECT openid FROM followers WHERE account = ? AND subscribed = 0 "  # noqa: S608
                f"AND openid IN ({marks})",
                [account, *some],
            )
            if back:
                self._many(
                    "UPDATE followers SET profile_at = NULL, list_seq = :seq "
                    "WHERE account = :a AND openid = :o",
                    [{"a": account, "o": r[0], "seq": seq[r[0]]} for r in back],
                )
            self._run(
                "UPDATE followers SET subscribed = 1, unsubscribe_at = NULL, seen_pass = ?, "  # noqa: S608
                f"listed_at = ? WHERE account = ? AND seen_pass <> ? AND openid IN ({marks})",
                [pass_no, at, account, pass_no, *some],
            )
        return new

    def none_known(self, account: str, openids: Sequence[str]) -> bool:
        """Whether the store holds none of these followers (a page a first sync lists)."""
        for some in _chunks(list(openids)):
            found = self._rows(
                "SELECT count(*) FROM followers WHERE account = ? "  # noqa: S608
                f"AND openid IN ({_marks(len(some))})",
                [account, *some],
            )
            if found[0][0]:
                return False
        return True

    def insert_listed(
        self,
        account: str,
        openids: Sequence[str],
        infos: Sequence[Profile],
        pass_no: int,
        at: str,
    ) -> None:
        """Record a page of followers the store did not know, with their profiles (a
        follower without one is stored without, for a later fetch): each row is written
        once, complete."""
        Rollups(self.db).count_sync_follows(account, infos, at, listed=True)  # reports
        ordered = sorted(openids)
        base = self._next_seq(account)
        by_openid = {info.openid: info for info in infos}
        blank = (None,) * (PROFILE_COLUMNS - 1)
        for start in range(0, len(ordered), ROWS_PER_STATEMENT):
            some = ordered[start : start + ROWS_PER_STATEMENT]
            params: list[Any] = []
            for seq, openid in enumerate(some, start=base + start):
                info = by_openid.get(openid)
                if info is None:
                    params += (account, pass_no, seq, at, None, 1, openid, *blank)
                else:
                    params += (account, pass_no, seq, at, at, 1 if info.subscribed else 0)
                    params += info[:PROFILE_COLUMNS]
            self._run(
                "INSERT INTO followers (account, seen_pass, list_seq, listed_at, profile_at, "  # noqa: S608
                f"subscribed, {', '.join(_INFO_COLUMNS)}) VALUES {_rows_of(len(some), 6)} "
                "ON CONFLICT (account, openid) DO UPDATE SET seen_pass = excluded.seen_pass, "
                "list_seq = excluded.list_seq, profile_at = excluded.profile_at, "
                "subscribed = excluded.subscribed, listed_at = excluded.listed_at, "
                f"unsubscribe_at = NULL, {_INFO_UPDATES}",
                params,
            )
        tagged = {str(i.openid): i.tag_ids for i in infos if i.tag_ids}
        if tagged:
            self._replace_tags(account, tagged)

    def ensure(self, account: str, openids: Sequence[str], at: str) -> None:
        """Rows for followers WeChat just accepted in a call but no sync has listed yet."""
        base = self._next_seq(account)
        self._many(
            "INSERT INTO followers (account, openid, subscribed, listed_at, list_seq) "
            "VALUES (:a, :o, 1, :at, :seq) ON CONFLICT (account, openid) DO NOTHING",
            [{"a": account, "o": o, "at": at, "seq": base + i} for i, o in enumerate(openids)],
        )

    def mark_unlisted(self, account: str, pass_no: int, at: str, batch: int) -> int:
        """Mark up to batch subscribed followers the complete pass did not list as
        unsubscribed; returns how many (0 when none is left)."""
        params = {"a": account, "p": pass_no, "at": at, "n": batch}
        found = [str(r[0]) for r in self.db.all(
            "SELECT openid FROM followers WHERE account = :a AND subscribed = 1 "
            "AND seen_pass < :p LIMIT :n", params)]  # fmt: skip
        Rollups(self.db).count_sync_losses(account, found, at)  # reports
        cursor = self.db.execute(
            "UPDATE followers SET subscribed = 0, listed_at = :at WHERE account = :a "
            "AND openid IN (SELECT value FROM json_each(:found))",
            {**params, "found": json.dumps(found)},
        )
        return int(cursor.rowcount)

    # --- profiles -------------------------------------------------------------------------------

    _NEEDS_PROFILE = (
        "account = :a AND subscribed = 1 AND (profile_at IS NULL OR profile_at < :cutoff)"
    )

    def count_needing_profile(self, account: str, cutoff: str) -> int:
        return int(
            self.db.scalar(
                f"SELECT count(*) FROM followers WHERE {self._NEEDS_PROFILE}",  # noqa: S608
                {"a": account, "cutoff": cutoff},
            )
            or 0
        )

    def needing_profile(
        self, account: str, cutoff: str, after: int, limit: int
    ) -> list[tuple[int, str]]:
        """(list_seq, openid) of subscribed followers without a profile or with one older
        than cutoff, in list order after ``after`` (keyset paging)."""
        rows = self.db.all(
            f"SELECT list_seq, openid FROM followers WHERE {self._NEEDS_PROFILE} "  # noqa: S608
            "AND list_seq > :after ORDER BY list_seq LIMIT :n",
            {"a": account, "cutoff": cutoff, "after": after, "n": limit},
        )
        return [(int(r[0]), str(r[1])) for r in rows]

    def has_tags(self, account: str) -> bool:
        """Whether any follower of the account holds a tag in the store."""
        return bool(self._rows("SELECT 1 FROM follower_tags WHERE account = ? LIMIT 1", [account]))

    def save_profiles(
        self,
        account: str,
        infos: Sequence[Profile],
        at: str,
        tags_stored: bool = True,
    ) -> None:
        """Store profiles and their tags. The profile of a follower who left (``subscribed``
        False) marks the follower unsubscribed (and keeps what was known of them).

        ``tags_stored`` False says that no follower of the account holds a tag in the store,
        so that profiles without tags need no comparison.
        """
        current = [info for info in infos if info.subscribed]
        gone = [str(info.openid) for info in infos if not info.subscribed]
        Rollups(self.db).count_sync_follows(account, current, at)  # reports
        Rollups(self.db).count_sync_losses(account, gone, at)
        for some in _chunks(current):
            params: list[Any] = []
            for info in some:
                params += (account, at, at)
                params += info[:PROFILE_COLUMNS]
            self._run(
                "INSERT INTO followers (account, profile_at, listed_at, "  # noqa: S608
                f"{', '.join(_INFO_COLUMNS)}) VALUES {_rows_of(len(some), 3)} "
                "ON CONFLICT (account, openid) DO UPDATE SET subscribed = 1, "
                "unsubscribe_at = NULL, profile_at = excluded.profile_at, "
                f"listed_at = excluded.listed_at, {_INFO_UPDATES}",
                params,
            )
        if current and (tags_stored or any(i.tag_ids for i in current)):
            self._replace_tags(account, {str(i.openid): i.tag_ids for i in current})
        for left in _chunks(gone):
            self._run(
                "UPDATE followers SET subscribed = 0, profile_at = ?, listed_at = ? "  # noqa: S608
                f"WHERE account = ? AND openid IN ({_marks(len(left))})",
                [at, at, account, *left],
            )

    def _replace_tags(self, account: str, wanted: Mapping[str, Sequence[int]]) -> None:
        rows: list[tuple[Any, ...]] = []
        for some in _chunks(list(wanted)):
            rows += self._rows(
                "SELECT openid, tag_id FROM follower_tags "  # noqa: S608
                f"WHERE account = ? AND openid IN ({_marks(len(some))})",
                [account, *some],
            )
        have: dict[str, set[int]] = {}
        for row in rows:
            have.setdefault(row[0], set()).add(row[1])
        add, drop = [], []
        for openid, tag_ids in wanted.items():
            old, new = have.get(openid, set()), set(tag_ids)
            add += [{"a": account, "o": openid, "t": t} for t in new - old]
            drop += [{"a": account, "o": openid, "t": t} for t in old - new]
        if add:
            self._many(
                "INSERT INTO follower_tags (account, tag_id, openid) VALUES (:a, :t, :o) "
                "ON CONFLICT (account, tag_id, openid) DO NOTHING",
                add,
            )
        if drop:
            self._many(
                "DELETE FROM follower_tags WHERE account = :a AND tag_id = :t AND openid = :o",
                drop,
            )

    # --- tags and the blacklist -----------------------------------------------------------------

    def add_tag(self, account: str, tag_id: int, openids: Sequence[str]) -> None:
        self._many(
            "INSERT INTO follower_tags (account, tag_id, openid) VALUES (:a, :t, :o) "
            "ON CONFLICT (account, tag_id, openid) DO NOTHING",
            [{"a": account, "t": tag_id, "o": o} for o in openids],
        )

    def remove_tag(self, account: str, tag_id: int, openids: Sequence[str]) -> None:
        self._many(
            "DELETE FROM follower_tags WHERE account = :a AND tag_id = :t AND openid = :o",
            [{"a": account, "t": tag_id, "o": o} for o in openids],
        )

    def tag_ids(self, account: str, openids: Sequence[str] | None = None) -> dict[str, list[int]]:
        """Tag ids per openid (all followers of the account, or those named)."""
        if openids is None:
            rows = self.db.all(
                "SELECT openid, tag_id FROM follower_tags WHERE account = :account "
                "ORDER BY openid, tag_id",
                {"account": account},
            )
        else:
            holders, params = in_list("o", list(openids))
            rows = self.db.all(
                "SELECT openid, tag_id FROM follower_tags "  # noqa: S608 - placeholders only
                f"WHERE account = :account AND openid IN ({holders}) ORDER BY openid, tag_id",
                {"account": account, **params},
            )
        found: dict[str, list[int]] = {}
        for row in rows:
            found.setdefault(row[0], []).append(row[1])
        return found

    def set_blacklisted(self, account: str, openids: Sequence[str], blocked: bool) -> None:
        self._many(
            "UPDATE followers SET blacklisted = :b WHERE account = :a AND openid = :o",
            [{"a": account, "o": o, "b": 1 if blocked else 0} for o in openids],
        )

    def replace_blacklist(self, account: str, openids: Sequence[str]) -> None:
        """The blacklist is exactly openids (call inside one transaction)."""
        self.db.execute(
            "UPDATE followers SET blacklisted = 0 WHERE account = :a AND blacklisted = 1",
            {"a": account},
        )
        self.set_blacklisted(account, openids, True)

    # --- reads ------------------------------------------------------------------------------------

    def listing(
        self,
        account: str,
        *,
        subscribed: bool | None = None,
        scene: str | None = None,
        since: str | None = None,
        tag_id: int | None = None,
        blacklisted: bool | None = None,
        limit: int | None = None,
    ) -> list[Follower]:
        """Followers merged with the engine's newer events, in follow order (without their
        tags: see tag_ids)."""
        where: list[str] = []
        params: dict[str, Any] = {"account": account}
        if subscribed is not None:
            where.append("subscribed = :subscribed")
            params["subscribed"] = 1 if subscribed else 0
        if scene is not None:
            where.append("subscribe_scene = :scene")
            params["scene"] = scene
        if since is not None:
            where.append("subscribe_at >= :since")
            params["since"] = since
        if blacklisted is not None:
            where.append("blacklisted = :blacklisted")
            params["blacklisted"] = 1 if blacklisted else 0
        if tag_id is not None:
            where.append(
                "EXISTS (SELECT 1 FROM follower_tags t WHERE t.account = :account "
                "AND t.tag_id = :tag_id AND t.openid = merged.openid)"
            )
            params["tag_id"] = tag_id
        sql = _MERGED
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY CASE WHEN subscribe_at IS NULL THEN 1 ELSE 0 END, subscribe_at, openid"
        if limit is not None:
            sql += " LIMIT :limit"
            params["limit"] = limit
        return [_follower(r, Follower) for r in self.db.all(sql, params)]

    def get(self, account: str, openid: str) -> FollowerRecord | None:
        """One follower, as listing() merges it (without tags)."""
        row = self.db.one(_MERGED + " WHERE openid = :o", {"account": account, "o": openid})
        return None if row is None else _follower(row, FollowerRecord)

    def counts(self, account: str) -> FollowerCounts:
        row = self.db.one(
            "SELECT count(*) AS known, "
            "coalesce(sum(CASE WHEN subscribed = 1 THEN 1 ELSE 0 END), 0) AS subscribed, "
            "coalesce(sum(CASE WHEN profile_at IS NULL THEN 1 ELSE 0 END), 0) AS no_profile "
            "FROM followers WHERE account = :a",
            {"a": account},
        )
        if row is None:
            return FollowerCounts()
        return FollowerCounts(row["known"], row["subscribed"], row["no_profile"])


def _follower(row: sqlite3.Row, kind: type[F]) -> F:
    values = dict(row)
    values["subscribed"] = bool(values["subscribed"])
    values["blacklisted"] = bool(values["blacklisted"])
    return kind(**values)
