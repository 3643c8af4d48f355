"""Reports' roll-ups counted live by the receiver (`bankwx serve`, its quick path and its
handler path, driven through the simulator's follower side): exact figures, and the same
figures as ``report backfill`` computes from the log afterwards."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
from bxprocs import Proc, start_receiver
from bxtest import APPID, Bankwx, add_account_args
from test_engine_receiver import _encrypted, _text_xml

from bankwx_cli.sim.driver import SimDriver

ROLLUPS = ("rollup_messages", "rollup_handling", "rollup_followers", "rollup_menus",
           "rollup_keywords")  # fmt: skip
MENU = {
    "button": [
        {"type": "click", "name": "余额", "key": "BAL"},
        {"type": "view", "name": "官网", "url": "https://bank.example.com/"},
    ]
}


def _report(bx: Bankwx, name: str, *args: str) -> list[dict[str, Any]]:
    result = bx("report", name, "--since", "2020-01-01", "--by", "total", *args,
                "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def _all_reports(bx: Bankwx) -> dict[str, Any]:
    return {
        "messages": _report(bx, "messages"),
        "routes": _report(bx, "messages", "--split", "route"),
        "types": _report(bx, "messages", "--split", "type"),
        "keywords": _report(bx, "keywords"),
        "menus": _report(bx, "menus"),
        "followers": _report(bx, "followers", "--split", "scene"),
    }


def _count_again_by_backfill(db_path: Path) -> None:
    """Forget every roll-up row and move the backfill's end to the newest log entry, as if
    the whole log had been written before live counting began."""
    with sqlite3.connect(db_path) as conn:
        for table in ROLLUPS:
            conn.execute(f"DELETE FROM {table}")  # noqa: S608 - our names
        conn.execute("DELETE FROM meta WHERE key LIKE 'rollups.backfilled:%'")
        conn.execute(
            "UPDATE meta SET value = (SELECT CAST(MAX(id) AS TEXT) FROM messages) "
            "WHERE key = 'rollups.backfill_to'"
        )


def test_the_receiver_counts_what_backfill_would(
    store_ready: Bankwx, sim: SimDriver, receivers: list[Proc], db_path: Path, tmp_path: Path
) -> None:
    bx = store_ready
    assert bx(*add_account_args()).exit_code == 0
    bx("account", "update", "main", "--welcome", "欢迎关注示例银行")
    balance = json.loads(bx("keyword", "add", "余额", "--match", "exact", "--reply-text",
                            "余额100元", "--format", "json").stdout)["id"]  # fmt: skip
    click = json.loads(bx("keyword", "add", "BAL", "--match", "click", "--reply-text", "点击余额",
                          "--format", "json").stdout)["id"]  # fmt: skip
    bx("keyword", "add", "^网点", "--match", "regex", "--action", "help")  # the handler path
    proc = start_receiver(bx, receivers)
    assert sim.verify_url(APPID)["status"] == "verified"
    openid = sim.pick_openid(APPID)

    def send(**kw: object) -> dict[str, object]:
        return sim.send(APPID, openid, **kw)  # type: ignore[arg-type]

    assert send(event="subscribe")["content"] == "欢迎关注示例银行"  # quick: the welcome
    assert send(text="余额")["content"] == "余额100元"  # quick: a static rule
    assert send(event="click", key="BAL")["content"] == "点击余额"  # quick: a static click
    assert "可用服务" in str(send(text="网点在哪")["content"])  # handler: an action
    assert "已收到" in str(send(text="随便说说")["content"])  # quick: the default reply
    assert send(event="view", key="https://bank.example.com/")["status"] == "success"
    # a menu deployed: the clicks after it count under its version (the receiver reloads)
    menu = tmp_path / "menu.json"
    menu.write_text(json.dumps(MENU, ensure_ascii=False))
    deployed = bx("menu", "deploy", str(menu), "--yes")
    assert deployed.exit_code == 0, deployed.output
    time.sleep(1.5)  # a configuration change reaches the receiver within a second
    assert send(event="click", key="BAL")["content"] == "点击余额"
    assert send(event="click", key="NOBODY")["status"] == "success"  # unhandled key
    assert send(event="unsubscribe")["status"] == "success"
    # one message delivered twice (WeChat's retry): counted once, with one retry
    with httpx.Client(timeout=10) as http:
        for _ in range(2):
            body, query = _encrypted(_text_xml("余额", 4242), int(time.time()))
            assert http.post(f"{proc.url}/wx/main", params=query, content=body).status_code == 200

    live = _all_reports(bx)
    (messages,) = live["messages"]
    assert {k: messages[k] for k in ("inbound", "retries", "replied", "default_reply",
                                     "unanswered", "no_reply", "failed")} == {
        "inbound": 10, "retries": 1, "replied": 7, "default_reply": 1, "unanswered": 1,
        "no_reply": 2, "failed": 0,
    }  # fmt: skip
    assert messages["p50_ms"] is not None
    routes = {r["route"]: r["inbound"] for r in live["routes"] if r["inbound"]}
    assert routes == {"event": 4, "rule": 4, "action": 1, "default": 1}
    hits = {r["rule_id"]: r["hits"] for r in live["keywords"]}
    assert hits[balance] == 2 and hits[click] == 2
    clicks = {(r["menu_version"], r["key"]): r["clicks"] for r in live["menus"]}
    assert clicks == {(None, "BAL"): 1, (None, "https://bank.example.com/"): 1, (1, "BAL"): 1,
                      (1, "NOBODY"): 1}  # fmt: skip
    (followers,) = [r for r in live["followers"] if r["new"] or r["lost"]]
    assert (followers["new"], followers["lost"]) == (1, 1)

    proc.stop()
    _count_again_by_backfill(db_path)
    assert bx("report", "backfill").exit_code == 0
    assert _all_reports(bx) == live


def test_a_report_while_the_receiver_writes_is_one_moment(
    store_ready: Bankwx, sim: SimDriver, receivers: list[Proc], db_path: Path
) -> None:
    """Reports run while `bankwx serve` logs a stream of messages: each counts what was
    committed before it began (no fewer messages than the log held before it started, no more
    than after it ended), and its columns agree with each other (one snapshot)."""
    import threading

    bx = store_ready
    assert bx(*add_account_args()).exit_code == 0
    bx("keyword", "add", "余额", "--match", "exact", "--reply-text", "余额100元")
    proc = start_receiver(bx, receivers)
    stop = threading.Event()

    def stream() -> None:
        with httpx.Client(timeout=10) as http:
            n = 10_000
            while not stop.is_set():
                n += 1
                body, query = _encrypted(
                    _text_xml("余额" if n % 2 else "你好", n), int(time.time())
                )
                http.post(f"{proc.url}/wx/main", params=query, content=body)

    def logged() -> int:
        with sqlite3.connect(db_path) as conn:
            found = conn.execute("SELECT count(*) FROM messages WHERE direction = 'in'").fetchone()
        return int(found[0])

    sender = threading.Thread(target=stream, daemon=True)
    sender.start()
    try:
        seen = []
        for _ in range(5):
            time.sleep(0.3)
            before = logged()
            (row,) = _report(bx, "messages")
            after = logged()
            assert before <= row["inbound"] <= after, (before, row, after)
            parts = ("replied", "late", "late_no_window", "unanswered", "failed", "no_reply")
            assert row["inbound"] == sum(row[k] for k in parts), row
            seen.append(row["inbound"])
    finally:
        stop.set()
        sender.join(timeout=10)
    assert seen == sorted(seen) and seen[-1] > seen[0] > 0  # the stream went on meanwhile
