"""`bankwx demo`: a guided end-to-end run on a throw-away store and the simulator.

The tour runs the real `bankwx` commands, each printed before it runs, against a store in a
temporary folder with a master key of its own (never the operator's key file), the bundled
simulator standing in for WeChat, and `bankwx serve` as the receiver. The tour is its output:
it narrates on standard output (`make demo > tour.log` keeps all of it); secrets reach the
commands on their standard input, as an operator should pass them, never on a command line.
"""

from __future__ import annotations

import base64
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer

from bankwx_cli.commands._cli import get_cli
from bankwx_cli.errors import BankwxError

DEMO = {
    "appid": "wxd0e1a2b3c4d5e6f7",
    "secret": "d0e1a2b3c4d5e6f7a8b9c0d1e2f3a4b5",
    "token": "demotoken2026",
    "original_id": "gh_d0e1a2b3c4d5",
    "aes_key": "DemoBankEncodingAESKey0123456789abcdefGHIJK",
}


class Tour:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {
            **os.environ,
            "BANKWX_DB": str(folder / "demo.db"),
            "BANKWX_MASTER_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "BANKWX_KEY_FILE": str(folder / "unused.key"),
            "BANKWX_OPERATOR": "ops-alice",
            "BANKWX_FORMAT": "plain",
            "BANKWX_INTERACTIVE": "0",
        }
        for name in ("BANKWX_ACCOUNT", "BANKWX_API_BASE", "BANKWX_SIM", "BANKWX_DEBUG"):
            self.env.pop(name, None)
        self.procs: list[subprocess.Popen[str]] = []

    @staticmethod
    def say(text: str) -> None:
        """The tour's narration: standard output, flushed line by line."""
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def step(self, title: str) -> None:
        self.say("")
        self.say(f"== {title}")

    def run(
        self,
        *args: str,
        operator: str | None = None,
        check: bool = True,
        quiet: bool = False,
        stdin: str | None = None,
    ) -> str:
        """Run one bankwx command and show it with its output; ``stdin``: what it reads there
        (shown as a pipe from a file, never the secret itself)."""
        shown = f"$ {'BANKWX_OPERATOR=' + operator + ' ' if operator else ''}bankwx "
        shown += " ".join(shlex.quote(a) for a in args)
        self.say(shown + (" < secrets.txt" if stdin is not None else ""))
        env = dict(self.env)
        if operator:
            env["BANKWX_OPERATOR"] = operator
        done = subprocess.run(  # noqa: S603 - our own command
            [sys.executable, "-m", "bankwx_cli", *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        output = (done.stdout + done.stderr).rstrip()
        if output and not quiet:
            self.say("  " + output.replace("\n", "\n  "))
        if check and done.returncode != 0:
            raise BankwxError(f"the demo step 'bankwx {' '.join(args)}' failed.")
        return done.stdout

    def start(self, *args: str) -> str:
        self.say(f"$ bankwx {' '.join(args)} &")
        proc = subprocess.Popen(  # noqa: S603 - our own command
            [sys.executable, "-m", "bankwx_cli", *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.procs.append(proc)
        assert proc.stdout is not None  # noqa: S101
        line = proc.stdout.readline().strip()
        if not line.startswith("Listening on "):
            raise BankwxError(f"'bankwx {' '.join(args)}' did not start.")
        self.say(f"  {line}")
        return line.removeprefix("Listening on ")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            if proc.stdout is not None:
                proc.stdout.close()


def demo(
    ctx: typer.Context,
    keep: Annotated[
        Path | None,
        typer.Option(
            "--keep",
            help="Keep the demo store in this folder instead of a temp one.",
            file_okay=False,
        ),
    ] = None,
) -> None:
    """Run a guided tour of bankwx on a throw-away store and the built-in simulator.

    Examples:

      bankwx demo

      bankwx demo --keep ./demo-store
    """
    get_cli(ctx)  # the global options, checked
    with tempfile.TemporaryDirectory(prefix="bankwx-demo-") as tmp:
        folder = keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        tour = Tour(folder)
        try:
            _tour(tour, folder)
        finally:
            tour.stop()
    Tour.say("")
    Tour.say("Demo finished. Run `bankwx --help` to see every command.")


def _tour(tour: Tour, folder: Path) -> None:
    tour.step("1. The simulator stands in for WeChat (its API and its followers), the sandbox for "
              "the bank's back-end")  # fmt: skip
    sim = tour.start("sim", "api", "--port", "0", "--followers", "200", "--seed", "7")
    tour.env["BANKWX_API_BASE"] = sim
    tour.env["BANKWX_SIM"] = sim
    bank = tour.start("backend", "sandbox", "--port", "0", "--seed", "7")
    port = _free_port()
    public = f"http://127.0.0.1:{port}"  # the receiver's address, where the binding page is

    tour.step("2. A store with its own master key; the bank's account, secrets encrypted")
    tour.run("init")
    tour.run(
        "account",
        "add",
        "demo-bank",
        "--appid",
        DEMO["appid"],
        "--secret",
        "-",
        "--token",
        DEMO["token"],
        "--original-id",
        DEMO["original_id"],
        "--aes-key",
        "-",
        "--mode",
        "safe",
        stdin=f"{DEMO['secret']}\n{DEMO['aes_key']}\n",
    )
    tour.run("account", "update", "demo-bank", "--welcome", "欢迎关注示例银行！回复“余额”试试。")
    tour.run("account", "check")
    tour.run("account", "update", "demo-bank", "--public-url", public)
    tour.run("backend", "set", "--url", bank, "--api-key", "-", stdin=f"{SANDBOX_KEY}\n")
    tour.run("backend", "check")

    tour.step("3. Operators: a publisher and an approver (maker-checker)")
    tour.run("org", "add", "总行")
    tour.run("operator", "add", "ops-bob", "--role", "publisher", "--org", "总行")
    tour.run("operator", "add", "ops-carol", "--role", "approver", "--org", "总行")
    tour.run("operator", "add", "ops-dave", "--role", "agent", "--org", "总行")
    tour.run("operator", "list")

    tour.step("4. Keyword rules (指令查询): text and menu keys")
    tour.run("keyword", "actions")
    tour.run("keyword", "add", "余额", "--match", "exact", "--action", "balance")
    tour.run("keyword", "add", "BALANCE", "--match", "click", "--action", "balance")
    tour.run("keyword", "add", "CARD_BILL", "--match", "click", "--action", "card_bill")
    tour.run("keyword", "add", "TRANSACTIONS", "--match", "click", "--action", "transactions")
    tour.run("keyword", "add", "绑定", "--match", "exact", "--action", "bind")
    tour.run("keyword", "add", "利率", "--match", "exact", "--action", "rates")
    tour.run("keyword", "add", "帮助", "--match", "contains", "--action", "help")
    for key in ("CARD_LIMIT", "PRIVATE_BANKER"):
        tour.run("keyword", "add", key, "--match", "click", "--action", "help", quiet=True)
    tour.step("   Agents (统一客服坐席): a group, an agent with a WeChat kf account, 人工 queues")
    tour.run("agent", "group", "add", "retail", "--sla", "60")
    tour.run("account", "set", "demo-bank", "default_group", "retail")
    tour.run("agent", "add", "ops-dave", "--groups", "retail", "--kf-account", "dave@demobank",
             "--nickname", "客服小戴")  # fmt: skip
    tour.run("keyword", "add", "人工", "--match", "contains", "--action", "talk_to_agent")
    tour.run("keyword", "add", "TALK_TO_AGENT", "--match", "click", "--action", "talk_to_agent")
    tour.run("keyword", "list")
    tour.run("keyword", "test", "余额")

    tour.step("   Branches and ATMs (地理位置), imported by the publisher from a CSV file")
    branches = _branches_file()
    if branches is not None:
        tour.run("branch", "import", str(branches), operator="ops-bob")
        tour.run("branch", "nearest", "--lat", "31.2304", "--lng", "121.4737", "--limit", "3")
    else:
        tour.say("  (examples/branches.csv is not installed with this copy of bankwx: skipped)")

    tour.step("5. The receiver: WeChat's callbacks, verified, de-duplicated, logged")
    receiver = tour.start("serve", "--port", str(port), "--quiet")
    tour.run("sim", "register", "demo-bank", "--callback", f"{receiver}/wx/demo-bank")

    tour.step("6. A follower subscribes, asks, taps the menu")
    tour.run("sim", "send", "--event", "subscribe")
    tour.run("sim", "send", "余额")
    tour.run("sim", "send", "我的卡号是6222021234567890123，帮助")
    tour.run("sim", "send", "利率")

    tour.step("   The follower binds a card on the binding page (WeChat's browser, over HTTP)")
    openid = _bind_through_the_page(tour, bank, f"{public}/bind/demo-bank")
    tour.run("follower", "show", openid, "--format", "json")
    tour.step("   Balance, card bill and transactions from the bank's back-end; a location")
    tour.run("sim", "send", "余额")
    tour.run("sim", "send", "--event", "click", "--key", "CARD_BILL")
    tour.run("sim", "send", "--event", "click", "--key", "TRANSACTIONS")
    tour.run("sim", "send", "--location", "31.2304,121.4737", "--label", "人民广场")
    tour.step("   The conversation log, card numbers masked, bank answers never in clear")
    tour.run("messages", "list", "--limit", "8")

    tour.step("   The follower asks for a person: queued, told the position")
    tour.run("agent", "status", "busy", operator="ops-dave")  # present, takes by hand
    tour.run("sim", "send", "人工")
    tour.run("agent", "queue")
    taken = tour.run("agent", "take", "--format", "json", operator="ops-dave", quiet=True)
    session = _id(taken)
    tour.run("agent", "sessions", operator="ops-dave")
    tour.run(
        "agent", "reply", session, "您好，我是客服小戴，请问有什么可以帮您？", operator="ops-dave"
    )
    tour.run("sim", "send", "我想了解一下理财产品")
    tour.run("agent", "close", session, operator="ops-dave")
    time.sleep(0.5)  # the rating menu leaves through the outbox
    tour.run("sim", "send", "非常满意", "--msgmenu-id", f"{session}5")
    tour.run("agent", "sessions", "--all")

    tour.step("7. The menu as a reviewed file: validate, plan, deploy")
    menu = folder / "menu.yaml"
    menu.write_text(
        resources.files("bankwx_cli").joinpath("data/demo_menu.yaml").read_text("utf-8"),
        encoding="utf-8",
    )
    tour.run("menu", "validate", str(menu), check=False)
    tour.run("menu", "deploy", str(menu), "--yes", operator="ops-bob")
    tour.run("menu", "plan", str(menu), "--exit-code")
    tour.run("menu", "history")

    tour.step("8. Followers synced from WeChat")
    tour.run("follower", "sync")
    tour.run("tag", "list")

    tour.step("9. A broadcast: created by a publisher, approved by another, sent by cron")
    out = tour.run(
        "broadcast",
        "create",
        "--text",
        "示例银行：12月1日起网点营业时间调整为9:00-17:00。",
        "--to-all",
        "--title",
        "营业时间调整",
        "--format",
        "json",
        operator="ops-bob",
    )
    broadcast_id = _id(out)
    tour.run("broadcast", "submit", broadcast_id, operator="ops-bob")
    tour.run("broadcast", "approve", broadcast_id, operator="ops-bob", check=False)
    tour.run("broadcast", "approve", broadcast_id, operator="ops-carol")
    tour.run("broadcast", "run-due")
    time.sleep(1.0)  # WeChat's job-finished event arrives at the receiver
    tour.run("broadcast", "status", broadcast_id)
    _alerts(tour, bank, receiver, openid)

    tour.step("10. Everything is audited, hash-chained; the store checks clean")
    tour.run("audit", "--limit", "12")
    tour.run("check")
    _reports(tour, folder)


def _reports(tour: Tour, folder: Path) -> None:
    """The tour's end: today's messages, agents and alerts reports, and a chart file."""
    from datetime import datetime

    from bankwx_cli.clock import BANK_TZ

    today = datetime.now(BANK_TZ).strftime("%Y-%m-%d")
    tour.step("Reports (监管统计): hourly roll-ups, read from one snapshot of the store")
    tour.run("report", "backfill")  # the log from before live counting: nothing twice
    tour.run("report", "messages", "--since", today, "--by", "total", "--split", "route")
    tour.run("report", "agents", "--since", today, "--by", "total")
    tour.run("report", "alerts", "--since", today, "--by", "total")
    chart = folder / "messages.html"
    tour.run("report", "messages", "--since", today, "--by", "hour", "--chart", str(chart),
             "--format", "csv", quiet=True, check=False)  # fmt: skip
    if chart.exists():
        tour.say(f"  The chart of today's messages by hour (SVG, table, JSON): {chart}")
        tour.say("  (bankwx demo --keep FOLDER keeps it, with the demo store)")
    else:
        tour.say("  No chart: install the charts extra, pip install 'bankwx[charts]'.")


def _alerts(tour: Tour, bank: str, receiver: str, openid: str) -> None:
    """Alerts (消息提醒): a source for the bank's core system, a rule for its transactions on
    the synced transaction template, then the core system (a second sandbox, `--alerts-url`)
    pushing one transaction of the bound customer (a template message to the follower) and one
    of an unbound customer (an SMS through the back-end's gateway)."""
    import json

    import httpx

    from bankwx_cli.sim.api_templates import template_id

    tour.step("9b. Alerts (消息提醒): the core system's transactions become template messages; "
              "SMS when WeChat cannot reach the customer")  # fmt: skip
    tour.run("template", "sync")
    tour.run("account", "set", "demo-bank", "alerts.sms_signature", "示例银行")
    tour.run("account", "set", "demo-bank", "alerts.sms_cost_fen", "5")
    added = tour.run("alert", "source", "add", "core-banking", "--format", "json", quiet=True)
    key = json.loads(added)["key"]
    tour.say("  (the source's API key is printed once; it goes to the core system's settings)")
    template = template_id(DEMO["appid"], "transaction")
    tour.run(
        "alert", "rule", "add", "transaction", "--template", template,
        "--field", "first=您{account_last4|mask}的账户发生一笔{description}",
        "--field", "time={occurred_at|time}",
        "--field", "amount={amount_fen|yuan}",
        "--field", "remark=如非本人操作，请致电客服",
        "--label", "交易提醒",
        "--sms", "您{account_last4|mask}的账户{occurred_at|time}{description}{amount_fen|yuan}",
        operator="ops-bob",
    )  # fmt: skip
    tour.run("alert", "rule", "list")
    tour.env["BANKWX_SANDBOX_ALERT_KEY"] = key  # for the core system's process only
    try:
        core = tour.start("backend", "sandbox", "--port", "0", "--seed", "7",
                          "--alerts-url", receiver)  # fmt: skip
    finally:
        tour.env.pop("BANKWX_SANDBOX_ALERT_KEY", None)
    sim = tour.env["BANKWX_SIM"]
    with httpx.Client(trust_env=False, timeout=30) as http:
        customers = http.get(f"{bank}/sandbox/customers").json()
        bound, unbound = customers[0]["id"], customers[1]["id"]
        pushed = []
        for customer, amount, what in ((bound, 12_800, "超市购物"), (unbound, 560_000, "转账")):
            body = {"customer_id": customer, "amount_fen": amount, "description": what}
            answer = http.post(f"{core}/sandbox/transactions", json=body).json()
            event_id = answer["event"]["event_id"]
            status = (answer.get("answer") or {}).get("results", [{}])[0].get("status")
            tour.say(f"  (core system) POST /sandbox/transactions {customer} {what} "
                     f"{amount / 100:,.2f}元 -> event {event_id}: {status}")  # fmt: skip
            pushed.append(event_id)
        template_sent = _wait(lambda: [
            d for d in http.get(f"{sim}/sim/delivered",
                                params={"kind": "template", "openid": openid}).json()
            if d.get("template_id") == template
        ])  # fmt: skip
        for d in template_sent:
            shown = str(d.get("content", "")).replace("\n", " / ")
            tour.say(f"  (WeChat) the bound follower {openid} got the template message: {shown}")
        texts = _wait(lambda: http.get(f"{bank}/sandbox/sms").json())
        for sms in texts:
            phone = sms["phone"]
            tour.say(f"  (SMS gateway) to {phone[:3]}****{phone[-4:]}: {sms['text']}")
    tour.run("alert", "show", pushed[0])
    tour.run("alert", "show", pushed[1])
    tour.run("alert", "status")


def _wait(found: Any, seconds: float = 15.0) -> Any:
    """What found() returns once it is not empty (at most seconds; then whatever it is)."""
    deadline = time.monotonic() + seconds
    got = found()
    while not got and time.monotonic() < deadline:
        time.sleep(0.25)
        got = found()
    return got


SANDBOX_KEY = "sandbox"  # the sandbox's default key (BANKWX_SANDBOX_KEY), loopback only
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')
_TITLE = re.compile(r"<title>([^<]*)</title>")


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _branches_file() -> Path | None:
    """examples/branches.csv of the source tree bankwx runs from, when there is one."""
    found = Path(__file__).resolve().parents[2] / "examples" / "branches.csv"
    return found if found.is_file() else None


def _bind_through_the_page(tour: Tour, bank: str, page: str) -> str:
    """What the follower does in WeChat's browser: open the link, type the card and the phone,
    then the code the bank sent (read from the sandbox's record of sent codes)."""
    from urllib.parse import unquote

    import httpx

    opened = tour.run("sim", "open", page).strip()
    with httpx.Client(trust_env=False, timeout=30) as browser:
        customer = browser.get(f"{bank}/sandbox/customers").json()[0]
        card = next(c["number"] for c in customer["cards"] if c["type"] == "debit")
        phone = customer["phone"]
        form = browser.get(opened, follow_redirects=True)
        tour.say(f"  (browser) GET {page} -> authorised by WeChat -> {_shown(form)}")
        sent = browser.post(page, data={"csrf": _csrf(form), "card": card, "phone": phone})
        tour.say(
            f"  (browser) POST card ****{card[-4:]}, phone {phone[:3]}****{phone[-4:]} -> "
            f"{_shown(sent)}"
        )
        codes = [o for o in browser.get(f"{bank}/sandbox/otp").json() if o["phone"] == phone]
        if not codes:
            raise BankwxError("the demo found no code sent by the sandbox.")
        done = browser.post(page, data={"csrf": _csrf(sent), "code": codes[-1]["code"]})
        tour.say(f"  (browser) POST the code from the SMS -> {_shown(done)}")
    if done.status_code != 200:
        raise BankwxError("the demo's binding through the page failed.")
    return unquote(opened.split("/sim/followers/", 1)[1].split("/", 1)[0])


def _csrf(page: Any) -> str:
    found = _CSRF.search(page.text)
    if found is None:
        raise BankwxError(f"the binding page answered {page.status_code} without a form.")
    return found.group(1)


def _shown(page: Any) -> str:
    title = _TITLE.search(page.text)
    return f"{page.status_code} {title.group(1) if title else ''}".strip()


def _id(text: str) -> str:
    import json

    try:
        return str(json.loads(text)["id"])
    except (ValueError, KeyError, TypeError):
        raise BankwxError("the demo could not read the new row's id.") from None
