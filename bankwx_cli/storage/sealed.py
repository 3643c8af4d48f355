"""Columns whose values are sealed at rest: what ``bankwx check`` counts and ``--fix`` mends.

A value is sealed with ``keys.Sealer`` for the column's purpose; its shape is the version byte,
then nonce, ciphertext and tag (at least 29 bytes, stored as a BLOB). Any other non-empty value
is in clear: written before the column was sealed, or by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bankwx_cli.keys import Sealer, UnsealError
from bankwx_cli.storage.db import Database

BATCH = 1000


@dataclass(frozen=True)
class Census:
    table: str
    column: str
    clear: int
    unreadable: int


@dataclass(frozen=True)
class SealedColumn:
    """table.column sealed for purpose. ``empty`` is the SQL value of "no value" (NULL, or a
    purged payload's ''); ``droppable`` the SQL condition under which a value that does not
    open may be dropped (set to empty) by ``check --fix``."""

    table: str
    column: str
    purpose: str
    empty: str = "NULL"
    droppable: str = "1"

    @property
    def _present(self) -> str:
        c = self.column
        return f"{c} IS NOT NULL AND NOT (typeof({c}) = 'text' AND {c} = '')"

    @property
    def _sealed(self) -> str:
        c = self.column
        return f"typeof({c}) = 'blob' AND length({c}) >= 29 AND substr({c}, 1, 1) = x'01'"

    def _rows(self, db: Database, where: str, batch: int = BATCH) -> Iterator[tuple[int, Any]]:
        """(id, value) of the rows matching where, in id order, a batch at a time."""
        after = 0
        while True:
            rows = db.all(
                f"SELECT id, {self.column} FROM {self.table} WHERE id > :after AND {where} "  # noqa: S608 - ours
                "ORDER BY id LIMIT :batch",
                {"after": after, "batch": batch},
            )
            if not rows:
                return
            for row in rows:
                yield int(row[0]), row[1]
            after = int(rows[-1][0])

    def _unreadable(self, db: Database, sealer: Sealer) -> Iterator[int]:
        for row_id, value in self._rows(db, self._sealed):
            try:
                sealer.open(bytes(value), self.purpose)
            except UnsealError:
                yield row_id

    def census(self, db: Database, sealer: Sealer) -> Census:
        """How many values are in clear, and how many sealed ones do not open with the key."""
        clear = db.scalar(
            f"SELECT count(*) FROM {self.table} WHERE {self._present} AND NOT ({self._sealed})"  # noqa: S608 - ours
        )
        return Census(
            self.table, self.column, int(clear or 0), sum(1 for _ in self._unreadable(db, sealer))
        )

    def mend(self, db: Database, sealer: Sealer) -> tuple[int, int]:
        """Seal the values in clear; drop those that do not open (where droppable).
        Returns (sealed, dropped)."""
        clear = list(self._rows(db, f"{self._present} AND NOT ({self._sealed})"))
        seal = (
            f"UPDATE {self.table} SET {self.column} = :v "  # noqa: S608 - ours
            f"WHERE id = :id AND {self.column} IS :old"  # unchanged since it was read
        )
        for start in range(0, len(clear), BATCH):
            with db.transaction():
                for row_id, value in clear[start : start + BATCH]:
                    plain = value.encode() if isinstance(value, str) else bytes(value)
                    db.execute(
                        seal, {"v": sealer.seal(plain, self.purpose), "id": row_id, "old": value}
                    )
        unreadable = list(self._unreadable(db, sealer))
        drop = (
            f"UPDATE {self.table} SET {self.column} = {self.empty} "  # noqa: S608 - ours
            f"WHERE id = :id AND {self.droppable}"
        )
        dropped = 0
        for start in range(0, len(unreadable), BATCH):
            with db.transaction():
                for row_id in unreadable[start : start + BATCH]:
                    dropped += db.execute(drop, {"id": row_id}).rowcount
        return len(clear), dropped
