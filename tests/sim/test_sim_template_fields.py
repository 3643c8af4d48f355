"""Template sends after WeChat's 2023 reform: first/remark optional, typed keys checked
(protocol sheet §5.5), templates added by tests (POST /sim/templates)."""

from __future__ import annotations

from typing import Any

import pytest
from bxtest import APPID
from hypothesis import given
from hypothesis import strategies as st
from simkit import Receiver, Sim

from bankwx_cli.domain import template_fields
from bankwx_cli.sim import template_fields as sim_fields
from bankwx_cli.sim.api_templates import template_id

SEND = "/cgi-bin/message/template/send"
LIST = "/cgi-bin/template/get_all_private_template"
TRANSACTION = template_id(APPID, "transaction")
TYPED = "{{thing1.DATA}}\n{{amount2.DATA}}\n{{time3.DATA}}\n{{character_string4.DATA}}"


@pytest.fixture
def ready(sim: Sim, receiver: Receiver, receiver_url: str) -> Sim:
    sim.register(callback_url=receiver_url)
    return sim


def add(sim: Sim, **body: Any) -> str:
    response = sim.http.post("/sim/templates", json=body)
    assert response.status_code == 200, response.text
    tid: str = response.json()["template_id"]
    return tid


def send(sim: Sim, tid: str, openid: str, data: dict[str, str]) -> dict[str, Any]:
    payload = {"touser": openid, "template_id": tid, "data": {k: {"value": v} for k, v in
                                                              data.items()}}  # fmt: skip
    result: dict[str, Any] = sim.api("POST", SEND, sim.token(), json=payload)
    return result


GOOD = {"thing1": "储蓄卡支出", "amount2": "1,234.56元", "time3": "2026年01月05日 10:00",
        "character_string4": "TX-0001"}  # fmt: skip


def test_a_send_without_first_and_remark_is_taken(ready: Sim) -> None:
    answer = send(ready, TRANSACTION, ready.openid(), {"time": "10:00", "amount": "100.00元"})
    assert answer["errcode"] == 0, answer
    (delivery,) = ready.driver.delivered(kind="template")
    assert delivery["content"] == "\n交易时间：10:00\n交易金额：100.00元\n"


def test_added_templates_are_listed_and_sent(ready: Sim) -> None:
    tid = add(ready, appid=APPID, title="动账提醒", content=TYPED, example="例")
    assert add(ready, appid=APPID, title="动账提醒", content=TYPED, example="例") == tid
    listed = ready.api("GET", LIST, ready.token())["template_list"]
    assert [t for t in listed if t["template_id"] == tid][0]["title"] == "动账提醒"
    assert send(ready, tid, ready.openid(), GOOD)["errcode"] == 0


def test_a_21_character_thing_is_refused_with_47003(ready: Sim) -> None:
    tid = add(ready, appid=APPID, title="动账提醒", content=TYPED)
    answer = send(ready, tid, ready.openid(), {**GOOD, "thing1": "长" * 21})
    assert answer["errcode"] == 47003
    assert answer["errmsg"].startswith("argument invalid! data.thing1.value invalid")
    assert send(ready, tid, ready.openid(), {**GOOD, "thing1": "长" * 20})["errcode"] == 0
    for key, bad in (("amount2", "1.234元"), ("time3", "25:00"), ("character_string4", "中")):
        refused = send(ready, tid, ready.openid(), {**GOOD, key: bad})
        assert refused["errcode"] == 47003, (key, bad)
        assert f"data.{key}.value" in refused["errmsg"]
    missing = send(ready, tid, ready.openid(), {k: v for k, v in GOOD.items() if k != "time3"})
    assert missing["errcode"] == 47003
    assert ready.driver.delivered(kind="template")[-1]["data"]["thing1"]["value"] == "长" * 20


def test_bad_template_bodies_get_400(ready: Sim) -> None:
    for bad in (
        {"appid": "wxnobody", "title": "t", "content": TYPED},
        {"appid": APPID, "title": "", "content": TYPED},
        {"appid": APPID, "title": "t", "content": "no placeholders"},
        {"appid": APPID, "title": "t", "content": TYPED, "example": 1},
        {"appid": APPID, "title": "t", "content": TYPED, "colour": "red"},
    ):
        response = ready.http.post("/sim/templates", json=bad)
        assert response.status_code == 400, bad
        assert "error" in response.json()


def test_refusers_and_blockers_replace_the_last_list(ready: Sim) -> None:
    a, b = (f["openid"] for f in ready.driver.followers(APPID, limit=2))
    for body in ({"refusers": [a], "blockers": [b]}, {"refusers": [b], "blockers": []}):
        assert ready.http.post("/sim/templates/settings", json=body).status_code == 200
    current = ready.http.get("/sim/templates/settings").json()
    assert current["refusers"] == [b] and current["blockers"] == []
    assert send(ready, TRANSACTION, b, {"time": "10:00", "amount": "1元"})["errcode"] == 43101
    assert send(ready, TRANSACTION, a, {"time": "10:00", "amount": "1元"})["errcode"] == 0


# The simulator's table is written on its own (DESIGN §2); both must say the same.
KEYS = ["thing1", "number2", "amount3", "time4", "date5", "character_string6",
        "phone_number7", "const8", "keyword1", "first"]  # fmt: skip
ALPHABET = st.sampled_from(list("0123456789+-.,:¥元年月日 -aZ中长\t"))


@given(key=st.sampled_from(KEYS), value=st.text(ALPHABET, max_size=40))
def test_the_simulator_and_the_product_agree_on_every_value(key: str, value: str) -> None:
    product = template_fields.check_field(key, value) is None
    assert sim_fields.value_allowed(key, value) == product, (key, value)


@given(key=st.sampled_from(KEYS), value=st.text(max_size=40))
def test_they_agree_on_any_text(key: str, value: str) -> None:
    product = template_fields.check_field(key, value) is None
    assert sim_fields.value_allowed(key, value) == product, (key, value)
