"""The engine counts reports' roll-ups in its write units, on every path a message can take:
the quick path's group write (answers in time), the quick unit (a late answer, a retry, a
retry that takes over a dead claim), and the handler path (claim, then outcome). Whatever the
path, the figures equal what ``report backfill`` computes from the log afterwards."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from bxtest import ORIGINAL_ID, Bankwx

from bankwx_cli.commands._cli import to_row
from bankwx_cli.context import AppContext
from bankwx_cli.domain import reports, routing
from bankwx_cli.models.messages import InboundRow
from bankwx_cli.settings import from_environment
from bankwx_cli.wechat import callback

ROLLUPS = ("rollup_messages", "rollup_handling", "rollup_followers", "rollup_menus",
           "rollup_keywords")  # fmt: skip


@pytest.fixture
def app(with_account: Bankwx) -> Iterator[AppContext]:
    added = with_account(
        "keyword", "add", "余额", "--match", "contains", "--reply-text", "余额100元"
    )
    assert added.exit_code == 0, added.output
    context = AppContext(from_environment())
    yield context
    context.close()


def text_message(msg_id: int, content: str = "查询余额") -> callback.Inbound:
    xml = (
        f"<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName><FromUserName><![CDATA["
        f"oFollower{msg_id:019d}]]></FromUserName><CreateTime>1700000000</CreateTime>"
        f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>"
        f"<MsgId>{msg_id}</MsgId></xml>"
    )
    return callback.parse(xml.encode())


def quick(engine: routing.Engine, inbound: callback.Inbound, late: bool = False) -> Any:
    """Answer on the quick path and wait for the commit; ``late``: the request gave up first."""
    runtime = engine.runtime("main")
    decision = engine.quick(runtime, inbound)
    assert decision is not None
    ticket = routing.Ticket()
    if late:
        ticket.abandon()
    finished, got = threading.Event(), []

    def done(value: Any, error: BaseException | None) -> None:
        got.append(error or value)
        finished.set()

    engine.answer(runtime, inbound, decision, ticket, done)
    assert finished.wait(10)
    (found,) = got
    assert not isinstance(found, BaseException), found
    return found


def figures(app: AppContext) -> dict[str, list[dict[str, Any]]]:
    def run(name: str, **options: Any) -> list[dict[str, Any]]:
        req = reports.request(app, name, since="2020-01-01", by="total", account="main",
                              **options)  # fmt: skip
        found = [r.to_json() for r in reports.run(app, req).rows]
        rows = json.loads(json.dumps(found, ensure_ascii=False))
        return [to_row(r) for r in rows]

    return {"routes": run("messages", split="route"), "keywords": run("keywords")}


def test_every_path_counts_what_backfill_counts(app: AppContext) -> None:
    engine = routing.Engine(app)
    engine.refresh(True)
    store = app.store
    for n in range(1, 6):  # in time: counted by the group write
        quick(engine, text_message(n, "查询余额" if n % 2 else "你好"))
    late = quick(engine, text_message(6), late=True)  # late: counted by its unit
    assert late.plain_reply is None and late.outcome.startswith("late")
    retry = quick(engine, text_message(1))  # a retry of a message answered: one more delivery
    assert retry.retry
    # a claim whose handler died (its claim counted it as unanswered), then a retry on the
    # quick path: it takes the message over and answers it
    dead = {"account": "main", "openid": "oDead", "msg_type": "text", "event": "",
            "content": "x", "msg_id": "7", "dedup_key": text_message(7).dedup_key(),
            "at": "2026-03-01T00:00:00.000000Z", "claimed_at": 0.0}  # fmt: skip
    with store.transaction():
        claim = store.messages.claim(InboundRow(**dead), stale_before=-1.0)
        reports.count_claim(store.rollups, "main", dead["at"], "text", "")
    taken = quick(engine, text_message(7))
    assert not taken.retry and taken.plain_reply is not None
    # the handler path: claimed, then routed in a worker thread, then its outcome written
    runtime = engine.runtime("main")
    handled = engine.process(runtime, text_message(8, "什么"), routing.Ticket())
    assert handled.route == "default"
    # a claim still processing: counted as unanswered
    stuck = {**dead, "openid": "oStuck", "msg_id": "9", "dedup_key": "stuck:9",
             "claimed_at": app.clock.time()}  # fmt: skip
    engine.app.store.messages.writer.call(
        lambda: (
            reports.count_claim(store.rollups, "main", stuck["at"], "text", "")
            if store.messages.claim(InboundRow(**stuck), stale_before=-1.0).first
            else None
        )
    )

    live = figures(app)
    inbound = sum(r["inbound"] for r in live["routes"])
    assert inbound == 9 and sum(r["retries"] for r in live["routes"]) == 2
    assert sum(r["unanswered"] for r in live["routes"]) == 1  # the stuck claim
    assert {r["route"]: r["inbound"] for r in live["routes"] if r["inbound"]} == {
        "rule": 5, "default": 3, "other": 1,
    }  # fmt: skip

    with store.transaction():
        for table in ROLLUPS:
            store.db.execute(f"DELETE FROM {table}")  # noqa: S608 - our names
        store.db.execute("DELETE FROM meta WHERE key LIKE 'rollups.backfilled:%'")
        store.rollups.raise_backfill_to(store.rollups.last_log_id())
    reports.backfill(app)
    assert figures(app) == live
    assert claim.first
