"""The binding page through `bankwx serve` (a subprocess), the simulator's web authorisation
and the sandbox: a follower binds their card end to end (the code from /sandbox/otp), then asks
for a balance, transactions and a card bill by `bankwx sim send`, as text and click. Every page,
the store's files and the receiver's log then hold no full card number, balance or amount. The
refusals: forged state, another browser's state, a reused or expired authorisation code, an
expired SMS code, the sixth wrong code (429), a missing form token, a foreign OAuth domain
(10003); none binds anything."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from bankkit import KEY, amounts, secrets_of
from bxprocs import Proc, SimOptions
from bxtest import APPID, Bankwx
from pagekit import (
    authorised,
    browse_url,
    browser,
    csrf,
    debit_card,
    latest_code,
    open_in_wechat,
    query_of,
)

from bankwx_cli.sandbox.server import SandboxThread
from bankwx_cli.sim.driver import SimDriver


@pytest.fixture
def sim_options() -> SimOptions:
    return SimOptions(followers=5)


def _bound(bx: Bankwx, openid: str) -> Any:
    shown = bx("follower", "show", openid, "--format", "json")
    return json.loads(shown.stdout)["binding"] if shown.exit_code == 0 else None


def _to_code_form(
    client: httpx.Client, sim: SimDriver, openid: str, url: str, customer: dict[str, Any]
) -> httpx.Response:
    form = open_in_wechat(client, sim.base_url, openid, url)
    assert form.status_code == 200, form.text
    answer = client.post(
        url,
        data={"csrf": csrf(form), "card": debit_card(customer), "phone": customer["phone"]},
    )
    assert answer.status_code == 200, answer.text
    assert 'name="code"' in answer.text
    return answer


def test_a_follower_binds_through_the_page_then_queries(
    paged: tuple[Bankwx, Proc, str],
    sim: SimDriver,
    sandbox: SandboxThread,
    control: httpx.Client,
    customers: list[dict[str, Any]],
    db_path: Path,
    tmp_path: Path,
) -> None:
    bx, proc, url = paged
    openid = sim.pick_openid(APPID)
    customer = customers[0]
    card = debit_card(customer)

    # the follower asks to bind: the link to the page
    link = sim.send(APPID, openid, text="绑定")
    assert link["status"] == "replied" and url in str(link["content"]), link
    # `bankwx sim open` prints the address that opens it in the follower's WeChat browser
    opened = bx("sim", "open", url, "--openid", openid)
    assert opened.exit_code == 0, opened.output
    assert opened.stdout.strip() == browse_url(sim.base_url, openid, url)

    pages: list[httpx.Response] = []
    with browser() as client:
        form = client.get(opened.stdout.strip(), follow_redirects=True)
        pages.append(form)
        assert form.status_code == 200 and "绑定银行卡" in form.text, form.text
        assert form.headers["cache-control"] == "no-store"
        assert form.headers["referrer-policy"] == "no-referrer"
        assert "http" not in form.text.replace(url, "")  # nothing from elsewhere, no script
        assert "<script" not in form.text
        sent = client.post(url, data={"csrf": csrf(form), "card": card, "phone": customer["phone"]})
        pages.append(sent)
        assert sent.status_code == 200 and 'name="code"' in sent.text, sent.text
        assert customer["phone"] not in sent.text  # the phone masked
        done = client.post(
            url, data={"csrf": csrf(sent), "code": latest_code(control, customer["phone"])}
        )
        pages.append(done)
        assert done.status_code == 200 and "绑定成功" in done.text, done.text
        assert f"尾号{card[-4:]}" in done.text
        # the page again: already bound
        again = open_in_wechat(client, sim.base_url, openid, url)
        pages.append(again)
        assert again.status_code == 200 and "已绑定" in again.text

    binding = _bound(bx, openid)
    assert binding == {
        "customer_id": customer["id"], "card": f"****{card[-4:]}",
        "bound_at": binding["bound_at"],
    }  # fmt: skip
    entries = json.loads(bx("audit", "--action", "binding.add", "--format", "json").stdout)
    assert [e["operator"] for e in entries] == [f"follower:{openid}"]
    # the follower wrote within 48 hours: a confirmation in the chat
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not sim.delivered(kind="custom"):
        time.sleep(0.1)
    custom = sim.delivered(kind="custom", openid=openid)
    assert len(custom) == 1 and "成功绑定" in str(custom[0]["content"]), custom

    # then balance, transactions and the card bill, by `bankwx sim send`, text and click
    replies: list[str] = []
    for args in (
        ("余额",), ("--event", "click", "--key", "BALANCE"), ("明细",),
        ("--event", "click", "--key", "TXNS"), ("--event", "click", "--key", "CARD_BILL"),
    ):  # fmt: skip
        got = bx("sim", "send", *args, "--openid", openid, "--format", "json")
        assert got.exit_code == 0, got.output
        replies.append(json.loads(got.stdout)["content"])
        time.sleep(1.05)  # a click is de-duplicated by its second
    assert replies[0].startswith("您的账户余额：") and replies[1] == replies[0]
    assert replies[2].startswith("最近3笔交易：") and replies[3].startswith("最近5笔交易：")
    assert replies[4].startswith("信用卡尾号"), replies[4]

    headers = {"Authorization": f"Bearer {KEY}"}
    v1 = httpx.Client(base_url=sandbox.url, headers=headers, trust_env=False)
    txns = v1.get(f"/v1/customers/{customer['id']}/transactions?limit=10").json()
    bill = v1.get(f"/v1/customers/{customer['id']}/card-bill").json()
    v1.close()
    secrets = secrets_of(customers)
    secrets += amounts([t["amount_fen"] for t in txns["transactions"]])
    secrets += amounts([bill["amount_fen"], bill["min_payment_fen"]])
    secrets.append(customer["phone"].encode())
    for page in pages:
        for secret in secrets:
            assert secret not in page.content, (page.url, secret)

    def store_files() -> list[Path]:
        return [p for p in db_path.parent.glob(db_path.name + "*") if p.is_file()]

    def check(paths: list[Path]) -> None:
        for path in paths:
            raw = path.read_bytes()
            for secret in secrets:
                assert secret not in raw, (path.name, secret)

    assert db_path.with_name(db_path.name + "-wal").exists()
    check(store_files())
    proc.stop()
    check([*store_files(), tmp_path / "serve.log"])


def test_forged_other_browsers_and_reused_states_and_codes_bind_nothing(
    paged: tuple[Bankwx, Proc, str], sim: SimDriver, customers: list[dict[str, Any]]
) -> None:
    bx, _, url = paged
    openid, other = (str(f["openid"]) for f in sim.followers(APPID, limit=2))

    with browser() as one, browser() as two:
        back = authorised(one, sim.base_url, openid, url)
        state = query_of(back)["state"]
        # a forged state, a missing one, and no cookie at all: 400, the page says open again
        for forged in (
            back.replace(state, state[:-1] + ("0" if state[-1] != "0" else "1")),
            back.replace(f"state={state}", "state="),
        ):
            refused = one.get(forged)
            assert refused.status_code == 400, refused.text
            assert "重新点击绑定链接" in refused.text
        # this browser's cookie forged (its session id changed, the signature kept): 400
        jar = one.cookies.get("bxbind")
        assert jar is not None
        forged_cookie = ("0" if jar[0] != "0" else "1") + jar[1:]
        refused = httpx.get(back, cookies={"bxbind": forged_cookie}, trust_env=False)
        assert refused.status_code == 400
        # another browser (its own cookie) with this browser's code and state: 400
        assert two.get(url).status_code == 302
        assert two.get(back).status_code == 400
        assert httpx.get(back, trust_env=False).status_code == 400  # no cookie
        # the code is still unused: this browser gets the form, once; reused: 400 (40163)
        assert one.get(back).status_code == 200
        assert one.get(back).status_code == 400

        # an authorisation code past its 5 minutes (simulator clock): 400 (40029)
        late = authorised(two, sim.base_url, other, url)
        sim.advance_clock(301)
        assert two.get(late).status_code == 400

    # no form token, or a wrong one: 403
    with browser() as three:
        form = open_in_wechat(three, sim.base_url, other, url)
        assert form.status_code == 200
        customer = customers[1]
        data = {"card": debit_card(customer), "phone": customer["phone"]}
        assert three.post(url, data=data).status_code == 403
        assert three.post(url, data={**data, "csrf": "0" * 32}).status_code == 403
        # a form without this browser's session: 400
        assert (
            httpx.post(url, data={**data, "csrf": csrf(form)}, trust_env=False).status_code == 400
        )
    assert _bound(bx, openid) is None and _bound(bx, other) is None


def test_wrong_expired_and_locked_codes_bind_nothing(
    paged: tuple[Bankwx, Proc, str],
    sim: SimDriver,
    control: httpx.Client,
    customers: list[dict[str, Any]],
) -> None:
    bx, _, url = paged
    openid, other = (str(f["openid"]) for f in sim.followers(APPID, limit=2))
    customer = customers[0]

    # an unknown card and a phone that does not match: 422, one message, the form again empty
    with browser() as client:
        form = open_in_wechat(client, sim.base_url, other, url)
        token = csrf(form)
        wrong = client.post(
            url, data={"csrf": token, "card": "6222000000000000", "phone": customer["phone"]}
        )
        mismatch = client.post(
            url, data={"csrf": token, "card": debit_card(customer), "phone": "13900000000"}
        )
        assert wrong.status_code == mismatch.status_code == 422
        assert "卡号或手机号不正确" in wrong.text and "卡号或手机号不正确" in mismatch.text
        assert "6222000000000000" not in wrong.text and 'name="card"' in wrong.text

    # an SMS code past its 5 minutes (the sandbox's clock): 422, nothing bound
    with browser() as client:
        sent = _to_code_form(client, sim, openid, url, customer)
        code = latest_code(control, customer["phone"])
        control.post("/sandbox/clock", json={"advance": 301})
        expired = client.post(url, data={"csrf": csrf(sent), "code": code})
        assert expired.status_code == 422 and "验证码已失效" in expired.text, expired.text
        # a new code within the minute: 429
        again = client.post(url, data={"csrf": csrf(sent), "resend": "1"})
        assert again.status_code == 429, again.text
    assert _bound(bx, openid) is None

    # five wrong codes: 422 each; the sixth, even the right one: 429; locked
    with browser() as client:
        third = str(sim.followers(APPID, limit=3)[2]["openid"])
        sent = _to_code_form(client, sim, third, url, customers[1])
        code = latest_code(control, customers[1]["phone"])
        bad = "000000" if code != "000000" else "111111"
        for _ in range(5):
            answer = client.post(url, data={"csrf": csrf(sent), "code": bad})
            assert answer.status_code == 422 and "验证码不正确" in answer.text, answer.text
        sixth = client.post(url, data={"csrf": csrf(sent), "code": code})
        assert sixth.status_code == 429 and "锁定" in sixth.text, sixth.text
        # the page again for the locked follower: 429
        assert open_in_wechat(client, sim.base_url, third, url).status_code == 429
    assert _bound(bx, third) is None
    # the card is locked too, whoever types it: 429 without asking the back-end
    with browser() as client:
        fourth = str(sim.followers(APPID, limit=4)[3]["openid"])
        form = open_in_wechat(client, sim.base_url, fourth, url)
        data = {"csrf": csrf(form), "card": debit_card(customers[1]),
                "phone": customers[1]["phone"]}  # fmt: skip
        calls = control.get("/sandbox/state").json()["calls"]
        assert client.post(url, data=data).status_code == 429
        assert control.get("/sandbox/state").json()["calls"] == calls
    assert _bound(bx, fourth) is None


def test_statuses_of_the_page(
    paged: tuple[Bankwx, Proc, str],
    sim: SimDriver,
    control: httpx.Client,
    customers: list[dict[str, Any]],
) -> None:
    bx, proc, url = paged
    # a follower who never wrote is bound without a message in the chat (no window)
    openid, other = (str(f["openid"]) for f in sim.followers(APPID, limit=2))
    with browser() as client:
        sent = _to_code_form(client, sim, openid, url, customers[0])
        code = latest_code(control, customers[0]["phone"])
        assert client.post(url, data={"csrf": csrf(sent), "code": code}).status_code == 200
    assert _bound(bx, openid) is not None
    time.sleep(1.5)
    assert sim.delivered(kind="custom") == []
    # the back-end down: 503, a page saying to try later
    control.post("/sandbox/faults", json={"down": True})
    with browser() as client:
        form = open_in_wechat(client, sim.base_url, other, url)
        data = {"csrf": csrf(form), "card": debit_card(customers[1]),
                "phone": customers[1]["phone"]}  # fmt: skip
        down = client.post(url, data=data)
        assert down.status_code == 503 and "系统繁忙" in down.text, down.text
    control.post("/sandbox/faults", json={"down": False})
    assert httpx.get(f"{proc.url}/bind/nosuch", trust_env=False).status_code == 404
    big = httpx.post(url, content=b"card=" + b"1" * 10_000, trust_env=False,
                     headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert big.status_code == 413
    assert httpx.post(url, content=b"\xff\xfe", trust_env=False).status_code == 400
    # without the follower's WeChat browser, the authorisation says to open it in WeChat
    with browser() as client:
        outside = client.get(url, follow_redirects=True)
        assert outside.status_code == 200 and "请在微信客户端打开链接" in outside.text
    # a foreign OAuth domain: WeChat's 10003 page, no redirect back
    done = bx("sim", "register", "main", "--callback", f"{proc.url}/wx/main",
              "--oauth-domain", "bank.example.com")  # fmt: skip
    assert done.exit_code == 0, done.output
    with browser() as client:
        page = open_in_wechat(client, sim.base_url, sim.pick_openid(APPID), url)
        assert page.status_code == 200 and "10003" in page.text, page.text
        assert str(page.url).startswith(sim.base_url)
    assert bx("sim", "register", "main", "--oauth-domain", "http://x/").exit_code == 1
    bad = bx("sim", "open", "ftp://bank.example.com/bind/main")
    assert bad.exit_code == 1 and "not an http:// or https:// address" in bad.stderr
