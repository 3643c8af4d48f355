"""The bank actions through `bankwx serve` (a subprocess), the simulator and the sandbox: a
follower bound by an administrator asks for a balance, transactions and a card bill, by text
and by menu click; an unbound follower gets the binding link; a back-end down gets the busy
text. Afterwards the store's files and the receiver's log hold no full card number, balance
or transaction amount."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from bankkit import KEY, amounts, secrets_of, yuan
from bxprocs import Proc, SimOptions, start
from bxtest import APPID, Bankwx

from bankwx_cli.sandbox.server import SandboxThread
from bankwx_cli.sim.driver import SimDriver

BUSY = "系统繁忙，请稍后再试"
LINK = "https://bank.example.com/wx/bind/main"  # the public URL has a path
RULES = [
    ("余额", "exact", ["--action", "balance"]),
    ("明细", "exact", ["--action", "transactions", "--arg", "3"]),
    ("BALANCE", "click", ["--action", "balance"]),
    ("CARD_BILL", "click", ["--action", "card_bill"]),
    ("TXNS", "click", ["--action", "transactions"]),
    ("绑定", "exact", ["--action", "bind"]),
    ("解绑", "exact", ["--action", "unbind"]),
    ("利率", "exact", ["--action", "rates"]),
    ("外汇", "exact", ["--action", "fx_rates"]),
    ("产品", "exact", ["--action", "products"]),
]


@pytest.fixture
def sim_options() -> SimOptions:
    return SimOptions(followers=5)


def _v1(sandbox: SandboxThread, path: str) -> Any:
    headers = {"Authorization": f"Bearer {KEY}"}
    return httpx.get(sandbox.url + path, headers=headers, trust_env=False, timeout=10).json()


def test_bank_actions_through_serve(
    banked: Bankwx,
    sim: SimDriver,
    sandbox: SandboxThread,
    control: httpx.Client,
    customers: list[dict[str, Any]],
    receivers: list[Proc],
    db_path: Path,
    tmp_path: Path,
) -> None:
    bx = banked
    for pattern, match, answer in RULES:
        done = bx("keyword", "add", pattern, "--match", match, *answer)
        assert done.exit_code == 0, done.output
    log_path = tmp_path / "serve.log"
    proc = start(["serve", "--port", "0"], health="/healthz", log=log_path)
    receivers.append(proc)
    registered = bx("sim", "register", "main", "--callback", f"{proc.url}/wx/main")
    assert registered.exit_code == 0, registered.output
    followers = sim.followers(APPID, limit=2)
    openid, other = str(followers[0]["openid"]), str(followers[1]["openid"])

    customer = customers[0]  # C000001: a debit card, a time deposit and a credit card
    assert any(c["type"] == "credit" for c in customer["cards"])
    bound = bx("follower", "bind", openid, "--customer", customer["id"], "--yes")
    assert bound.exit_code == 0, bound.output

    def send(who: str = openid, **kw: Any) -> str:
        answer = sim.send(APPID, who, **kw)
        assert answer["status"] == "replied", answer
        return str(answer["content"])

    # balance, by text and by click: every account by its last four digits, amounts in yuan
    for got in (send(text="余额"), send(event="click", key="BALANCE")):
        assert got.startswith("您的账户余额："), got
        for account in customer["accounts"]:
            assert f"尾号{account['number'][-4:]}" in got, got
            assert f"余额{yuan(account['balance_fen'])}元" in got, got
            assert account["number"] not in got
    # `bankwx sim send` shows the same reply
    cli = bx("sim", "send", "余额", "--openid", openid, "--format", "json")
    assert cli.exit_code == 0, cli.output
    assert yuan(customer["accounts"][0]["balance_fen"]) in cli.stdout

    # transactions: the rule's --arg, and the default (5) on the click
    expected = _v1(sandbox, f"/v1/customers/{customer['id']}/transactions?limit=10")
    txns = expected["transactions"]
    got = send(text="明细")
    assert got.startswith("最近3笔交易："), got
    lines = got.splitlines()[1:]
    assert len(lines) == 3
    for line, txn in zip(lines, txns, strict=False):
        sign = "+" if txn["amount_fen"] > 0 else "-"
        assert f"{sign}{yuan(abs(txn['amount_fen']))}元" in line, (line, txn)
        assert f"尾号{txn['account_last4']}" in line and line.startswith(txn["at"][:10])
    assert send(event="click", key="TXNS").startswith("最近5笔交易：")

    # the card bill, by click
    bill = _v1(sandbox, f"/v1/customers/{customer['id']}/card-bill")
    got = send(event="click", key="CARD_BILL")
    assert f"信用卡尾号{bill['card_last4']}" in got, got
    assert f"本期应还：{yuan(bill['amount_fen'])}元" in got
    assert f"最低还款：{yuan(bill['min_payment_fen'])}元" in got
    assert bill["due_date"] in got

    # rates, exchange rates and products need no binding
    for who in (openid, other):
        assert "存款利率" in send(who, text="利率") and "贷款利率" in send(who, text="利率")
        assert "外汇牌价" in send(who, text="外汇")
        assert "在售产品" in send(who, text="产品")

    # an unbound follower gets the binding link; a bound one is told its card
    for got in (send(other, text="余额"), send(other, event="click", key="CARD_BILL"),
                send(other, text="明细"), send(other, text="绑定")):  # fmt: skip
        assert LINK in got and got.startswith("您尚未绑定银行卡"), got
    debit = next(c for c in customer["cards"] if c["type"] == "debit")["number"]
    assert f"尾号{debit[-4:]}" in send(text="绑定")

    # the back-end down: the busy text, at once
    control.post("/sandbox/faults", json={"down": True})
    time.sleep(1.1)  # an event is de-duplicated by its second: the same click again is new
    for got in (send(text="余额"), send(event="click", key="CARD_BILL"), send(text="利率")):
        assert got == BUSY, got
    # once the breaker is open, the busy text comes without calling the back-end
    for _ in range(4):
        assert send(text="余额") == BUSY
    calls = control.get("/sandbox/state").json()["calls"]
    for _ in range(3):
        assert send(text="余额") == BUSY
    assert control.get("/sandbox/state").json()["calls"] == calls
    control.post("/sandbox/faults", json={"down": False})

    # the follower unbinds: audited as the follower; then the link again
    assert send(text="解绑") == f"已解除与尾号{debit[-4:]}银行卡的绑定。"
    assert send(text="解绑") == "您尚未绑定银行卡，无需解绑。"
    assert LINK in send(text="余额")
    shown = json.loads(bx("follower", "show", openid, "--format", "json").stdout)
    assert shown["binding"] is None
    entries = json.loads(bx("audit", "--action", "binding.remove", "--format", "json").stdout)
    assert [e["operator"] for e in entries] == [f"follower:{openid}"]

    # the conversation log records that a sensitive reply was sent, not its text
    log = json.loads(bx("messages", "list", "--format", "json", "--limit", "500").stdout)
    routes = [(m["route"], m["content"]) for m in log if m["direction"] == "out"]
    for action in ("balance", "transactions", "card_bill"):
        contents = [c for r, c in routes if r.endswith(f":action:{action}")]
        assert contents and set(contents) == {"[sensitive reply]"}, (action, contents)

    secrets = secrets_of(customers)
    secrets += amounts([t["amount_fen"] for t in txns])
    secrets += amounts([bill["amount_fen"], bill["min_payment_fen"]])

    def check(paths: list[Path]) -> None:
        for path in paths:
            raw = path.read_bytes()
            for secret in secrets:
                assert secret not in raw, (path.name, secret)

    def store_files() -> list[Path]:
        return [p for p in db_path.parent.glob(db_path.name + "*") if p.is_file()]

    wal = db_path.with_name(db_path.name + "-wal")
    assert wal.exists() and wal.stat().st_size > 0  # the receiver's writes, not checkpointed
    check(store_files())  # while the receiver runs
    written = proc.stop()
    assert "Listening" in written or written.strip(), written  # the receiver wrote its log
    check([*store_files(), log_path])


def _wait(condition: Any, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_a_slow_back_end_answers_late_once_and_sealed(
    banked: Bankwx,
    sim: SimDriver,
    control: httpx.Client,
    customers: list[dict[str, Any]],
    receivers: list[Proc],
    db_path: Path,
    tmp_path: Path,
) -> None:
    """--deadline 0.5 and a 2 s back-end: success in time, then the balance once as a
    customer-service message through the outbox, its payload sealed."""
    bx = banked
    assert bx("keyword", "add", "余额", "--match", "exact", "--action", "balance").exit_code == 0
    log_path = tmp_path / "serve.log"
    proc = start(["serve", "--port", "0", "--deadline", "0.5"], health="/healthz", log=log_path)
    receivers.append(proc)
    assert bx("sim", "register", "main", "--callback", f"{proc.url}/wx/main").exit_code == 0
    openid = sim.pick_openid(APPID)
    customer = customers[2]
    assert bx("follower", "bind", openid, "--customer", customer["id"], "--yes").exit_code == 0
    control.post("/sandbox/faults", json={"delay_ms": 2000})

    started = time.monotonic()
    got = sim.send(APPID, openid, text="余额")
    assert time.monotonic() - started < 5
    assert got["status"] == "success", got
    assert _wait(lambda: len(sim.delivered(kind="custom")) == 1)
    time.sleep(1.0)
    custom = sim.delivered(kind="custom")
    assert len(custom) == 1, custom
    balance = customer["accounts"][0]["balance_fen"]
    assert f"余额{yuan(balance)}元" in str(custom[0]["content"]), custom
    log = json.loads(bx("messages", "list", "--format", "json").stdout)
    assert any(m["outcome"] == "late_enqueued" for m in log)

    proc.stop()
    secrets = secrets_of(customers)
    for path in [*db_path.parent.glob(db_path.name + "*"), log_path]:
        if path.is_file():
            raw = path.read_bytes()
            for secret in secrets:
                assert secret not in raw, (path.name, secret)
