"""Which operating-system users act as which operator (``operator ... --os-user``)."""

from __future__ import annotations

from bankwx_cli.storage.db import Database


class OsUsers:
    """The ``operator_os_users`` table: one row per login user, naming its operator."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def operator_of(self, os_user: str) -> str | None:
        """The operator this login user acts as, or None."""
        value = self.db.scalar(
            "SELECT operator FROM operator_os_users WHERE os_user = :u", {"u": os_user}
        )
        return None if value is None else str(value)

    def of(self, operator: str) -> tuple[str, ...]:
        rows = self.db.all(
            "SELECT os_user FROM operator_os_users WHERE operator = :op ORDER BY os_user",
            {"op": operator},
        )
        return tuple(str(r[0]) for r in rows)

    def by_operator(self) -> dict[str, tuple[str, ...]]:
        found: dict[str, list[str]] = {}
        for row in self.db.all(
            "SELECT operator, os_user FROM operator_os_users ORDER BY operator, os_user"
        ):
            found.setdefault(str(row[0]), []).append(str(row[1]))
        return {name: tuple(users) for name, users in found.items()}

    def replace(self, operator: str, os_users: list[str], at: str) -> None:
        """Make os_users the operator's login users. Call inside a transaction."""
        self.db.execute("DELETE FROM operator_os_users WHERE operator = :op", {"op": operator})
        for user in os_users:
            self.db.execute(
                "INSERT INTO operator_os_users (os_user, operator, created_at) "
                "VALUES (:u, :op, :at)",
                {"u": user, "op": operator, "at": at},
            )
