"""The WeChat client's network failures: the URL and the cause named, briefly retried, never
"WeChat is busy"; a malformed API base refused at once, naming the option and its variable."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from bxtest import Bankwx

from bankwx_cli.errors import ValidationError, WeChatUnreachableError
from bankwx_cli.settings import Settings
from bankwx_cli.wechat.client import UNREACHABLE_BUDGET_S, WeChatClient
from bankwx_cli.wechat.token import CachedToken


class _NoTokens:
    """A token store holding nothing (the client must fetch)."""

    def load(self, appid: str) -> CachedToken | None:
        return None

    def save(self, appid: str, token: CachedToken) -> None:
        pass

    def discard(self, appid: str, token: str) -> None:
        pass

    def acquire(self, appid: str, holder: str, ttl: float, now: float) -> bool:
        return True

    def release(self, appid: str, holder: str) -> None:
        pass


def _dead_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_refused_connection_names_the_url_and_ends_quickly() -> None:
    base = f"http://127.0.0.1:{_dead_port()}"
    client = WeChatClient("wx1234567890abcdef", "s" * 32, base_url=base, tokens=_NoTokens())
    started = time.monotonic()
    with pytest.raises(WeChatUnreachableError) as failed:
        client.token()
    elapsed = time.monotonic() - started
    assert elapsed < UNREACHABLE_BUDGET_S + 3  # retried briefly, not for the 30 s budget
    assert str(failed.value).startswith(f"cannot reach WeChat at {base} (connection refused)")
    assert "busy" not in str(failed.value)
    assert failed.value.exit_code == 1


@pytest.mark.parametrize(
    "base", ["not-a-url", "http://", "ftp://127.0.0.1", "http://127.0.0.1:99999", "http://a b"]
)
def test_malformed_api_base_is_refused_by_settings(base: str) -> None:
    with pytest.raises(ValidationError, match=r"--api-base \(BANKWX_API_BASE\) .* not a valid URL"):
        Settings(api_base=base)


def test_malformed_api_base_is_refused_at_once(with_account: Bankwx) -> None:
    started = time.monotonic()
    result = with_account("account", "check", env={"BANKWX_API_BASE": "not-a-url"})
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: --api-base (BANKWX_API_BASE) 'not-a-url' is not")
    assert time.monotonic() - started < 2


def test_refused_connection_from_the_command_line(with_account: Bankwx) -> None:
    base = f"http://127.0.0.1:{_dead_port()}"
    started = time.monotonic()
    result = with_account("account", "check", env={"BANKWX_API_BASE": base, "BANKWX_DEBUG": ""})
    assert time.monotonic() - started < 10
    assert result.exit_code == 1, result.output
    assert f"Error: cannot reach WeChat at {base} (connection refused)" in result.stderr


def test_each_call_is_logged_with_v_and_timed_with_vv(
    with_account: Bankwx, sim: object, tmp_path: Path
) -> None:
    plain = {"BANKWX_DEBUG": ""}  # the tests' --debug would show debug lines
    once = with_account("-v", "account", "check", env=plain)
    assert once.exit_code == 0, once.output
    calls = [line for line in once.stderr.splitlines() if " wechat call " in line]
    assert any("endpoint=/cgi-bin/getcallbackip outcome=ok" in line for line in calls), calls
    assert all(" INFO bankwx_cli.wechat.calls: " in line for line in calls)
    assert not any("ms=" in line for line in calls)
    twice = with_account("-vv", "account", "check", env=plain)
    calls = [line for line in twice.stderr.splitlines() if " wechat call " in line]
    assert calls and all(" DEBUG " in line and " ms=" in line for line in calls)
    assert "finished command=account ms=" in twice.stderr
    assert "sql_statements=" in twice.stderr and "wechat_calls=" in twice.stderr
    quiet = with_account("account", "check", env=plain)
    assert " wechat call " not in quiet.stderr


def test_log_format_json_for_a_command(with_account: Bankwx, sim: object) -> None:
    """Every log line a command writes is one JSON object with time, level and logger; the
    variable works as the flag does."""
    for args, env in (
        (("--log-format", "json", "-vv"), {"BANKWX_DEBUG": ""}),
        (("-vv",), {"BANKWX_DEBUG": "", "BANKWX_LOG_FORMAT": "json"}),
    ):
        result = with_account(*args, "account", "check", env=env)
        assert result.exit_code == 0, result.output
        lines = [json.loads(line) for line in result.stderr.splitlines()]
        assert lines
        for line in lines:
            assert {"time", "level", "logger", "message"} <= set(line)
            assert "worker" not in line  # only bankwx serve names its workers
        call = next(line for line in lines if line["logger"] == "bankwx_cli.wechat.calls")
        assert call["outcome"] == "ok" and isinstance(call["ms"], float)
        assert lines[-1]["message"].startswith("finished command=account")
    bad = with_account("--log-format", "xml", "account", "list")
    assert bad.exit_code == 2
