"""The registry's test-only area (BANKWX_TEST_ACTIONS=1) used by `bankwx serve` as a subprocess.

One worker and `--workers 2`: every entry point fills the registries the same way, so the
workers (which import nothing of the CLI) see the same actions, hooks, lookup and route.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from bxprocs import Proc, SimOptions, serve
from bxtest import APPID, Bankwx, add_account_args

from bankwx_cli.domain.trials import SECRET_REPLY
from bankwx_cli.sim.driver import SimDriver


@pytest.fixture
def sim_options() -> SimOptions:
    return SimOptions(followers=5)


def _log(bankwx: Bankwx) -> list[dict[str, Any]]:
    out = bankwx("messages", "list", "--format", "json", "--limit", "200").stdout
    return sorted(json.loads(out), key=lambda m: m["id"])


@pytest.mark.parametrize("workers", [1, 2])
def test_test_area_through_serve(
    store_ready: Bankwx,
    sim: SimDriver,
    receivers: list[Proc],
    monkeypatch: pytest.MonkeyPatch,
    db_path: Path,
    workers: int,
) -> None:
    monkeypatch.setenv("BANKWX_TEST_ACTIONS", "1")
    bankwx = store_ready
    assert bankwx(*add_account_args()).exit_code == 0
    rules = [
        ("回声", "exact", ["--action", "echo"]),  # the optional argument left out
        ("前缀回声", "exact", ["--action", "echo", "--arg", "前缀"]),
        ("LOC", "click", ["--action", "echo"]),
        ("秘密", "exact", ["--action", "trial_secret"]),
    ]
    for pattern, match, answer in rules:
        result = bankwx("keyword", "add", pattern, "--match", match, *answer)
        assert result.exit_code == 0, result.output
    # the rule validator sees the account: refused while it lacks the setting
    refused = bankwx("keyword", "add", "预览", "--match", "exact", "--action", "needs_preview")
    assert refused.exit_code == 1
    assert "needs the account 'main' to have preview openids" in refused.stderr
    preview = bankwx("account", "update", "main", "--preview-openids", "oPreview0000000000000001")
    assert preview.exit_code == 0, preview.output
    ok = bankwx("keyword", "add", "预览", "--match", "exact", "--action", "needs_preview")
    assert ok.exit_code == 0, ok.output

    proc = serve("--workers", str(workers))
    receivers.append(proc)
    registered = bankwx("sim", "register", "main", "--callback", f"{proc.url}/wx/main")
    assert registered.exit_code == 0, registered.output
    openid = sim.pick_openid(APPID)

    def send(**kw: Any) -> dict[str, Any]:
        return sim.send(APPID, openid, **kw)

    # an action with an optional argument, and what its context carries
    got = str(send(text="回声")["content"])
    assert got.startswith("arg=回声 type=text msgid=") and "left_ok=True" in got, got
    assert "location=none" in got and "preview_openids" in got and got.endswith("text=回声")
    assert str(send(text="前缀回声")["content"]).startswith("arg=前缀 type=text")
    located = str(send(event="location_select", key="LOC", lat=31.2, lng=121.5)["content"])
    assert "type=event" in located and "location=31.2,121.5" in located, located
    assert send(text="预览")["content"] == "预览粉丝1位"

    # a sensitive reply: sent, but its text is neither stored nor logged
    secret = send(text="秘密")
    assert secret["content"] == SECRET_REPLY, secret

    # two hooks on one event, in order: the first records, the second answers with it
    assert send(event="scan", key="trial-agent")["content"] == "第二个钩子看到：trial-agent"
    # the follower-state lookup takes messages: on the quick path and on the handler path
    assert send(text="随便说说")["content"] == "坐席（测试）已收到：随便说说"
    assert send(text="回声")["content"] == "坐席（测试）已收到：回声"
    send(event="scan", key="trial-queue")
    assert send(text="排队中")["status"] == "success"
    send(event="scan", key="trial-leave")  # the lookup finds nothing: routing goes on
    assert "已收到" in str(send(text="随便说说")["content"])  # the default reply

    # a route of the test area, with its error mapping
    with httpx.Client(timeout=10) as http:
        found = http.get(f"{proc.url}/trial/main")
        assert (found.status_code, found.json()["name"]) == (200, "main")
        missing = http.get(f"{proc.url}/trial/nobody")
        assert (missing.status_code, missing.text) == (404, "no such account")
        assert http.post(f"{proc.url}/trial/main").status_code == 405

    log = _log(bankwx)
    routes = [(m["direction"], m["route"], m["outcome"]) for m in log]
    assert ("in", "trial:agent", "forwarded") in routes
    assert ("in", "trial:agent", "queued") in routes
    assert ("in", "trial:scan", "replied") in routes
    secret_in = next(m for m in log if m["direction"] == "in" and m["content"] == "秘密")
    secret_out = next(m for m in log if m["in_reply_to"] == secret_in["id"])
    assert secret_out["content"] == "[sensitive reply]"
    assert secret_out["route"].endswith(":action:trial_secret")

    proc.stop()
    for path in (db_path, db_path.with_name(db_path.name + "-wal")):
        if path.exists():
            raw = path.read_bytes()
            assert SECRET_REPLY.encode() not in raw, path
            assert b"SENSITIVE-TRIAL-7f3a9c" not in raw, path


def test_test_area_is_off_without_the_variable(
    store_ready: Bankwx, sim: SimDriver, receivers: list[Proc]
) -> None:
    assert store_ready(*add_account_args()).exit_code == 0
    refused = store_ready("keyword", "add", "x", "--match", "exact", "--action", "echo")
    assert refused.exit_code == 1 and "no action named 'echo'" in refused.stderr
    proc = serve()
    receivers.append(proc)
    assert (
        store_ready("sim", "register", "main", "--callback", f"{proc.url}/wx/main").exit_code == 0
    )
    with httpx.Client(timeout=10) as http:
        assert http.get(f"{proc.url}/trial/main").status_code == 404
    openid = sim.pick_openid(APPID)
    # no scan hooks: a SCAN event is only recorded
    assert sim.send(APPID, openid, event="scan", key="trial-agent")["status"] == "success"
    time.sleep(0.05)
    assert "已收到" in str(sim.send(APPID, openid, text="你好")["content"])  # no lookup
