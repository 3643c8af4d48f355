"""Agents (``bankwx agent``): groups, agents and their groups, sessions. Tables by
migrations.py (m0011)."""

from __future__ import annotations

from typing import Any

from bankwx_cli.models.agents import Agent, AgentGroup
from bankwx_cli.storage.db import Database

_GROUP = (
    "SELECT g.id, g.account, g.name, g.policy, g.queue_timeout, g.sla, g.away_text, "
    "g.timeout_text, "
    "(SELECT group_concat(a.name, char(31)) FROM (SELECT a.name FROM agent_members m "
    " JOIN agents a ON a.id = m.agent_id WHERE m.group_id = g.id ORDER BY a.name) a) AS agents, "
    "(SELECT count(*) FROM agent_sessions s WHERE s.group_id = g.id AND s.state = 'waiting') "
    " AS waiting "
    "FROM agent_groups g "
)
_AGENT = (
    "SELECT a.id, a.account, a.name, a.max_sessions, a.kf_account, a.nickname, a.status, "
    "a.status_at, "
    "(SELECT group_concat(g.name, char(31)) FROM (SELECT g.name FROM agent_members m "
    " JOIN agent_groups g ON g.id = m.group_id WHERE m.agent_id = a.id ORDER BY g.name) g) "
    " AS groups, "
    "(SELECT count(*) FROM agent_sessions s WHERE s.agent_id = a.id AND s.state = 'open') "
    " AS sessions "
    "FROM agents a "
)


def _names(joined: str | None) -> tuple[str, ...]:
    return tuple(joined.split("\x1f")) if joined else ()


def _group(row: Any) -> AgentGroup:
    values = dict(row)
    values["agents"] = _names(values["agents"])
    return AgentGroup(**values)


def _agent(row: Any) -> Agent:
    values = dict(row)
    values["groups"] = _names(values["groups"])
    return Agent(**values)


class Agents:
    """Agent groups and agents of each account."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- groups ------------------------------------------------------------------------------

    def groups(self, account: str) -> list[AgentGroup]:
        rows = self.db.all(
            _GROUP + "WHERE g.account = :a AND g.removed_at IS NULL ORDER BY g.name", {"a": account}
        )
        return [_group(r) for r in rows]

    def group(self, account: str, name: str) -> AgentGroup | None:
        row = self.db.one(
            _GROUP + "WHERE g.account = :a AND g.name = :n AND g.removed_at IS NULL",
            {"a": account, "n": name},
        )
        return None if row is None else _group(row)

    def add_group(self, values: dict[str, Any]) -> int:
        cursor = self.db.execute(
            "INSERT INTO agent_groups (account, name, policy, queue_timeout, sla, away_text, "
            "timeout_text, created_by, created_at, updated_at) VALUES (:account, :name, "
            ":policy, :queue_timeout, :sla, :away_text, :timeout_text, :created_by, :at, :at)",
            values,
        )
        return int(cursor.lastrowid or 0)

    def update_group(self, group_id: int, changes: dict[str, Any], at: str) -> None:
        sets = ", ".join(f"{column} = :{column}" for column in changes)
        self.db.execute(
            f"UPDATE agent_groups SET {sets}, updated_at = :at WHERE id = :id",  # noqa: S608
            {**changes, "at": at, "id": group_id},
        )

    def remove_group(self, group_id: int, at: str) -> None:
        """The group goes (its members leave it); kept for the sessions that name it."""
        self.db.execute("DELETE FROM agent_members WHERE group_id = :g", {"g": group_id})
        self.db.execute(
            "UPDATE agent_groups SET removed_at = :at WHERE id = :g", {"g": group_id, "at": at}
        )

    # --- agents ------------------------------------------------------------------------------

    def all(self, account: str) -> list[Agent]:
        rows = self.db.all(
            _AGENT + "WHERE a.account = :a AND a.removed_at IS NULL ORDER BY a.name", {"a": account}
        )
        return [_agent(r) for r in rows]

    def get(self, account: str, name: str) -> Agent | None:
        row = self.db.one(
            _AGENT + "WHERE a.account = :a AND a.name = :n AND a.removed_at IS NULL",
            {"a": account, "n": name},
        )
        return None if row is None else _agent(row)

    def by_kf_account(self, account: str, kf_account: str) -> Agent | None:
        row = self.db.one(
            _AGENT + "WHERE a.account = :a AND a.kf_account = :k AND a.removed_at IS NULL",
            {"a": account, "k": kf_account},
        )
        return None if row is None else _agent(row)

    def add(self, values: dict[str, Any]) -> int:
        cursor = self.db.execute(
            "INSERT INTO agents (account, name, max_sessions, kf_account, nickname, status, "
            "status_at, created_by, created_at, updated_at) VALUES (:account, :name, "
            ":max_sessions, :kf_account, :nickname, 'offline', :at, :created_by, :at, :at)",
            values,
        )
        return int(cursor.lastrowid or 0)

    def update(self, agent_id: int, changes: dict[str, Any], at: str) -> None:
        sets = ", ".join(f"{column} = :{column}" for column in changes)
        self.db.execute(
            f"UPDATE agents SET {sets}, updated_at = :at WHERE id = :id",  # noqa: S608
            {**changes, "at": at, "id": agent_id},
        )

    def set_groups(self, agent_id: int, group_ids: list[int]) -> None:
        self.db.execute("DELETE FROM agent_members WHERE agent_id = :a", {"a": agent_id})
        for group_id in group_ids:
            self.db.execute(
                "INSERT INTO agent_members (agent_id, group_id) VALUES (:a, :g)",
                {"a": agent_id, "g": group_id},
            )

    def remove(self, agent_id: int, at: str) -> None:
        """The agent goes (out of its groups, offline); kept for the sessions it served."""
        self.db.execute("DELETE FROM agent_members WHERE agent_id = :a", {"a": agent_id})
        self.db.execute(
            "UPDATE agents SET removed_at = :at, status = 'offline', status_at = :at WHERE id = :a",
            {"a": agent_id, "at": at},
        )

    def set_status(self, agent_id: int, status: str, at: str) -> None:
        self.db.execute(
            "UPDATE agents SET status = :s, status_at = :at WHERE id = :a",
            {"s": status, "at": at, "a": agent_id},
        )

    def live_sessions(self, agent_id: int) -> int:
        """Open sessions held by the agent."""
        return int(
            self.db.scalar(
                "SELECT count(*) FROM agent_sessions WHERE agent_id = :a AND state = 'open'",
                {"a": agent_id},
            )
            or 0
        )
