"""`bankwx sim ...` as an operator meets it: impossible ports and hosts refused as usage errors,
the simulator found through --sim/BANKWX_SIM or a loopback API base and named in every error,
a receiver that is down reported as such, replies printed as replies."""

from __future__ import annotations

import json
import socket

import pytest
from bxprocs import Sim
from bxtest import Bankwx, add_account_args

from bankwx_cli.models.wechat import FollowerReply


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize(
    "args",
    [
        ["--port", "99999"],
        ["--port", "-1"],
        ["--port", "65536"],
        ["--host", "0.0.0.0", "--port", "0"],  # noqa: S104 - refused, never bound
        ["--host", "10.1.2.3", "--port", "0"],
        ["--host", "example.com", "--port", "0"],
        ["--fail-rate", "1.5"],
        ["--latency", "-1"],
        ["--followers", "-3"],
        ["--callback-timeout", "0"],
    ],
)
def test_sim_api_refuses_impossible_values(bankwx: Bankwx, args: list[str]) -> None:
    result = bankwx("sim", "api", *args)
    assert result.exit_code == 2, result.output
    assert "Invalid value for" in result.stderr


def test_register_finds_the_simulator_at_the_api_base(
    store_ready: Bankwx, sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only BANKWX_API_BASE points at the simulator (a loopback address): register uses it."""
    monkeypatch.delenv("BANKWX_SIM")
    assert store_ready(*add_account_args()).exit_code == 0
    result = store_ready("sim", "register", "main")
    assert result.exit_code == 0, result.output
    assert [a["appid"] for a in sim.accounts()] == ["wx1234567890abcdef"]


def test_errors_name_where_the_simulator_address_came_from(
    store_ready: Bankwx, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert store_ready(*add_account_args()).exit_code == 0
    dead = f"http://127.0.0.1:{_dead_port()}"
    result = store_ready("sim", "register", "main", env={"BANKWX_SIM": dead})
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: no simulator at {dead} (--sim/BANKWX_SIM). Start it with bankwx sim api or "
        "point --sim (BANKWX_SIM) at it.\n"
    )
    far = store_ready("sim", "register", "main", "--sim", "http://10.0.0.1:8081")
    assert far.exit_code == 1
    assert "(--sim/BANKWX_SIM) is not on this machine" in far.stderr


def test_send_to_a_receiver_that_is_down_says_it_cannot_connect(
    store_ready: Bankwx, sim: Sim
) -> None:
    assert store_ready(*add_account_args()).exit_code == 0
    callback = f"http://127.0.0.1:{_dead_port()}/wx/main"
    assert store_ready("sim", "register", "main", "--callback", callback).exit_code == 0
    result = store_ready("sim", "send", "你好", "--format", "plain")
    assert result.exit_code == 1
    assert (
        f"cannot connect to the callback URL {callback} (connection refused) on 3 deliveries"
        in result.stderr
    )
    shown = store_ready("sim", "send", "你好", "--format", "json")
    assert json.loads(shown.stdout)["deliveries"] == 3  # the JSON shape as before


@pytest.mark.parametrize(
    ("result", "text"),
    [
        ({"msg_type": "text", "content": "你好"}, "你好"),
        (
            {"msg_type": "transfer_customer_service", "content": {"kf_account": None}},
            "[transferred to customer service]",
        ),
        (
            {"msg_type": "transfer_customer_service", "content": {"kf_account": "a1@bank"}},
            "[transferred to customer service: a1@bank]",
        ),
        (
            {
                "msg_type": "news",
                "content": {
                    "articles": [{"title": "利率", "description": "今日", "url": "https://x"}]
                },
            },
            "[news] 利率: 今日 <https://x>",
        ),
        ({"msg_type": "image", "content": {"media_id": "M1"}}, "[image] media_id=M1"),
    ],
)
def test_replies_print_as_the_follower_sees_them(result: dict[str, object], text: str) -> None:
    reply = FollowerReply.from_sim({"status": "replied", "deliveries": 1, **result})
    assert reply.text() == text
    assert "{" not in reply.text()
    assert reply.to_json() == {"status": "replied", "deliveries": 1, **result}
