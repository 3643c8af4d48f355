"""``run()`` in a real process, the accounts file, and the driver's refusals."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from bxtest import APPID, SECRET
from simkit import Receiver, Sim

from bankwx_cli.errors import BankwxError, NotFoundError, ValidationError
from bankwx_cli.sim.driver import SimDriver, require_local
from bankwx_cli.sim.server import bind_socket, build_state, load_accounts

ACCOUNTS_YAML = f"""\
- name: main
  appid: {APPID}
  secret: {SECRET}
  token: tok123
  aes_key: abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG
  mode: safe
  original_id: gh_0123456789ab
  callback_url: http://127.0.0.1:8080/wx/main
"""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    accounts = tmp_path / "accounts.yaml"
    accounts.write_text(ACCOUNTS_YAML, encoding="utf-8")
    code = (
        "from bankwx_cli.sim.server import run; "
        f"run(host='127.0.0.1', port=0, followers=5, seed=3, accounts_file={str(accounts)!r})"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline(), process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_run_prints_where_it_listens_and_serves(served: tuple[str, subprocess.Popen[str]]) -> None:
    line, process = served
    match = re.fullmatch(r"Listening on (http://127\.0\.0\.1:(\d+))\n", line)
    assert match, line
    assert int(match.group(2)) > 0
    with SimDriver(match.group(1)) as driver:
        state = driver.state()
        assert state["accounts"] == 1
        assert state["followers"] == 5
        assert driver.accounts()[0]["mode"] == "safe"
        assert len(driver.pick_openid(APPID)) == 28
    process.send_signal(signal.SIGINT)
    assert process.wait(10) == 0


def test_followers_are_deterministic_from_the_seed() -> None:
    def openids(seed: int) -> list[str]:
        state = build_state(followers=50, seed=seed)
        return [f.openid for f in state.follower_table(APPID).values()]

    first = openids(1)
    assert first == openids(1)
    assert first != openids(2)
    assert len(set(first)) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{28}", o) for o in first)
    followers = build_state(followers=50, seed=1).follower_table(APPID).values()
    times = [f.subscribe_time for f in followers]
    assert times == sorted(times)
    assert {f.subscribe_scene for f in followers} <= {
        "ADD_SCENE_SEARCH",
        "ADD_SCENE_ACCOUNT_MIGRATION",
        "ADD_SCENE_PROFILE_CARD",
        "ADD_SCENE_QR_CODE",
        "ADD_SCENE_PROFILE_LINK",
        "ADD_SCENE_PROFILE_ITEM",
        "ADD_SCENE_PAID",
        "ADD_SCENE_WECHAT_ADVERTISEMENT",
        "ADD_SCENE_REPRINT",
        "ADD_SCENE_LIVESTREAM",
        "ADD_SCENE_CHANNELS",
        "ADD_SCENE_OTHERS",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- appid: nope\n  secret: x\n", "record 1: appid 'nope'"),
        ("{not: [yaml", "is not YAML or JSON"),
        ("just text", "must hold a list"),
        (f'[{{"appid": "{APPID}", "secret": "s", "colour": "red"}}]', "unknown account field"),
    ],
)
def test_bad_accounts_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValidationError, match=message):
        load_accounts(path)


def test_accounts_file_accepts_json_and_a_wrapper(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    path.write_text(f'{{"accounts": [{{"appid": "{APPID}", "secret": "{SECRET}"}}]}}')
    (account,) = load_accounts(path)
    assert account.mode == "plain"
    with pytest.raises(ValidationError, match="cannot read"):
        load_accounts(tmp_path / "missing.yaml")


def test_bad_run_values_are_refused() -> None:
    with pytest.raises(ValidationError, match="fail rate"):
        build_state(fail_rate=1.5)
    with pytest.raises(ValidationError, match="followers"):
        build_state(followers=-1)


def test_a_busy_port_is_reported() -> None:
    taken = bind_socket("127.0.0.1", 0)
    try:
        with pytest.raises(BankwxError, match=r"cannot listen on 127\.0\.0\.1"):
            bind_socket("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


# -- driver -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1:8081",
        "http://192.168.1.20:8081",
        "http://example.com:8081",
        "http://0.0.0.0:8081",
        "http://[2001:db8::1]:8081",
        "ftp://127.0.0.1:8081",
        "127.0.0.1:8081",
    ],
)
def test_driver_refuses_addresses_off_this_machine(url: str) -> None:
    with pytest.raises(ValidationError, match="simulator URL"):
        SimDriver(url)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8081", "http://127.8.9.10:1", "http://localhost:8081/", "http://[::1]:8081"],
)
def test_driver_accepts_loopback(url: str) -> None:
    assert require_local(url) == url.rstrip("/")


def test_driver_says_how_to_start_a_missing_simulator() -> None:
    with socket.socket() as idle:  # bound, never listening: connections are refused
        idle.bind(("127.0.0.1", 0))
        port = idle.getsockname()[1]
        with SimDriver(f"http://127.0.0.1:{port}") as driver, pytest.raises(BankwxError) as caught:
            driver.state()
    assert str(caught.value) == (
        f"no simulator at http://127.0.0.1:{port}. Start it with bankwx sim api."
    )
    with (
        SimDriver(f"http://127.0.0.1:{port}", source="--sim/BANKWX_SIM") as driver,
        pytest.raises(BankwxError) as caught,
    ):
        driver.state()
    assert str(caught.value) == (
        f"no simulator at http://127.0.0.1:{port} (--sim/BANKWX_SIM). Start it with "
        "bankwx sim api or point --sim (BANKWX_SIM) at it."
    )


def test_driver_end_to_end(sim: Sim, receiver: Receiver, receiver_url: str) -> None:
    driver = sim.driver
    record = driver.register_account(
        name="main",
        appid=APPID,
        secret=SECRET,
        token="tok123",
        aes_key=None,
        mode="plain",
        callback_url=receiver_url,
    )
    assert record["original_id"].startswith("gh_")
    openid = driver.pick_openid(APPID)
    assert openid == driver.followers(APPID, limit=1)[0]["openid"]
    assert len(driver.followers(APPID, limit=5, offset=18)) == 2
    result = driver.send(APPID, openid, text="你好")
    assert result["status"] == "success"
    assert driver.log(kind="callback")[0]["openid"] == openid
    assert len(driver.log(limit=1)) == 1
    assert driver.delivered() == []
    before = driver.state()["now"]
    assert driver.advance_clock(3600)["now"] >= before + 3600
    assert driver.set_faults(latency_ms=1)["latency_ms"] == 1
    assert driver.reset() == {"reset": "runtime"}
    with pytest.raises(ValidationError, match="the simulator refused: no account"):
        driver.followers("wxffffffffffffffff")
    driver.reset(everything=True)
    driver.register_account(appid=APPID, secret=SECRET)
    driver.reset()
    sim.state.followers[APPID].clear()
    with pytest.raises(NotFoundError, match="no followers"):
        driver.pick_openid(APPID)


def test_driver_reports_http_errors(sim: Sim) -> None:
    with pytest.raises(ValidationError, match="appid"):
        sim.driver.register_account(appid="nope", secret="x")
