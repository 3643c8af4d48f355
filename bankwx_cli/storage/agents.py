"""Agents (``bankwx agent``): groups, agents and their groups, sessions. Tables by
migrations.py (m0010)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bankwx_cli.models.agents import (
    Agent,
    AgentGroup,
    AgentGroupUpdate,
    AgentSession,
    AgentUpdate,
    NewAgent,
    NewAgentGroup,
    QueueEntry,
    SessionMessage,
)
from bankwx_cli.models.changes import given
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
    "a.status_at, a.last_assigned_at, "
    "(SELECT group_concat(g.name, char(31)) FROM (SELECT g.name FROM agent_members m "
    " JOIN agent_groups g ON g.id = m.group_id WHERE m.agent_id = a.id ORDER BY g.name) g) "
    " AS groups, "
    "(SELECT count(*) FROM agent_sessions s WHERE s.agent_id = a.id AND s.state = 'open') "
    " AS sessions "
    "FROM agents a "
)


_SESSION = (
    'SELECT s.id, s.account, s.openid, a.name AS agent, g.name AS "group", s.state, '
    "s.entered_at, s.opened_at, s.closed_at, s.close_reason, s.first_response_at, s.rating, "
    "s.notice_at, s.group_id, s.agent_id, s.rating_asked_at "
    "FROM agent_sessions s LEFT JOIN agents a ON a.id = s.agent_id "
    "LEFT JOIN agent_groups g ON g.id = s.group_id "
)
LIVE = "('waiting', 'open')"


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    delta = datetime.fromisoformat(end.replace("Z", "+00:00")) - datetime.fromisoformat(
        start.replace("Z", "+00:00")
    )
    return round(delta.total_seconds(), 1)


def _session(row: Any) -> AgentSession:
    values = dict(row)
    first = values.pop("first_response_at")
    values["first_response_s"] = _seconds(values["opened_at"], first)
    return AgentSession(**values)


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

    def group_by_id(self, group_id: int) -> AgentGroup | None:
        row = self.db.one(_GROUP + "WHERE g.id = :id", {"id": group_id})
        return None if row is None else _group(row)

    def add_group(self, group: NewAgentGroup) -> int:
        cursor = self.db.execute(
            "INSERT INTO agent_groups (account, name, policy, queue_timeout, sla, away_text, "
            "timeout_text, created_by, created_at, updated_at) VALUES (:account, :name, "
            ":policy, :queue_timeout, :sla, :away_text, :timeout_text, :created_by, :at, :at)",
            {"account": group.account, "name": group.name, "policy": group.policy,
             "queue_timeout": group.queue_timeout, "sla": group.sla,
             "away_text": group.away_text, "timeout_text": group.timeout_text,
             "created_by": group.created_by, "at": group.at},
        )  # fmt: skip
        return int(cursor.lastrowid or 0)

    def update_group(self, group_id: int, change: AgentGroupUpdate, at: str) -> None:
        changes = given(change)
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

    def add(self, agent: NewAgent) -> int:
        cursor = self.db.execute(
            "INSERT INTO agents (account, name, max_sessions, kf_account, nickname, status, "
            "status_at, created_by, created_at, updated_at) VALUES (:account, :name, "
            ":max_sessions, :kf_account, :nickname, 'offline', :at, :created_by, :at, :at)",
            {"account": agent.account, "name": agent.name, "max_sessions": agent.max_sessions,
             "kf_account": agent.kf_account, "nickname": agent.nickname,
             "created_by": agent.created_by, "at": agent.at},
        )  # fmt: skip
        return int(cursor.lastrowid or 0)

    def update(self, agent_id: int, change: AgentUpdate, at: str) -> None:
        changes = given(change)
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

    # --- sessions ------------------------------------------------------------------------------

    def queue(self, account: str, openid: str, group_id: int, at: str) -> tuple[AgentSession, bool]:
        """The follower's live session: a new waiting one in the group, or the one they have
        (a retry, a second request). (session, whether it is new). Call in a transaction."""
        cursor = self.db.execute(
            "INSERT INTO agent_sessions (account, openid, group_id, state, entered_at) "
            "VALUES (:a, :o, :g, 'waiting', :at) "
            "ON CONFLICT (account, openid) WHERE state IN ('waiting', 'open') DO NOTHING",
            {"a": account, "o": openid, "g": group_id, "at": at},
        )
        found = self.live(account, openid)
        assert found is not None  # noqa: S101 - inserted, or the conflicting one exists
        if cursor.rowcount == 1:
            self._bump()
        return found, cursor.rowcount == 1

    # The followers a lookup may take only grow when a session is queued or a rating asked for:
    # those writes bump a version, so a receiver can keep the set between them (a superset is
    # harmless: the lookup checks each follower it is given).

    def _bump(self) -> None:
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES ('agents_version', '1') ON CONFLICT (key) "
            "DO UPDATE SET value = CAST(CAST(meta.value AS INTEGER) + 1 AS TEXT)"
        )

    def version(self) -> str:
        return str(self.db.scalar("SELECT value FROM meta WHERE key = 'agents_version'") or "0")

    def engaged(self, account: str, rated_since: str) -> frozenset[str]:
        """Followers of the account who wait, are served, or were asked for a rating since
        ``rated_since`` and have not given it."""
        rows = self.db.all(
            "SELECT DISTINCT openid FROM agent_sessions WHERE account = :a "  # noqa: S608
            f"AND (state IN {LIVE} OR (rating IS NULL AND rating_asked_at > :since))",
            {"a": account, "since": rated_since},
        )
        return frozenset(row[0] for row in rows)

    def live(self, account: str, openid: str) -> AgentSession | None:
        row = self.db.one(
            _SESSION + f"WHERE s.account = :a AND s.openid = :o AND s.state IN {LIVE}",
            {"a": account, "o": openid},
        )
        return None if row is None else _session(row)

    def rating_pending(self, account: str, openid: str, since: str) -> AgentSession | None:
        """The follower's latest session asking for a rating since ``since``, not yet rated."""
        row = self.db.one(
            _SESSION + "WHERE s.account = :a AND s.openid = :o AND s.rating IS NULL "
            "AND s.rating_asked_at > :since ORDER BY s.rating_asked_at DESC LIMIT 1",
            {"a": account, "o": openid, "since": since},
        )
        return None if row is None else _session(row)

    def asked_rating(self, session_id: int, at: str) -> None:
        self.db.execute(
            "UPDATE agent_sessions SET rating_asked_at = :at WHERE id = :id",
            {"at": at, "id": session_id},
        )
        self._bump()

    def rate(self, session_id: int, score: int) -> bool:
        cursor = self.db.execute(
            "UPDATE agent_sessions SET rating = :r WHERE id = :id AND rating IS NULL",
            {"r": score, "id": session_id},
        )
        return cursor.rowcount == 1

    def session(self, session_id: int) -> AgentSession | None:
        row = self.db.one(_SESSION + "WHERE s.id = :id", {"id": session_id})
        return None if row is None else _session(row)

    def ahead(self, session: AgentSession) -> int:
        """Followers waiting in the same group before this one."""
        return int(
            self.db.scalar(
                "SELECT count(*) FROM agent_sessions WHERE group_id = :g AND state = 'waiting' "
                "AND (entered_at < :e OR (entered_at = :e AND id < :id))",
                {"g": session.group_id, "e": session.entered_at, "id": session.id},
            )
            or 0
        )

    def noticed(self, session_id: int, at: str) -> None:
        self.db.execute(
            "UPDATE agent_sessions SET notice_at = :at WHERE id = :id", {"at": at, "id": session_id}
        )

    def add_message(
        self, session_id: int, at: str, direction: str, msg_type: str, content: str, sender: str
    ) -> None:
        """A transcript line (content already masked)."""
        self.db.execute(
            "INSERT INTO session_messages (session_id, at, direction, msg_type, content, sender) "
            "VALUES (:s, :at, :d, :t, :c, :by)",
            {"s": session_id, "at": at, "d": direction, "t": msg_type, "c": content,
             "by": sender},
        )  # fmt: skip

    def messages(self, session_id: int, after: int = 0) -> list[SessionMessage]:
        rows = self.db.all(
            "SELECT id, at, direction, msg_type, content, sender FROM session_messages "
            "WHERE session_id = :s AND id > :after ORDER BY id",
            {"s": session_id, "after": after},
        )
        return [SessionMessage(**dict(r)) for r in rows]

    def take(
        self, agent: Agent, group_ids: list[int], openid: str | None, at: str
    ) -> AgentSession | None:
        """Open the longest-waiting session of the agent's groups (or the follower's) for the
        agent, if the agent has room: one conditional UPDATE, so that nobody is assigned twice
        and no agent goes above its maximum. Call in a transaction."""
        if not group_ids:
            return None
        groups = json.dumps(group_ids)
        cursor = self.db.execute(
            "UPDATE agent_sessions SET state = 'open', agent_id = :agent, opened_at = :at "
            "WHERE id = (SELECT id FROM agent_sessions WHERE account = :a AND state = 'waiting' "
            " AND group_id IN (SELECT value FROM json_each(:groups)) "
            " AND (:openid IS NULL OR openid = :openid) ORDER BY entered_at, id LIMIT 1) "
            "AND state = 'waiting' "
            "AND (SELECT count(*) FROM agent_sessions WHERE agent_id = :agent AND state = 'open') "
            " < :max RETURNING id",
            {"agent": agent.id, "at": at, "a": agent.account, "groups": groups,
             "openid": openid, "max": agent.max_sessions},
        )  # fmt: skip
        row = cursor.fetchone()
        if row is None:
            return None
        self.db.execute(
            "UPDATE agents SET last_assigned_at = :at WHERE id = :id", {"at": at, "id": agent.id}
        )
        return self.session(int(row[0]))

    def hand_to_agent(self, session_id: int, agent: Agent, at: str) -> bool:
        """Give a live session to the agent, if the agent has room (one conditional UPDATE).
        False when the agent is full or the session is no longer live."""
        cursor = self.db.execute(
            "UPDATE agent_sessions SET agent_id = :agent, state = 'open', "
            "opened_at = coalesce(opened_at, :at) "
            "WHERE id = :id AND state IN ('waiting', 'open') "
            "AND (SELECT count(*) FROM agent_sessions WHERE agent_id = :agent AND state = 'open') "
            " < :max",
            {"agent": agent.id, "at": at, "id": session_id, "max": agent.max_sessions},
        )
        return cursor.rowcount == 1

    def hand_to_group(self, session_id: int, group_id: int) -> bool:
        """Put a live session back in a group's queue (keeping its place by entry time)."""
        cursor = self.db.execute(
            "UPDATE agent_sessions SET group_id = :g, agent_id = NULL, state = 'waiting', "
            "opened_at = NULL WHERE id = :id AND state IN ('waiting', 'open')",
            {"g": group_id, "id": session_id},
        )
        return cursor.rowcount == 1

    def close(self, session_id: int, reason: str, at: str) -> bool:
        """End a live session; False when it was not live (closed meanwhile)."""
        cursor = self.db.execute(
            "UPDATE agent_sessions SET state = 'closed', closed_at = :at, close_reason = :r "
            "WHERE id = :id AND state IN ('waiting', 'open')",
            {"at": at, "r": reason, "id": session_id},
        )
        return cursor.rowcount == 1

    def responded(self, session_id: int, at: str) -> None:
        self.db.execute(
            "UPDATE agent_sessions SET first_response_at = :at "
            "WHERE id = :id AND first_response_at IS NULL",
            {"at": at, "id": session_id},
        )

    def sessions(
        self,
        account: str,
        agent_id: int | None = None,
        state: str | None = None,
        since: str | None = None,
    ) -> list[AgentSession]:
        rows = self.db.all(
            _SESSION + "WHERE s.account = :a AND (:agent IS NULL OR s.agent_id = :agent) "
            "AND (:state IS NULL OR s.state = :state) "
            "AND (:since IS NULL OR s.entered_at >= :since) "
            "ORDER BY s.id",
            {"a": account, "agent": agent_id, "state": state, "since": since},
        )
        return [_session(r) for r in rows]

    def waiting(self, account: str, group_id: int | None, now: datetime) -> list[QueueEntry]:
        rows = self.db.all(
            "SELECT s.id, s.account, s.openid, g.name AS grp, s.entered_at, "
            " row_number() OVER (PARTITION BY s.group_id ORDER BY s.entered_at, s.id) AS position "
            "FROM agent_sessions s LEFT JOIN agent_groups g ON g.id = s.group_id "
            "WHERE s.account = :a AND s.state = 'waiting' AND (:g IS NULL OR s.group_id = :g) "
            "ORDER BY s.entered_at, s.id",
            {"a": account, "g": group_id},
        )
        stamp = now.isoformat().replace("+00:00", "Z")
        return [
            QueueEntry(r["id"], r["account"], r["openid"], r["grp"], r["position"],
                       r["entered_at"], max(0.0, _seconds(r["entered_at"], stamp) or 0.0))
            for r in rows
        ]  # fmt: skip

    def accounts_in_use(self) -> list[str]:
        """Accounts with agent groups (the only ones the periodic work looks at)."""
        rows = self.db.all(
            "SELECT DISTINCT account FROM agent_groups WHERE removed_at IS NULL ORDER BY account"
        )
        return [row[0] for row in rows]

    def overdue(self, account: str, now: str) -> list[AgentSession]:
        """Waiting sessions past their group's queue timeout."""
        rows = self.db.all(
            _SESSION + "WHERE s.account = :a AND s.state = 'waiting' "
            "AND (julianday(:now) - julianday(s.entered_at)) * 86400 > g.queue_timeout "
            "ORDER BY s.id",
            {"a": account, "now": now},
        )
        return [_session(r) for r in rows]

    def idle(self, account: str, now: str, idle_s: int) -> list[AgentSession]:
        """Open sessions in which nobody wrote for ``idle_s`` seconds."""
        last = "coalesce((SELECT max(m.at) FROM session_messages m WHERE m.session_id = s.id), "
        rows = self.db.all(
            f"{_SESSION} WHERE s.account = :a AND s.state = 'open' "
            f"AND (julianday(:now) - julianday({last}s.opened_at))) * 86400 > :idle ORDER BY s.id",
            {"a": account, "now": now, "idle": idle_s},
        )
        return [_session(r) for r in rows]

    def open_sessions(self, account: str) -> list[AgentSession]:
        return self.sessions(account, state="open")

    def expire(self, session_id: int, at: str) -> bool:
        cursor = self.db.execute(
            "UPDATE agent_sessions SET state = 'expired', closed_at = :at "
            "WHERE id = :id AND state = 'open'",
            {"at": at, "id": session_id},
        )
        return cursor.rowcount == 1

    def count_default(self, account: str, openid: str) -> int:
        """One more default reply in a row for the follower; the count now."""
        row = self.db.one(
            "INSERT INTO agent_handover (account, openid, defaults) VALUES (:a, :o, 1) "
            "ON CONFLICT (account, openid) DO UPDATE SET defaults = defaults + 1 "
            "RETURNING defaults",
            {"a": account, "o": openid},
        )
        return int(row[0]) if row else 1

    def reset_defaults(self, account: str, openid: str) -> None:
        self.db.execute(
            "DELETE FROM agent_handover WHERE account = :a AND openid = :o",
            {"a": account, "o": openid},
        )

    def unknown_units(self, session_id: int) -> int:
        """The session's outbox units whose fate a crash left unknown."""
        return int(
            self.db.scalar(
                "SELECT count(*) FROM outbox WHERE source = :s AND state = 'unknown'",
                {"s": f"agent-session:{session_id}"},
            )
            or 0
        )

    def available(self, group_id: int) -> int:
        """Agents of the group who are present (online or busy)."""
        return int(
            self.db.scalar(
                "SELECT count(*) FROM agent_members m JOIN agents a ON a.id = m.agent_id "
                "WHERE m.group_id = :g AND a.status IN ('online', 'busy') "
                "AND a.removed_at IS NULL",
                {"g": group_id},
            )
            or 0
        )

    def last_heard(self, session_id: int) -> str | None:
        """When the session's follower last wrote (their latest transcript line)."""
        found = self.db.scalar(
            "SELECT max(at) FROM session_messages WHERE session_id = :s AND direction = 'in'",
            {"s": session_id},
        )
        return None if found is None else str(found)
