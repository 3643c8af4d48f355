"""The simulator's web authorisation (protocol sheet §5.2): the follower's WeChat browser,
the authorise page (10003 for a foreign domain, outside WeChat), and the code exchange (single
use: 40163; 5 minutes on the simulator's clock: 40029)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from bxtest import APPID, SECRET
from simkit import Sim

from bankwx_cli.errors import ValidationError

REDIRECT = "https://bank.example.com/bind/main"


def _authorize(
    sim: Sim, client: httpx.Client, redirect: str = REDIRECT, **extra: str
) -> httpx.Response:
    params = {"appid": APPID, "redirect_uri": redirect, "response_type": "code",
              "scope": "snsapi_base", "state": "abc123", **extra}  # fmt: skip
    return client.get(f"{sim.url}/connect/oauth2/authorize", params=params)


@contextmanager
def _browser(sim: Sim, openid: str) -> Iterator[httpx.Client]:
    """The follower's simulated WeChat browser."""
    with httpx.Client(trust_env=False, timeout=10) as client:
        page = quote("http://127.0.0.1/", safe="")
        went = client.get(f"{sim.url}/sim/followers/{openid}/browse?url={page}")
        assert went.status_code == 302 and went.headers["location"] == "http://127.0.0.1/"
        assert "wxsim_openid" in went.headers["set-cookie"]
        yield client


def _exchange(sim: Sim, code: str, appid: str = APPID, secret: str = SECRET) -> dict[str, object]:
    params = {"appid": appid, "secret": secret, "code": code, "grant_type": "authorization_code"}
    answer: dict[str, object] = sim.http.get("/sns/oauth2/access_token", params=params).json()
    return answer


def test_authorise_then_exchange_once(sim: Sim) -> None:
    sim.register(oauth_domain="bank.example.com")
    openid = sim.openid()
    with _browser(sim, openid) as client:
        went = _authorize(sim, client, REDIRECT + "?x=1")
        assert went.status_code == 302, went.text
        target = urlsplit(went.headers["location"])
        assert f"{target.scheme}://{target.netloc}{target.path}" == REDIRECT
        query = {k: v[0] for k, v in parse_qs(target.query).items()}
        assert query["x"] == "1" and query["state"] == "abc123"
    got = _exchange(sim, query["code"])
    assert got["openid"] == openid and got["scope"] == "snsapi_base", got
    assert got["expires_in"] == 7200 and got["access_token"] and got["refresh_token"]
    again = _exchange(sim, query["code"])
    assert again["errcode"] == 40163, again
    assert _exchange(sim, "nosuchcode")["errcode"] == 40029
    assert _exchange(sim, query["code"], secret="f" * 32)["errcode"] == 40125


def test_codes_expire_after_five_minutes_on_the_simulators_clock(sim: Sim) -> None:
    sim.register(oauth_domain="bank.example.com")
    with _browser(sim, sim.openid()) as client:
        first = parse_qs(urlsplit(_authorize(sim, client).headers["location"]).query)
        second = parse_qs(urlsplit(_authorize(sim, client).headers["location"]).query)
    sim.driver.advance_clock(299)
    assert "openid" in _exchange(sim, first["code"][0])
    sim.driver.advance_clock(2)
    assert _exchange(sim, second["code"][0])["errcode"] == 40029


def test_a_foreign_domain_gets_10003_and_outside_wechat_no_code(sim: Sim) -> None:
    sim.register(oauth_domain="bank.example.com")
    with _browser(sim, sim.openid()) as client:
        for redirect in ("https://evil.example.com/bind/main", "https://bank.example.com.evil/"):
            page = _authorize(sim, client, redirect)
            assert page.status_code == 200 and "10003" in page.text, page.text
            assert "location" not in page.headers
        # the port does not count
        assert _authorize(sim, client, "https://bank.example.com:8443/bind/main").status_code == 302
        bad = _authorize(sim, client, state="not-alnum!")
        assert bad.status_code == 200 and "location" not in bad.headers
        assert "location" not in _authorize(sim, client, scope="snsapi_other").headers
    with httpx.Client(trust_env=False) as outside:
        page = _authorize(sim, outside)
        assert page.status_code == 200 and "请在微信客户端打开链接" in page.text
    sim.register(oauth_domain=None)  # none configured: every domain is foreign
    with _browser(sim, sim.openid()) as client:
        assert "10003" in _authorize(sim, client).text


def test_oauth_domain_is_checked_when_registered(sim: Sim) -> None:
    for bad in ("https://bank.example.com", "bank.example.com:443", "a/b", 7):
        with pytest.raises(ValidationError, match="oauth_domain"):
            sim.register(oauth_domain=bad)
    assert sim.register(oauth_domain="bank.example.com")["oauth_domain"] == "bank.example.com"
