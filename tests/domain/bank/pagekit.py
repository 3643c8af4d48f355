"""Driving the binding page as a follower's WeChat browser would (httpx with a cookie jar),
for the page's tests: a module of its own, as bankkit.py."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx

CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def browser() -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=15, follow_redirects=False)


def browse_url(sim_url: str, openid: str, url: str) -> str:
    return f"{sim_url}/sim/followers/{quote(openid, safe='')}/browse?url={quote(url, safe='')}"


def open_in_wechat(client: httpx.Client, sim_url: str, openid: str, url: str) -> httpx.Response:
    """Open the page as the follower in WeChat, following every redirect: the card form."""
    return client.get(browse_url(sim_url, openid, url), follow_redirects=True)


def authorised(client: httpx.Client, sim_url: str, openid: str, url: str) -> str:
    """Make this browser the follower's, open the page without a code, follow the redirect to
    WeChat's authorisation, and return the page's address with the code and state it sends
    back (not opened yet)."""
    client.get(browse_url(sim_url, openid, "http://127.0.0.1/"))  # sets the WeChat cookie
    first = client.get(url)
    assert first.status_code == 302, first.text
    auth = client.get(first.headers["location"].split("#", 1)[0])
    assert auth.status_code == 302, auth.text
    back = auth.headers["location"]
    assert back.startswith(url), back
    return back


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def csrf(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text
    return found.group(1)


def latest_code(control: httpx.Client, phone: str) -> str:
    sent: list[dict[str, Any]] = control.get("/sandbox/otp").json()
    mine = [o for o in sent if o["phone"] == phone]
    assert mine, sent
    return str(mine[-1]["code"])


def debit_card(customer: dict[str, Any]) -> str:
    return str(next(c for c in customer["cards"] if c["type"] == "debit")["number"])
