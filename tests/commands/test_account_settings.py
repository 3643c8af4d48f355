"""`bankwx account set|unset|settings`: the typed registry of per-account settings."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bxprocs import Proc, SimOptions, serve
from bxtest import APPID, Bankwx, add_account_args
from hypothesis import given
from hypothesis import strategies as st

from bankwx_cli.domain import account_settings
from bankwx_cli.errors import ValidationError
from bankwx_cli.sim.driver import SimDriver

CONTRACT_FIELDS = {"key", "value", "default", "type", "area", "help"}


def _settings(bankwx: Bankwx, name: str = "main", env: dict[str, str] | None = None) -> Any:
    result = bankwx("account", "settings", name, "--format", "json", env=env)
    assert result.exit_code == 0, result.output
    return {row["key"]: row for row in json.loads(result.stdout)}


def test_settings_json_has_the_contract_shape(with_account: Bankwx) -> None:
    result = with_account("account", "settings", "main", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert isinstance(rows, list) and rows
    assert all(set(row) >= CONTRACT_FIELDS for row in rows)
    by_key = {row["key"]: row for row in rows}
    for key in ("welcome", "default_reply", "retention_days", "mode", "preview_openids"):
        assert key in by_key
    for key in ("require_approval", "rates", "text.help", "text.transfer_agent"):
        assert key in by_key
    assert by_key["retention_days"] == {
        "key": "retention_days",
        "value": 180,
        "default": 180,
        "set": False,
        "type": "int",
        "area": "messages",
        "help": by_key["retention_days"]["help"],
        "accepts": "a whole number of days from 1 to 3650",
    }
    assert by_key["welcome"]["value"] == by_key["welcome"]["default"]
    assert by_key["mode"]["value"] == "safe"
    assert "test.service_only" not in by_key  # test-only, hidden without BANKWX_TEST_ACTIONS


@pytest.mark.parametrize("fmt", ["table", "csv", "markdown", "plain"])
def test_settings_in_every_format(with_account: Bankwx, fmt: str) -> None:
    assert with_account("account", "set", "main", "retention_days", "45").exit_code == 0
    result = with_account("account", "settings", "main", "--format", fmt)
    assert result.exit_code == 0, result.output
    assert "retention_days" in result.stdout and "45" in result.stdout
    assert "welcome" in result.stdout
    if fmt == "csv":
        assert result.stdout.splitlines()[0] == "key,value,set,type,area,help"


def test_settings_of_the_only_account_without_a_name(with_account: Bankwx) -> None:
    result = with_account("account", "settings", "--format", "json")
    assert result.exit_code == 0, result.output
    assert any(row["key"] == "welcome" for row in json.loads(result.stdout))


def test_set_and_unset_round_trip_and_are_audited(with_account: Bankwx) -> None:
    result = with_account("account", "set", "main", "retention_days", "30")
    assert result.exit_code == 0, result.output
    assert result.stderr == "Set retention_days of 'main' to 30.\n"
    row = _settings(with_account)["retention_days"]
    assert (row["value"], row["set"]) == (30, True)
    again = with_account("account", "set", "main", "retention_days", "30")
    assert again.exit_code == 0
    assert "nothing changed" in again.stderr
    result = with_account("account", "unset", "main", "retention_days")
    assert result.exit_code == 0, result.output
    assert result.stderr == "Unset retention_days of 'main': it is the default, 180.\n"
    row = _settings(with_account)["retention_days"]
    assert (row["value"], row["set"]) == (180, False)
    shown = json.loads(with_account("account", "show", "main", "--format", "json").stdout)
    assert "retention_days" not in shown["settings"]
    audit = json.loads(
        with_account("audit", "--action", "account", "--format", "json", "--oldest-first").stdout
    )
    changes = [(r["action"], r["target"], r["params"]) for r in audit[1:]]
    assert changes == [
        ("account.set", "main", {"key": "retention_days", "value": 30}),
        ("account.unset", "main", {"key": "retention_days"}),
    ]


def test_set_and_unset_json_output(with_account: Bankwx) -> None:
    result = with_account("account", "set", "main", "welcome", "欢迎", "--format", "json")
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert (row["key"], row["value"], row["set"], row["area"]) == (
        "welcome",
        "欢迎",
        True,
        "engine",
    )
    result = with_account("account", "unset", "main", "welcome", "--format", "json")
    row = json.loads(result.stdout)
    assert (row["value"], row["set"]) == (row["default"], False)
    shown = json.loads(with_account("account", "show", "main", "--format", "json").stdout)
    assert shown["welcome"] is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("preview_openids", "oTest1,oTest2"),
        ("preview_openids", '["oTest1"]'),
        ("require_approval", "menus"),
        ("rates", '{"message/template/send": 200}'),
        ("text.help", "可用服务：余额查询"),
        ("mode", "compatible"),
        ("default_reply", "您好"),
    ],
)
def test_set_each_type(with_account: Bankwx, key: str, value: str) -> None:
    result = with_account("account", "set", "main", key, value, "--format", "json")
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert row["set"] is True
    assert row == _settings(with_account)[key]
    assert with_account("account", "unset", "main", key).exit_code == 0
    after = _settings(with_account)[key]
    assert after["value"] == after["default"]


def test_values_are_stored_where_readers_find_them(with_account: Bankwx) -> None:
    with_account("account", "set", "main", "rates", '{"message/template/send": 200}')
    with_account("account", "set", "main", "text.help", "帮助文字")
    with_account("account", "set", "main", "default_reply", "默认")
    shown = json.loads(with_account("account", "show", "main", "--format", "json").stdout)
    assert shown["settings"]["rates"] == {"/cgi-bin/message/template/send": 200}
    assert shown["settings"]["texts"] == {"help": "帮助文字"}
    assert shown["default_reply"] == "默认"
    with_account("account", "unset", "main", "text.help")
    shown = json.loads(with_account("account", "show", "main", "--format", "json").stdout)
    assert "texts" not in shown["settings"]


def test_unknown_key(with_account: Bankwx) -> None:
    for args in (["set", "main", "no_such_key", "1"], ["unset", "main", "no_such_key"]):
        result = with_account("account", *args)
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("Error: no account setting named 'no_such_key'. ")
        assert "Known settings: welcome, default_reply" in result.stderr
        assert "Traceback" not in result.output


BAD_VALUES = [
    ("retention_days", "abc", "not a whole number"),
    ("retention_days", "0", "out of range"),
    ("retention_days", "3651", "out of range"),
    ("retention_days", "1.5", "not a whole number"),
    ("welcome", "", "empty; use bankwx account unset to go back to the default"),
    ("welcome", "长" * 700, "2100 bytes"),  # shown cut short
    ("mode", "secret", "not one of the choices"),
    ("preview_openids", "ok1,not an openid", "'not an openid' is not an openid"),
    ("preview_openids", "[1, 2]", "not a JSON array of strings"),
    ("require_approval", "menus,everything", "'everything' is not an area"),
    ("rates", "message/template/send=200", "not JSON"),
    ("rates", '{"message/template/send": 0}', "'message/template/send'"),
    ("rates", "[1]", "not a JSON object"),
    ("text.help", "   ", "empty; use bankwx account unset to go back to the default"),
]


@pytest.mark.parametrize(("key", "value", "why"), BAD_VALUES)
def test_invalid_value(with_account: Bankwx, key: str, value: str, why: str) -> None:
    result = with_account("account", "set", "main", key, value)
    assert result.exit_code == 1, result.output
    accepts = account_settings.registered()[key].accepts
    assert result.stderr.startswith(f"Error: setting '{key}' does not accept ")
    assert f"({why}): it takes {accepts}." in result.stderr.replace("\n", "")
    assert "Traceback" not in result.output
    assert _settings(with_account)[key]["set"] is (key == "mode")  # mode is a column


def test_unknown_account(store_ready: Bankwx) -> None:
    for args in (
        ["set", "nope", "welcome", "x"],
        ["unset", "nope", "welcome"],
        ["settings", "nope"],
    ):
        result = store_ready("account", *args)
        assert result.exit_code == 1, result.output
        assert result.stderr == "Error: no account named 'nope'. See bankwx account list.\n"


def test_operator_limited_to_another_account(with_account: Bankwx) -> None:
    assert with_account(*add_account_args("cards")).exit_code == 0
    added = with_account("operator", "add", "pat", "--role", "admin", "--accounts", "cards")
    assert added.exit_code == 0, added.output
    env = {"BANKWX_OPERATOR": "pat"}
    assert with_account("account", "set", "cards", "welcome", "x", env=env).exit_code == 0
    refused = with_account("account", "set", "main", "welcome", "x", env=env)
    assert refused.exit_code == 4, refused.output
    assert with_account("account", "unset", "main", "welcome", env=env).exit_code == 4
    assert with_account("account", "settings", "main", env=env).exit_code == 4
    assert _settings(with_account)["welcome"]["set"] is False
    audit = json.loads(with_account("audit", "--format", "json", "--oldest-first").stdout)
    denied = [(r["action"], r["target"]) for r in audit if r["outcome"] == "denied"]
    assert denied == [("account.update", "main"), ("account.update", "main"),
                      ("account.read", "main")]  # fmt: skip


def test_auditor_reads_settings_but_cannot_set(with_account: Bankwx) -> None:
    assert with_account("operator", "add", "aud", "--role", "auditor").exit_code == 0
    env = {"BANKWX_OPERATOR": "aud"}
    assert "welcome" in _settings(with_account, env=env)
    assert with_account("account", "set", "main", "retention_days", "9", env=env).exit_code == 4
    assert with_account("account", "unset", "main", "retention_days", env=env).exit_code == 4


def test_update_flags_are_aliases(with_account: Bankwx) -> None:
    result = with_account(
        "account", "update", "main", "--welcome", "欢迎光临", "--default-reply", "收到",
        "--preview-openids", "oA, oB", "--require-approval", "menus",
        "--rate", "message/template/send=300",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    shown = _settings(with_account)
    assert shown["welcome"]["value"] == "欢迎光临"
    assert shown["default_reply"]["value"] == "收到"
    assert shown["preview_openids"]["value"] == ["oA", "oB"]
    assert shown["require_approval"]["value"] == ["menus"]
    assert shown["rates"]["value"] == {"/cgi-bin/message/template/send": 300}
    # --rate adds; --welcome '' goes back to the default; --require-approval none empties
    result = with_account(
        "account", "update", "main", "--rate", "mass/send=5", "--welcome", "",
        "--require-approval", "none",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    shown = _settings(with_account)
    assert shown["rates"]["value"] == {
        "/cgi-bin/message/template/send": 300,
        "/cgi-bin/mass/send": 5,
    }
    assert (shown["welcome"]["value"], shown["welcome"]["set"]) == (
        shown["welcome"]["default"],
        False,
    )
    assert shown["require_approval"]["value"] == []
    # the aliases are checked by the registry
    bad = with_account("account", "update", "main", "--preview-openids", "bad id")
    assert bad.exit_code == 1
    assert bad.stderr.startswith("Error: setting 'preview_openids' does not accept 'bad id'")
    bad = with_account("account", "set", "main", "mode", "secret")
    assert bad.exit_code == 1
    assert bad.stderr.startswith("Error: setting 'mode' does not accept 'secret'")
    # --mode is a choice: anything else is a usage error (exit 2), as for every choice
    bad = with_account("account", "update", "main", "--mode", "secret")
    assert bad.exit_code == 2
    assert "Invalid value for '--mode'" in bad.stderr


def test_mode_needs_the_aes_key_and_warns_for_plain(store_ready: Bankwx) -> None:
    assert store_ready(*add_account_args(mode="plain")).exit_code == 0
    result = store_ready("account", "set", "main", "mode", "safe")
    assert result.exit_code == 1
    assert "mode safe needs the account's EncodingAESKey" in result.stderr
    assert store_ready("account", "unset", "main", "mode").exit_code == 1  # the default is safe
    assert store_ready(*add_account_args("cards")).exit_code == 0
    result = store_ready("account", "set", "cards", "mode", "plain")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("Warning: plain mode")
    result = store_ready("account", "unset", "cards", "mode")
    assert result.exit_code == 0, result.output
    assert _settings(store_ready, "cards")["mode"]["value"] == "safe"


def test_a_setting_the_account_type_cannot_use(store_ready: Bankwx) -> None:
    env = {"BANKWX_TEST_ACTIONS": "1"}
    args = add_account_args("news")
    assert store_ready(*args, "--type", "subscription").exit_code == 0
    assert store_ready(*add_account_args("main")).exit_code == 0
    refused = store_ready("account", "set", "news", "test.service_only", "true", env=env)
    assert refused.exit_code == 1
    assert refused.stderr == (
        "Error: setting 'test.service_only' (test) is for service accounts; 'news' is a "
        "subscription account.\n"
    )
    assert "test.service_only" not in _settings(store_ready, "news", env=env)
    assert "test.service_only" in _settings(store_ready, "main", env=env)
    assert store_ready("account", "set", "main", "test.service_only", "yes", env=env).exit_code == 0
    changed = store_ready("account", "update", "main", "--type", "subscription", env=env)
    assert changed.exit_code == 1
    assert "has setting 'test.service_only', which is for service accounts" in changed.stderr
    assert store_ready("account", "unset", "main", "test.service_only", env=env).exit_code == 0
    changed = store_ready("account", "update", "main", "--type", "subscription", env=env)
    assert changed.exit_code == 0, changed.output
    unknown = store_ready("account", "set", "main", "test.service_only", "true")
    assert unknown.exit_code == 1 and "no account setting named" in unknown.stderr


def test_text_settings_reach_the_help_action(with_account: Bankwx) -> None:
    added = with_account("keyword", "add", "帮助", "--match", "exact", "--action", "help")
    assert added.exit_code == 0, added.output
    assert with_account("account", "set", "main", "text.help", "自定义帮助").exit_code == 0
    result = with_account("keyword", "test", "帮助", "--format", "json")
    assert json.loads(result.stdout)["reply"]["content"] == "自定义帮助"
    default = with_account("keyword", "test", "别的", "--format", "json")
    assert json.loads(default.stdout)["reply"]["content"].startswith("您好，我们已收到")
    with_account("account", "set", "main", "default_reply", "默认已改")
    default = with_account("keyword", "test", "别的", "--format", "json")
    assert json.loads(default.stdout)["reply"]["content"] == "默认已改"


def test_retention_days_drives_the_purge(with_account: Bankwx) -> None:
    assert with_account("account", "set", "main", "retention_days", "30").exit_code == 0
    assert with_account("messages", "purge", "--yes").exit_code == 0
    audit = json.loads(
        with_account("audit", "--action", "messages", "--format", "json", "--oldest-first").stdout
    )
    before = datetime.fromisoformat(audit[-1]["params"]["before"].replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - timedelta(days=30) - before) < timedelta(minutes=5)


# --- a running receiver sees a change -------------------------------------------------------


@pytest.fixture
def sim_options() -> SimOptions:
    return SimOptions(followers=5)


@pytest.fixture
def receiver(with_account: Bankwx, sim: SimDriver) -> Iterator[Proc]:
    proc = serve()
    try:
        registered = with_account("sim", "register", "main", "--callback", f"{proc.url}/wx/main")
        assert registered.exit_code == 0, registered.output
        yield proc
    finally:
        proc.stop()


def test_a_running_receiver_sees_a_change_within_2_s(
    with_account: Bankwx, sim: SimDriver, receiver: Proc
) -> None:
    openid = sim.pick_openid(APPID)
    first = sim.send(APPID, openid, event="subscribe")
    assert str(first["content"]).startswith("欢迎关注！")  # the default
    assert with_account("account", "set", "main", "welcome", "欢迎光临示例银行").exit_code == 0
    changed_at = time.monotonic()
    seen = None
    while seen is None and time.monotonic() - changed_at < 2.0:
        got = sim.send(APPID, openid, event="subscribe")
        if got["content"] == "欢迎光临示例银行":
            seen = time.monotonic() - changed_at
        else:
            time.sleep(0.1)
    assert seen is not None, "the receiver still answers the old welcome after 2 s"
    assert with_account("account", "unset", "main", "welcome").exit_code == 0
    time.sleep(1.5)
    back = sim.send(APPID, openid, event="subscribe")
    assert str(back["content"]).startswith("欢迎关注！")


# --- parsers and validators -------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)


@given(st.integers(min_value=-(10**17), max_value=10**17))
def test_int_round_trip(value: int) -> None:
    assert account_settings.parse_raw("int", account_settings.format_raw("int", value)) == value


@given(st.booleans(), st.sampled_from(sorted(account_settings.TRUE | account_settings.FALSE)))
def test_bool_round_trip_and_spellings(value: bool, word: str) -> None:
    assert account_settings.parse_raw("bool", account_settings.format_raw("bool", value)) is value
    parsed = account_settings.parse_raw("bool", f" {word.upper()} ")
    assert parsed is (word in account_settings.TRUE)


@given(st.text())
def test_str_is_kept_as_given(value: str) -> None:
    assert account_settings.parse_raw("str", account_settings.format_raw("str", value)) == value


@given(st.lists(st.text()))
def test_list_round_trip(items: list[str]) -> None:
    assert account_settings.parse_raw("list", account_settings.format_raw("list", items)) == items


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters=",[")), max_size=6))
def test_list_comma_separated(items: list[str]) -> None:
    parsed = account_settings.parse_raw("list", ",".join(items))
    assert parsed == [i.strip() for i in items if i.strip()]


@given(JSON)
def test_json_round_trip(value: Any) -> None:
    assert account_settings.parse_raw("json", account_settings.format_raw("json", value)) == value


@given(st.sampled_from(sorted(account_settings.registered())), st.text())
def test_any_text_is_a_value_or_a_validation_error(key: str, raw: str) -> None:
    setting = account_settings.registered()[key]
    try:
        value = account_settings.convert(setting, raw)
    except ValidationError as exc:
        message = str(exc)
        value = None
    else:
        message = ""
    if message:
        assert f"setting '{key}'" in message and setting.accepts in message
        return
    # what is accepted is stable: converting the stored value again gives it back
    again = account_settings.convert(setting, account_settings.format_raw(setting.type, value))
    assert again == value


@given(st.integers())
def test_retention_days_accepts_exactly_1_to_3650(days: int) -> None:
    setting = account_settings.registered()["retention_days"]
    try:
        assert account_settings.convert(setting, str(days)) == days
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted is (1 <= days <= 3650)
