"""The account's follower tags, as WeChat last listed them (``bankwx tag``).

Which follower holds which tag (``follower_tags``) is in followers.py; the tables are created
by migrations.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from bankwx_cli.models.followers import Tag
from bankwx_cli.storage.db import Database
from bankwx_cli.storage.followers import in_list


class Tags:
    """The account's tags as WeChat last listed them (and as our own changes left them)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def all(self, account: str) -> list[Tag]:
        return [
            Tag(**dict(r))
            for r in self.db.all(
                "SELECT tag_id, name, count, synced_at FROM tags WHERE account = :a "
                "ORDER BY tag_id",
                {"a": account},
            )
        ]

    def by_name(self, account: str, name: str) -> Tag | None:
        row = self.db.one(
            "SELECT tag_id, name, count, synced_at FROM tags WHERE account = :a AND name = :n",
            {"a": account, "n": name},
        )
        return None if row is None else Tag(**dict(row))

    def replace(self, account: str, tags: Sequence[Tag]) -> None:
        """The account's tags are exactly these (as WeChat listed them); tags WeChat no longer
        lists are forgotten with their followers' links. Call inside one transaction."""
        ids = [t.tag_id for t in tags]
        if ids:
            holders, params = in_list("t", ids)
            gone = f"account = :a AND tag_id NOT IN ({holders})"
            self.db.execute(f"DELETE FROM tags WHERE {gone}", {"a": account, **params})  # noqa: S608
            self.db.execute(
                f"DELETE FROM follower_tags WHERE {gone}",  # noqa: S608 - placeholders only
                {"a": account, **params},
            )
        else:
            self.db.execute("DELETE FROM tags WHERE account = :a", {"a": account})
            self.db.execute("DELETE FROM follower_tags WHERE account = :a", {"a": account})
        for tag in tags:
            self.upsert(account, tag.tag_id, tag.name, tag.count, tag.synced_at)

    def upsert(self, account: str, tag_id: int, name: str, count: int, at: str) -> None:
        self.db.execute(
            "INSERT INTO tags (account, tag_id, name, count, synced_at) "
            "VALUES (:a, :t, :n, :c, :at) ON CONFLICT (account, tag_id) DO UPDATE SET "
            "name = excluded.name, count = excluded.count, synced_at = excluded.synced_at",
            {"a": account, "t": tag_id, "n": name, "c": count, "at": at},
        )

    def rename(self, account: str, tag_id: int, name: str) -> None:
        self.db.execute(
            "UPDATE tags SET name = :n WHERE account = :a AND tag_id = :t",
            {"a": account, "t": tag_id, "n": name},
        )

    def delete(self, account: str, tag_id: int) -> None:
        params = {"a": account, "t": tag_id}
        self.db.execute("DELETE FROM follower_tags WHERE account = :a AND tag_id = :t", params)
        self.db.execute("DELETE FROM tags WHERE account = :a AND tag_id = :t", params)
