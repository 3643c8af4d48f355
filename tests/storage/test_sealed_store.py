"""Stored replies and outbox payloads sealed at rest, against a real store and receiver."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
from bxprocs import Proc, serve
from bxtest import APPID, ORIGINAL_ID, TOKEN, Bankwx, add_account_args

from bankwx_cli.context import AppContext
from bankwx_cli.domain import outbox
from bankwx_cli.keys import MasterKey
from bankwx_cli.settings import from_environment
from bankwx_cli.sim.driver import SimDriver

REPLY = "SEALMARK余额100元"
PAYLOAD = "PAYLOADMARK您尾号1234的卡入账"


def _receiver(bankwx: Bankwx, receivers: list[Proc]) -> Proc:
    proc = serve()
    receivers.append(proc)
    result = bankwx("sim", "register", "main", "--callback", f"{proc.url}/wx/main")
    assert result.exit_code == 0, result.output
    return proc


def _post_text(proc: Proc, content: str, msg_id: str, openid: str) -> httpx.Response:
    """A plain-mode delivery of a text message (what WeChat sends again on a retry)."""
    timestamp, nonce = str(int(time.time())), "135790"
    signature = hashlib.sha1("".join(sorted([TOKEN, timestamp, nonce])).encode()).hexdigest()  # noqa: S324 - WeChat's
    xml = (
        f"<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )
    query = {"signature": signature, "timestamp": timestamp, "nonce": nonce, "openid": openid}
    return httpx.post(f"{proc.url}/wx/main", params=query, content=xml.encode(), timeout=10)


def _replied_once(bankwx: Bankwx, sim: SimDriver, proc: Proc) -> tuple[str, str]:
    """A message answered through the simulator, and a retry answered from the store."""
    openid = sim.pick_openid(APPID)
    got = sim.send(APPID, openid, text="余额")
    assert (got["status"], got["content"]) == ("replied", REPLY)
    msg_id = str(got["msgid"])
    retry = _post_text(proc, "余额", msg_id, openid)
    assert retry.status_code == 200 and f"<![CDATA[{REPLY}]]>" in retry.text
    return openid, msg_id


def _enqueue(texts: list[str]) -> list[int]:
    app = AppContext(from_environment())
    try:
        with app.store.transaction():
            ids = [
                outbox.enqueue_custom(
                    app,
                    "main",
                    "oFollower01",
                    {"msgtype": "text", "text": {"content": t}},
                    f"test:seal:{n}",
                )
                for n, t in enumerate(texts)
            ]
    finally:
        app.close()
    assert all(ids)
    return [int(i) for i in ids if i is not None]


def _raw(db: Path) -> bytes:
    wal = db.with_name(db.name + "-wal")
    return db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def _check(bankwx: Bankwx, *args: str) -> tuple[int, dict[str, Any]]:
    result = bankwx("check", *args, "--format", "json")
    return result.exit_code, json.loads(result.stdout)


def test_replies_and_payloads_are_sealed_at_rest(
    store_ready: Bankwx, sim: SimDriver, receivers: list[Proc], db_path: Path
) -> None:
    assert store_ready(*add_account_args(mode="plain")).exit_code == 0
    store_ready("keyword", "add", "余额", "--match", "exact", "--reply-text", REPLY)
    proc = _receiver(store_ready, receivers)
    _replied_once(store_ready, sim, proc)
    _enqueue([PAYLOAD])
    units = json.loads(store_ready("outbox", "list", "--format", "json").stdout)
    assert units[0]["payload"]["text"]["content"] == PAYLOAD  # opens for the dispatcher
    proc.stop()
    # the stored reply is the rendered XML; the log's outbound row keeps the text (masked)
    stored = f"<![CDATA[{REPLY}]]>".encode()
    for raw in (_raw(db_path), b""):
        if not raw:
            conn = sqlite3.connect(db_path)
            assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
            conn.close()
            raw = _raw(db_path)
        assert b"<xml>" not in raw and stored not in raw
        assert PAYLOAD.encode() not in raw and b"PAYLOADMARK" not in raw
    conn = sqlite3.connect(db_path)
    kinds = conn.execute(
        "SELECT typeof(reply) FROM messages WHERE reply IS NOT NULL "
        "UNION ALL SELECT typeof(payload) FROM outbox"
    ).fetchall()
    conn.close()
    assert kinds and {k for (k,) in kinds} == {"blob"}
    code, report = _check(store_ready)
    assert code == 0, report
    assert any("table messages" in line for line in report["checked"])
    assert any("table outbox" in line for line in report["checked"])


def test_a_reply_that_does_not_open_is_absent_and_reported(
    store_ready: Bankwx, sim: SimDriver, receivers: list[Proc], db_path: Path
) -> None:
    assert store_ready(*add_account_args(mode="plain")).exit_code == 0
    store_ready("keyword", "add", "余额", "--match", "exact", "--reply-text", REPLY)
    proc = _receiver(store_ready, receivers)
    openid, msg_id = _replied_once(store_ready, sim, proc)
    other = MasterKey.generate().seal(b"<xml>another key</xml>", "messages.reply")
    conn = sqlite3.connect(db_path, timeout=5)
    with conn:
        changed = conn.execute(
            "UPDATE messages SET reply = ? WHERE msg_id = ? AND direction = 'in'", (other, msg_id)
        ).rowcount
    conn.close()
    assert changed == 1
    for _ in range(2):  # WeChat's retries: answered as if no reply were stored
        retry = _post_text(proc, "余额", msg_id, openid)
        assert (retry.status_code, retry.content) == (200, b"success")
    again = sim.send(APPID, openid, text="余额")  # the receiver goes on
    assert again["content"] == REPLY
    legacy = b"<xml><Content><![CDATA[written before replies were sealed]]></Content></xml>"
    conn = sqlite3.connect(db_path, timeout=5)
    with conn:
        conn.execute(
            "UPDATE messages SET reply = ? WHERE msg_id = ? AND direction = 'in'",
            (legacy, str(again["msgid"])),
        )
    conn.close()
    assert _post_text(proc, "余额", str(again["msgid"]), openid).content == legacy
    assert httpx.get(f"{proc.url}/healthz", timeout=5).text == "ok"
    code, report = _check(store_ready)
    assert code == 1
    assert any("table messages" in p and "do not open" in p for p in report["problems"])
    code, report = _check(store_ready, "--fix")
    assert code == 0, report
    assert any("fixed table messages: sealed 1, dropped 1" in c for c in report["checked"])
    assert _check(store_ready)[0] == 0


def test_check_names_the_table_of_a_clear_value_and_fix_seals_it(
    with_account: Bankwx, db_path: Path
) -> None:
    now = "2026-11-25T02:00:00.000000Z"
    body = json.dumps({"touser": "o1", "msgtype": "text", "text": {"content": PAYLOAD}})
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute(
            "INSERT INTO messages (account, openid, direction, msg_type, dedup_key, reply, at) "
            "VALUES ('main', 'o1', 'in', 'text', 'msg:1', ?, ?)",
            (b"<xml><Content><![CDATA[clear]]></Content></xml>", now),
        )
    conn.close()
    code, report = _check(with_account)
    assert code == 1
    assert [p for p in report["problems"] if "table messages" in p and "in clear" in p]
    assert not [p for p in report["problems"] if "table outbox" in p]
    plain = with_account("check")
    assert plain.exit_code == 1 and "table messages" in plain.output
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute(
            "INSERT INTO outbox (account, kind, lane, lane_rank, openid, payload, "
            "idempotency_key, state, next_attempt_at, created_at, updated_at) VALUES "
            "('main', 'custom', 'reply', 0, 'o1', ?, 'k1', 'sent', 0, ?, ?)",
            (body, now, now),
        )
    conn.close()
    code, report = _check(with_account)
    assert code == 1
    assert [p for p in report["problems"] if "table outbox" in p and "in clear" in p]
    code, report = _check(with_account, "--fix")
    assert code == 0, report
    assert _check(with_account)[0] == 0
    unit = json.loads(with_account("outbox", "list", "--format", "json").stdout)[0]
    assert unit["payload"]["text"]["content"] == PAYLOAD
    audit = json.loads(with_account("audit", "--action", "store", "--format", "json").stdout)
    assert [a for a in audit if a["action"] == "store.fix"]


def test_fix_needs_an_administrator(with_account: Bankwx) -> None:
    assert with_account("operator", "add", "bob", "--role", "auditor").exit_code == 0
    assert with_account("check", env={"BANKWX_OPERATOR": "bob"}).exit_code == 0
    assert with_account("check", "--fix", env={"BANKWX_OPERATOR": "bob"}).exit_code == 4


def test_purge_drops_finished_payloads_with_the_log(with_account: Bankwx, db_path: Path) -> None:
    sent, failed, cancelled, pending, recent = _enqueue(["sent", "failed", "x", "pending", "new"])
    old = "2020-01-01T00:00:00.000000Z"
    conn = sqlite3.connect(db_path)
    with conn:
        for unit_id, state in ((sent, "sent"), (failed, "failed"), (cancelled, "cancelled")):
            conn.execute(
                "UPDATE outbox SET state = ?, updated_at = ? WHERE id = ?", (state, old, unit_id)
            )
        conn.execute("UPDATE outbox SET updated_at = ? WHERE id = ?", (old, pending))
        conn.execute("UPDATE outbox SET state = 'sent' WHERE id = ?", (recent,))
    conn.close()
    result = with_account("messages", "purge", "--yes")  # the account's retention (180 days)
    assert result.exit_code == 0, result.output
    units = {
        u["id"]: u for u in json.loads(with_account("outbox", "list", "--format", "json").stdout)
    }
    assert sorted(units) == sorted([sent, failed, cancelled, pending, recent])  # rows stay
    assert [units[i]["payload"] for i in (sent, failed, cancelled)] == [None, None, None]
    assert units[pending]["payload"]["text"]["content"] == "pending"  # not finished
    assert units[recent]["payload"]["text"]["content"] == "new"  # within the retention
    retried = with_account("outbox", "retry", str(failed))
    assert retried.exit_code == 1
    assert "purged" in retried.stderr and "Traceback" not in retried.output
    assert (
        json.loads(with_account("outbox", "list", "--format", "json").stdout)[1]["state"]
        == "failed"
    )
    audit = json.loads(with_account("audit", "--action", "messages", "--format", "json").stdout)
    purges = [a for a in audit if a["action"] == "messages.purge"]
    assert purges
    params = purges[0]["params"]
    assert (json.loads(params) if isinstance(params, str) else params)["outbox_payloads"] == 3
    assert _check(with_account)[0] == 0


def test_a_pending_unit_whose_payload_does_not_open_fails_alone(
    with_account: Bankwx, db_path: Path
) -> None:
    (unit_id,) = _enqueue([PAYLOAD])
    other = MasterKey.generate().seal(b'{"touser": "o1"}', "outbox.payload")
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE outbox SET payload = ? WHERE id = ?", (other, unit_id))
    conn.close()
    code, report = _check(with_account)
    assert code == 1
    assert any("table outbox" in p and "do not open" in p for p in report["problems"])
    result = with_account("outbox", "run")
    assert result.exit_code == 1, result.output  # the batch counts the unit failed
    assert f"unit {unit_id}" in result.stderr
    (unit,) = json.loads(with_account("outbox", "list", "--format", "json").stdout)
    assert (unit["state"], unit["payload"]) == ("failed", None)
    assert "does not open" in unit["last_error"]
    retried = with_account("outbox", "retry", str(unit_id))
    assert retried.exit_code == 1 and "does not open" in retried.stderr
    code, report = _check(with_account, "--fix")
    assert code == 0, report
    assert any("fixed table outbox: sealed 0, dropped 1" in c for c in report["checked"])
