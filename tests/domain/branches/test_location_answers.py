"""Location answers through `bankwx serve` and the simulator: a location message, a
`location_select` with and without a click rule, a click with a recent and a stale LOCATION,
text and news answers, the account's map link and radius."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from bxprocs import Proc, SimOptions, start_receiver
from bxtest import APPID, Bankwx, add_account_args

from bankwx_cli.domain import branches
from bankwx_cli.domain.routing import RELOAD_S
from bankwx_cli.sim.driver import SimDriver
from bankwx_cli.texts import DEFAULTS

DEFAULT_REPLY = DEFAULTS["default_reply"]
EXAMPLE = Path(__file__).parents[3] / "examples" / "branches.csv"
PEOPLES_SQUARE = (31.2304, 121.4737)  # 人民广场
ASK = branches.ASK_LOCATION


@pytest.fixture
def sim_options() -> SimOptions:
    return SimOptions(followers=5)


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def changed(result: Any) -> Any:
    """A configuration change, once the running receiver sees it (it reloads within a second
    of a change, at its next request)."""
    ok(result)
    time.sleep(RELOAD_S + 0.1)
    return result


@pytest.fixture
def served(store_ready: Bankwx, sim: SimDriver, receivers: list[Proc]) -> Bankwx:
    bankwx = store_ready
    ok(bankwx(*add_account_args()))
    ok(bankwx("branch", "import", str(EXAMPLE)))
    start_receiver(bankwx, receivers)
    return bankwx


def _nearest_text() -> str:
    return (
        "离您最近的网点：\n"
        "1. 人民广场支行（网点）约2米\n地址：上海市黄浦区人民大道185号\n"
        "营业时间：周一至周五 9:00-17:00\n"
        "地图：https://uri.amap.com/marker?position=121.473701,31.230416\n"
        "2. 人民广场自助银行（自助银行）约117米\n地址：上海市黄浦区人民大道185号地铁站内\n"
        "营业时间：24小时\n"
        "地图：https://uri.amap.com/marker?position=121.474500,31.231200\n"
        "3. 南京东路支行（网点）约1.1公里\n地址：上海市黄浦区南京东路300号\n"
        "营业时间：周一至周日 9:00-17:00\n"
        "地图：https://uri.amap.com/marker?position=121.480270,31.238068"
    )


def _routes(bankwx: Bankwx) -> list[str]:
    out = ok(bankwx("messages", "list", "--format", "json", "--limit", "200")).stdout
    rows = sorted(json.loads(out), key=lambda m: m["id"])
    return [m["route"] for m in rows if m["direction"] == "in"]


def test_a_location_message_gets_the_nearest_branches(
    served: Bankwx, sim: SimDriver, tmp_path: Path
) -> None:
    bankwx = served
    lat, lng = PEOPLES_SQUARE
    result = ok(bankwx("sim", "send", "--location", f"{lat},{lng}", "--label", "人民广场",
                       "--format", "json"))  # fmt: skip
    reply = json.loads(result.stdout)
    assert reply["msg_type"] == "text" and reply["content"] == _nearest_text()
    # far from every branch (Nanjing, 245 km away), and coordinates WeChat would never send
    openid = sim.pick_openid(APPID)
    far = sim.send(APPID, openid, msg_type="location", lat=32.0603, lng=118.7969)
    assert far["content"] == "很抱歉，您附近50公里内没有找到网点。"
    changed(bankwx("account", "set", "main", "branch_radius_km", "300"))
    wide = sim.send(APPID, openid, msg_type="location", lat=32.0603, lng=118.7969)
    assert str(wide["content"]).startswith("离您最近的网点：\n1. 虹桥支行（网点）约264.4公里\n")
    garbled = sim.send(APPID, openid, msg_type="location", lat=1.0, lng=2.0,
                       fields={"Location_X": "北纬31度"})  # fmt: skip
    assert garbled["content"] == branches.BAD_LOCATION
    outside = sim.send(APPID, openid, msg_type="location", lat=1.0, lng=2.0,
                       fields={"Location_X": "231.5"})  # fmt: skip
    assert outside["content"] == branches.BAD_LOCATION
    assert _routes(bankwx).count("branches:location") == 5
    # an account without branches: the default reply, and no answer to an unruled button
    empty = tmp_path / "none.csv"
    empty.write_text("id,name,type,lat,lng,address,phone,hours,services\n", encoding="utf-8")
    ok(bankwx("branch", "import", str(empty), "--replace"))
    assert ok(bankwx("branch", "list", "--format", "json")).stdout.strip() == "[]"
    default = sim.send(APPID, openid, msg_type="location", lat=lat, lng=lng)
    assert default["content"] == DEFAULT_REPLY
    button = sim.send(APPID, openid, event="location_select", key="NEAR", lat=lat, lng=lng)
    assert button["status"] == "success"
    assert _routes(bankwx)[-2:] == ["default", "event:location_select"]


def test_news_answers_and_the_map_link(served: Bankwx, sim: SimDriver) -> None:
    bankwx = served
    refused = bankwx("account", "set", "main", "map_url", "https://map.example.cn/?q={lat}")
    assert refused.exit_code == 1 and "with {lat} and {lng}" in refused.stderr
    # `account update --map-url` is an alias of the setting, checked the same way
    alias = bankwx("account", "update", "main", "--map-url", "https://map.example.cn/?q={lng}")
    assert alias.exit_code == 1 and "with {lat} and {lng}" in alias.stderr
    changed(
        bankwx("account", "update", "main", "--map-url", "https://map.example.cn/?q={lat},{lng}")
    )
    changed(bankwx("account", "set", "main", "branch_reply", "news"))
    assert bankwx("account", "set", "main", "branch_reply", "card").exit_code == 1
    openid = sim.pick_openid(APPID)
    got = sim.send(APPID, openid, msg_type="location", lat=31.2312, lng=121.4745)
    assert got["msg_type"] == "news", got
    article = got["content"]["articles"][0]
    assert article["title"] == "人民广场自助银行（自助银行）"
    assert (
        article["description"]
        == "距离：约1米\n地址：上海市黄浦区人民大道185号地铁站内\n营业时间：24小时"
    )
    assert article["url"] == "https://map.example.cn/?q=31.231200,121.474500"


def test_location_select_with_and_without_a_click_rule(served: Bankwx, sim: SimDriver) -> None:
    bankwx = served
    lat, lng = PEOPLES_SQUARE
    where = ["--lat", str(lat), "--lng", str(lng)]
    # no rule for the key: the branches area answers
    plain = ok(bankwx("sim", "send", "--event", "location_select", "--key", "NEAR", *where,
                      "--format", "json"))  # fmt: skip
    assert json.loads(plain.stdout)["content"] == _nearest_text()
    # a rule with a reply: the rule runs
    changed(bankwx("keyword", "add", "PICK", "--match", "click", "--reply-text", "收到您的位置"))
    ruled = ok(bankwx("sim", "send", "--event", "location_select", "--key", "PICK", *where,
                      "--format", "json"))  # fmt: skip
    assert json.loads(ruled.stdout)["content"] == "收到您的位置"
    # a rule naming nearest_branch (ATMs only): its action takes the event's coordinates
    changed(bankwx("keyword", "add", "ATMS", "--match", "click", "--action", "nearest_branch",
              "--arg", "atm"))  # fmt: skip
    atms = ok(bankwx("sim", "send", "--event", "location_select", "--key", "ATMS", *where,
                     "--format", "json"))  # fmt: skip
    text = json.loads(atms.stdout)["content"]
    assert text.startswith("离您最近的网点：\n1. 人民广场自助银行（自助银行）约117米\n")
    assert "支行" not in text
    routes = _routes(bankwx)
    assert "branches:location_select" in routes
    assert any(r.endswith(":action:nearest_branch") for r in routes)
    bad = bankwx("keyword", "add", "X", "--match", "click", "--action", "nearest_branch",
                 "--arg", "bank")  # fmt: skip
    assert bad.exit_code == 1 and "takes --arg branch or atm" in bad.stderr
    no_point = {"SendLocationInfo": {"Label": "无坐标"}}  # WeChat's fields, without coordinates
    garbled = sim.send(APPID, sim.pick_openid(APPID), event="location_select", key="NEAR",
                       lat=1.0, lng=2.0, fields=no_point)  # fmt: skip
    assert garbled["content"] == branches.BAD_LOCATION
    usage = bankwx("sim", "send", "--event", "location_select", *where)
    assert usage.exit_code == 1 and "needs --key" in usage.stderr
    assert bankwx("sim", "send", "--location", "31.2").exit_code == 2
    assert bankwx("sim", "send", "--location", "91,121").exit_code == 2


def test_a_click_uses_a_recent_location_and_asks_after_a_stale_one(
    served: Bankwx, sim: SimDriver, db_path: Path
) -> None:
    bankwx = served
    changed(bankwx("keyword", "add", "BRANCH", "--match", "click", "--action", "nearest_branch"))
    openid = sim.pick_openid(APPID)
    click = ["sim", "send", "--event", "click", "--key", "BRANCH", "--format", "json"]
    # no location known: asked for one
    assert json.loads(ok(bankwx(*click, "--openid", openid)).stdout)["content"] == ASK
    lat, lng = PEOPLES_SQUARE
    ok(bankwx("sim", "send", "--event", "location", "--lat", str(lat), "--lng", str(lng),
              "--openid", openid))  # fmt: skip
    time.sleep(1.05)  # an event is known by its follower and second: not a retry of the first
    recent = json.loads(ok(bankwx(*click, "--openid", openid)).stdout)["content"]
    assert recent == _nearest_text()
    # ten minutes (location_valid) later, the location is stale: asked again
    stale = "2020-01-01T00:00:00.000000Z"
    conn = sqlite3.connect(str(db_path), timeout=5)
    with conn:
        conn.execute(
            "UPDATE follower_state SET location_at = ? WHERE account = 'main' AND openid = ?",
            (stale, openid),
        )
    conn.close()
    time.sleep(1.05)
    assert json.loads(ok(bankwx(*click, "--openid", openid)).stdout)["content"] == ASK


def test_location_texts_are_the_accounts_own(served: Bankwx, sim: SimDriver) -> None:
    """The location answers' texts are account settings (text.KEY), like every follower text."""
    bankwx = served
    changed(bankwx("keyword", "add", "BRANCH", "--match", "click", "--action", "nearest_branch"))
    ok(bankwx("account", "set", "main", "text.location_ask", "请先发送您的位置。"))
    changed(bankwx("account", "set", "main", "text.branches_nearest", "附近网点："))
    openid = sim.pick_openid(APPID)
    click = ["sim", "send", "--event", "click", "--key", "BRANCH", "--format", "json"]
    assert (
        json.loads(ok(bankwx(*click, "--openid", openid)).stdout)["content"] == "请先发送您的位置。"
    )
    lat, lng = PEOPLES_SQUARE
    where = ["--location", f"{lat},{lng}", "--format", "json", "--openid", openid]
    got = json.loads(ok(bankwx("sim", "send", *where)).stdout)["content"]
    assert got == _nearest_text().replace("离您最近的网点：", "附近网点：")
