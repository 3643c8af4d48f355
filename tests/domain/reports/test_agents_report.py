"""The agents report (人工客服监管): sessions by the period they entered the queue."""

from __future__ import annotations

from typing import Any

from reportkit import report, shanghai

from bankwx_cli.clock import iso
from bankwx_cli.context import AppContext
from bankwx_cli.models.agents import AgentGroupUpdate, NewAgent, NewAgentGroup

RANGE = {"since": "2026-03-01", "until": "2026-03-03"}


def _at(text: str) -> str:
    return iso(shanghai(text))


def _sessions(app: AppContext) -> None:
    """Four sessions with known times in group retail (SLA 60 s)."""
    agents = app.store.agents
    at = _at("2026-03-01T00:00")
    with app.store.transaction():
        group = agents.add_group(
            NewAgentGroup("main", "retail", "round-robin", 300, 60, None, None, "alice", at)
        )
        for name in ("zhang", "li"):
            agent_id = agents.add(NewAgent("main", name, 5, None, None, "alice", at))
            agents.set_groups(agent_id, [group])

    def session(
        openid: str, entered: str, agent: str | None, opened: str | None, first: str | None,
        closed: str, reason: str, rating: int | None,
    ) -> None:  # fmt: skip
        with app.store.transaction():
            found, new = agents.queue("main", openid, group, _at(entered))
            assert new
            if agent is not None and opened is not None:
                who = agents.get("main", agent)
                assert who is not None
                taken = agents.take(who, [group], openid, _at(opened))
                assert taken is not None and taken.id == found.id
            if first is not None:
                agents.responded(found.id, _at(first))
            assert agents.close(found.id, reason, _at(closed))
            if rating is not None:
                assert agents.rate(found.id, rating)

    session("oA", "2026-03-02T09:00:00", "zhang", "2026-03-02T09:00:30", "2026-03-02T09:01:00",
            "2026-03-02T09:11:00", "agent", 5)  # fmt: skip
    session("oB", "2026-03-02T09:05:00", "zhang", "2026-03-02T09:07:00", "2026-03-02T09:09:00",
            "2026-03-02T09:20:00", "agent", 3)  # fmt: skip
    session("oC", "2026-03-02T09:10:00", None, None, None, "2026-03-02T09:15:00", "timeout",
            None)  # fmt: skip
    session("oD", "2026-03-01T23:59:00", "li", "2026-03-02T00:00:10", None,
            "2026-03-02T00:05:10", "agent", None)  # fmt: skip


def _figures(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[k] for k in ("agent", "group", "sessions", "first_response_p50_s",
                                  "first_response_p90_s", "handling_p50_s", "queue_wait_p50_s",
                                  "queue_wait_p90_s", "abandoned", "sla_breaches", "ratings",
                                  "rating_avg"))  # fmt: skip


def test_agents_by_day_and_by_group(app: AppContext) -> None:
    _sessions(app)
    rows = report(app, "agents", account="main", **RANGE)
    assert [(r["period"], *_figures(r)) for r in rows] == [
        ("2026-03-01T00:00:00+08:00", "li", None, 1, None, None, 300.0, 70.0, 70.0, 0, 1, 0,
         None),
        ("2026-03-02T00:00:00+08:00", None, None, 1, None, None, None, None, None, 1, 0, 0,
         None),
        ("2026-03-02T00:00:00+08:00", "zhang", None, 2, 30.0, 120.0, 630.0, 30.0, 120.0, 0, 1,
         2, 4.0),
    ]  # fmt: skip
    groups = report(app, "agents", account="main", by="total", split="group", **RANGE)
    assert [_figures(r) for r in groups] == [
        (None, "retail", 4, 30.0, 120.0, 630.0, 70.0, 120.0, 1, 2, 2, 4.0),
    ]
    assert report(app, "agents", account="card", **RANGE) == []
    both = report(app, "agents", all_accounts=True, by="total", **RANGE)
    assert [(r["account"], r["agent"], r["sessions"]) for r in both] == [
        ("*", None, 1), ("*", "li", 1), ("*", "zhang", 2)]  # fmt: skip


def test_a_breach_is_judged_by_the_sla_set_at_opening(app: AppContext) -> None:
    """Opened under SLA 60 s, answered after 90 s: a breach, still after the group's SLA is
    raised to 120 s; a session opened after the change, answered after 90 s, is none. One
    handed back to the queue and opened again after the change takes the SLA of its second
    opening."""
    agents = app.store.agents
    at = _at("2026-03-01T00:00")
    with app.store.transaction():
        group = agents.add_group(
            NewAgentGroup("main", "retail", "round-robin", 300, 60, None, None, "alice", at)
        )
        agent_id = agents.add(NewAgent("main", "zhang", 5, None, None, "alice", at))
        agents.set_groups(agent_id, [group])
    zhang = agents.get("main", "zhang")
    assert zhang is not None

    def opened(openid: str, when: str) -> int:
        with app.store.transaction():
            found, _ = agents.queue("main", openid, group, _at(when))
            assert agents.take(zhang, [group], openid, _at(when)) is not None
        return found.id

    def answered(session: int, when: str) -> None:
        with app.store.transaction():
            agents.responded(session, _at(when))
            assert agents.close(session, "agent", _at(when))

    early = opened("oA", "2026-03-02T09:00:00")
    handed = opened("oB", "2026-03-02T09:00:00")
    with app.store.transaction():
        assert agents.hand_to_group(handed, group)
        agents.update_group(group, AgentGroupUpdate(sla=120), _at("2026-03-02T09:01:00"))
        assert agents.take(zhang, [group], "oB", _at("2026-03-02T09:02:00")) is not None
    answered(early, "2026-03-02T09:01:30")
    answered(handed, "2026-03-02T09:03:30")
    late = opened("oC", "2026-03-02T10:00:00")
    answered(late, "2026-03-02T10:01:30")
    [row] = report(app, "agents", account="main", by="total", **RANGE)
    assert (row["sessions"], row["sla_breaches"]) == (3, 1)
