"""WeChat's error envelope and the codes for bad credentials, tokens, bodies and paths."""

from __future__ import annotations

import re

import pytest
from bxtest import APPID, SECRET
from simkit import Sim

RID = re.compile(r" rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$")
GRANT = "client_credential"


def token_call(sim: Sim, **params: str) -> dict[str, object]:
    response = sim.http.get("/cgi-bin/token", params=params)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, object] = response.json()
    return body


def test_without_registered_accounts_any_well_formed_credentials_work(sim: Sim) -> None:
    body = token_call(sim, grant_type=GRANT, appid="wxabcdefabcdefabcd", secret="s" * 32)
    assert "access_token" in body
    assert sim.driver.state()["accounts"] == 1
    assert len(sim.driver.followers("wxabcdefabcdefabcd", limit=1000)) == 20


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"grant_type": GRANT, "secret": SECRET}, 41002),
        ({"grant_type": GRANT, "appid": APPID}, 41004),
        ({"grant_type": "password", "appid": APPID, "secret": SECRET}, 40002),
        ({"appid": APPID, "secret": SECRET}, 40002),
        ({"grant_type": GRANT, "appid": "wx123", "secret": SECRET}, 40013),
        ({"grant_type": GRANT, "appid": APPID, "secret": "short"}, 40125),
    ],
    ids=["no-appid", "no-secret", "bad-grant", "no-grant", "bad-appid", "short-secret"],
)
def test_token_request_errors_without_registration(
    sim: Sim, params: dict[str, str], code: int
) -> None:
    body = token_call(sim, **params)
    assert body["errcode"] == code
    assert RID.search(str(body["errmsg"]))


def test_registered_accounts_refuse_unknown_appid_and_wrong_secret(sim: Sim) -> None:
    sim.register()
    unknown = token_call(sim, grant_type=GRANT, appid="wxffffffffffffffff", secret=SECRET)
    assert unknown["errcode"] == 40013
    assert str(unknown["errmsg"]).startswith("invalid appid rid: ")
    wrong = token_call(sim, grant_type=GRANT, appid=APPID, secret="f" * 32)
    assert wrong["errcode"] == 40125
    assert "access_token" in token_call(sim, grant_type=GRANT, appid=APPID, secret=SECRET)


def test_ip_allowlist(sim: Sim) -> None:
    sim.register(ip_allowlist=["10.1.2.3"])
    body = token_call(sim, grant_type=GRANT, appid=APPID, secret=SECRET)
    assert body["errcode"] == 40164
    assert str(body["errmsg"]).startswith("invalid ip 127.0.0.1 ipv6 ::ffff:127.0.0.1")
    sim.register(ip_allowlist=["127.0.0.1"])
    assert "access_token" in token_call(sim, grant_type=GRANT, appid=APPID, secret=SECRET)


@pytest.mark.parametrize(
    ("token", "code"),
    [(None, 41001), ("", 41001), ("bad token!", 40014), ("A" * 40, 40001)],
    ids=["missing", "empty", "malformed", "unknown"],
)
def test_access_token_errors(sim: Sim, token: str | None, code: int) -> None:
    body = sim.api("GET", "/cgi-bin/getcallbackip", token)
    assert body["errcode"] == code
    assert RID.search(body["errmsg"])


def test_success_answers_carry_data(sim: Sim) -> None:
    token = sim.token()
    body = sim.api("GET", "/cgi-bin/getcallbackip", token)
    assert body["ip_list"]
    assert "errcode" not in body
    assert sim.api("GET", "/cgi-bin/get_api_domain_ip", token)["ip_list"]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{not json", 47001),
        (b"[1, 2]", 47001),
        (b"\xff\xfe", 47001),
        (b"", 44002),
        (b'{"touser": "x", "text": {"content": "\\u4e2d\\u6587"}}', 47002),
    ],
    ids=["malformed", "not-object", "not-utf8", "empty", "unicode-escapes"],
)
def test_body_errors(sim: Sim, raw: bytes, code: int) -> None:
    token = sim.token()
    body = sim.api("POST", "/cgi-bin/message/custom/send", token, content=raw)
    assert body["errcode"] == code


def test_raw_utf8_is_accepted_where_escapes_are_not(sim: Sim) -> None:
    token = sim.token()
    raw = '{"touser": "o", "msgtype": "text", "text": {"content": "中文 \\\\u4e2d"}}'.encode()
    body = sim.api("POST", "/cgi-bin/message/custom/send", token, content=raw)
    assert body["errcode"] == 40003  # got past the body checks to the openid


def test_unknown_endpoint_and_wrong_method(sim: Sim) -> None:
    token = sim.token()
    unknown = sim.api("GET", "/cgi-bin/no/such/api", token)
    assert unknown["errcode"] == 40066
    assert unknown["errmsg"].startswith("invalid url rid: ")
    wrong = sim.api("GET", "/cgi-bin/message/custom/send", token)
    assert wrong["errcode"] == 43002
    wrong_get = sim.api("POST", "/cgi-bin/getcallbackip", token)
    assert wrong_get["errcode"] == 43001


def test_api_calls_are_logged_without_the_token(sim: Sim) -> None:
    token = sim.token()
    sim.api("POST", "/cgi-bin/message/custom/send", token, json={"touser": "x"})
    entries = sim.driver.log(kind="api", path="/cgi-bin/message/custom/send")
    assert len(entries) == 1
    entry = entries[0]
    assert entry["appid"] == APPID
    assert entry["body"] == {"touser": "x"}
    assert entry["errcode"] == 40003
    assert entry["status"] == 200
    assert "access_token" not in entry["query"]


def test_control_endpoint_errors(sim: Sim) -> None:
    assert sim.http.get("/sim/nothing").status_code == 404
    assert sim.http.get("/sim/reset").status_code == 405
    bad = sim.http.post("/sim/accounts", json={"appid": "nope", "secret": "x"})
    assert bad.status_code == 400
    assert "appid" in bad.json()["error"]
    safe_without_key = sim.http.post(
        "/sim/accounts", json={"appid": APPID, "secret": SECRET, "mode": "safe"}
    )
    assert safe_without_key.status_code == 400
    assert sim.http.post("/sim/faults", json={"fail_rate": 2}).status_code == 400
    assert sim.http.post("/sim/faults", json={"nonsense": 1}).status_code == 400
    assert sim.http.post("/sim/clock", json={"advance": -5}).status_code == 400


def test_register_and_list_accounts(sim: Sim) -> None:
    record = sim.register(callback_url="http://127.0.0.1:9/wx/main")
    assert record["appid"] == APPID
    assert record["mode"] == "safe"
    assert sim.driver.accounts() == [record]
    plain = sim.register(appid="wx00000000000000aa", mode="plaintext", aes_key=None)
    assert plain["mode"] == "plain"
    assert plain["original_id"].startswith("gh_")
    assert len(sim.driver.accounts()) == 2
