"""`bankwx init` and `bankwx account ...`: formats, bad input, secrets never shown."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from bxtest import AES_KEY, SECRET, TOKEN, Bankwx, add_account_args


def test_init_creates_store_and_admin(bankwx: Bankwx, db_path: Path) -> None:
    result = bankwx("init")
    assert result.exit_code == 0, result.output
    assert db_path.exists()
    ops = json.loads(bankwx("operator", "list", "--format", "json").stdout)
    assert ops == [
        {
            "name": "alice",
            "role": "admin",
            "org": None,
            "accounts": "all",
            "created_at": ops[0]["created_at"],
            "updated_at": ops[0]["updated_at"],
            "os_users": [],
        }
    ]


def test_init_twice_refuses(store_ready: Bankwx, db_path: Path) -> None:
    result = store_ready("init")
    assert result.exit_code == 1
    assert result.stderr == f"Error: a store exists at {db_path}. Nothing was changed.\n"


def test_init_creates_key_file_0600(
    bankwx: Bankwx, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BANKWX_MASTER_KEY")
    result = bankwx("init", "--admin", "ops")
    assert result.exit_code == 0, result.output
    key_file = tmp_path / "master.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert json.loads(bankwx("--operator", "ops", "role", "list", "--format", "json").stdout)


def test_missing_store(bankwx: Bankwx, db_path: Path) -> None:
    result = bankwx("account", "list")
    assert result.exit_code == 1
    assert result.stderr == f"Error: no store at {db_path}. Run bankwx init.\n"


def test_account_add_list_show_formats(with_account: Bankwx) -> None:
    rows = json.loads(with_account("account", "list", "--format", "json").stdout)
    assert [r["name"] for r in rows] == ["main"]
    assert rows[0]["mode"] == "safe" and rows[0]["appid"] == "wx1234567890abcdef"
    one = json.loads(with_account("account", "show", "main", "--format", "json").stdout)
    assert one["original_id"] == "gh_0123456789ab"
    # the account may be left out when the store holds one
    assert json.loads(with_account("account", "show", "--format", "json").stdout) == one
    # --format before the group works too
    assert json.loads(with_account("--format", "json", "account", "list").stdout) == rows
    out = with_account("account", "list", "--format", "csv").stdout
    parsed = list(csv.DictReader(io.StringIO(out)))
    assert parsed[0]["name"] == "main"
    md = with_account("account", "list", "--format", "markdown").stdout
    assert md.startswith("| name") and "| main" in md
    plain = with_account("account", "list", "--format", "plain").stdout
    assert plain.split("\n")[0].split() == [
        "name", "appid", "original_id", "type", "mode", "token_mode", "updated_at",
    ]  # fmt: skip
    table = with_account("account", "list", "--format", "table").stdout
    assert "main" in table


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown", "plain"])
def test_no_secret_in_any_output(with_account: Bankwx, fmt: str) -> None:
    for args in (["account", "list"], ["account", "show", "main"], ["audit"]):
        result = with_account(*args, "--format", fmt)
        for secret in (SECRET, AES_KEY):
            assert secret not in result.output


def test_secrets_not_in_store_files(with_account: Bankwx, tmp_path: Path) -> None:
    with_account("account", "update", "main", "--welcome", "欢迎")
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert SECRET.encode() not in data, path
            assert AES_KEY.encode() not in data, path


def test_secret_and_aes_key_from_stdin(store_ready: Bankwx) -> None:
    args = add_account_args()
    args[args.index("--secret") + 1] = "-"
    args[args.index("--aes-key") + 1] = "-"
    result = store_ready(*args, input=f"{SECRET}\n{AES_KEY}\n")
    assert result.exit_code == 0, result.output


def test_plain_mode_warns(store_ready: Bankwx) -> None:
    result = store_ready(*add_account_args("plainacct", mode="plain"))
    assert result.exit_code == 0
    assert "Warning: plain mode" in result.stderr


BAD_FIELDS = [
    ("--appid", "nope", "appid 'nope' is invalid"),
    ("--appid", "wx1234567890ABCDEF", "appid 'wx1234567890ABCDEF' is invalid"),
    ("--secret", "short", "the AppSecret is invalid"),
    ("--token", "ab", "the callback token is invalid"),
    ("--token", "has space", "the callback token is invalid"),
    ("--aes-key", "k", "the EncodingAESKey is invalid"),
    ("--original-id", "gh_xyz", "original id 'gh_xyz' is invalid"),
]  # --type and --mode are choices: tests/commands/test_bad_input.py


@pytest.mark.parametrize(("option", "value", "message"), BAD_FIELDS)
def test_account_add_bad_field(store_ready: Bankwx, option: str, value: str, message: str) -> None:
    args = add_account_args()
    if option in args:
        args[args.index(option) + 1] = value
    else:
        args += [option, value]
    result = store_ready(*args)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: " + message)
    assert "Traceback" not in result.output
    assert json.loads(store_ready("account", "list", "--format", "json").stdout) == []


def test_bad_account_name(store_ready: Bankwx) -> None:
    args = add_account_args()
    args[2] = "Main_Account"
    result = store_ready(*args)
    assert result.exit_code == 1
    assert "account name 'Main_Account' is invalid" in result.stderr


def test_safe_mode_needs_aes_key(store_ready: Bankwx) -> None:
    args = add_account_args(mode="plain") + ["--mode", "safe"]
    result = store_ready(*args)
    assert result.exit_code == 1
    assert result.stderr == "Error: --mode safe needs --aes-key (the account's EncodingAESKey).\n"


def test_duplicate_account(with_account: Bankwx) -> None:
    result = with_account(*add_account_args())
    assert result.exit_code == 1
    assert result.stderr == "Error: an account named 'main' exists. See bankwx account list.\n"


def _names(bankwx: Bankwx) -> list[str]:
    return [a["name"] for a in json.loads(bankwx("account", "list", "--format", "json").stdout)]


@pytest.mark.parametrize(
    ("option", "taken"),
    [("--appid", "appid 'wx1234567890abcdef'"), ("--original-id", "original id 'gh_0123456789ab'")],
)
def test_an_official_account_already_in_the_store_is_refused(
    with_account: Bankwx, option: str, taken: str
) -> None:
    args = add_account_args("cards")  # an appid and an original id of its own
    args[args.index(option) + 1] = add_account_args("main")[args.index(option) + 1]
    result = with_account(*args)
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        f"Error: account 'main' already has {taken}: an official account is added once. "
        "See bankwx account show main.\n"
    )
    assert _names(with_account) == ["main"]
    audit = json.loads(with_account("audit", "--format", "json").stdout)
    assert [e["action"] for e in audit].count("account.add") == 1


def test_an_update_to_another_accounts_appid_is_refused(with_account: Bankwx) -> None:
    assert with_account(*add_account_args("cards")).exit_code == 0
    before = json.loads(with_account("account", "show", "cards", "--format", "json").stdout)
    result = with_account("account", "update", "cards", "--appid", "wx1234567890abcdef")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: account 'main' already has appid 'wx1234567890abcdef'")
    after = json.loads(with_account("account", "show", "cards", "--format", "json").stdout)
    assert after == before
    same = with_account("account", "update", "main", "--appid", "wx1234567890abcdef")
    assert same.exit_code == 0, same.output  # its own appid again: no conflict


def test_update_and_remove(with_account: Bankwx) -> None:
    result = with_account(
        "account", "update", "main", "--welcome", "欢迎关注", "--default-reply", "您好"
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(with_account("account", "show", "main", "--format", "json").stdout)
    assert shown["welcome"] == "欢迎关注" and shown["default_reply"] == "您好"
    assert with_account("account", "update", "main").exit_code == 1
    removed = with_account("account", "remove", "main", "--yes")
    assert removed.exit_code == 0, removed.output
    assert json.loads(with_account("account", "list", "--format", "json").stdout) == []


def test_remove_unknown_account(store_ready: Bankwx) -> None:
    result = store_ready("account", "remove", "nope", "--yes")
    assert result.exit_code == 1, result.output
    assert result.stderr == "Error: no account named 'nope'. See bankwx account list.\n"


def test_remove_without_yes_off_terminal(with_account: Bankwx) -> None:
    result = with_account("account", "remove", "main")
    assert result.exit_code == 1
    assert "--yes" in result.stderr
    assert len(json.loads(with_account("account", "list", "--format", "json").stdout)) == 1


def test_remove_prompt_answered(with_account: Bankwx) -> None:
    env = {"BANKWX_INTERACTIVE": "1"}
    result = with_account("account", "remove", "main", input="n\n", env=env)
    assert result.exit_code == 1
    result = with_account("account", "remove", "main", input="y\n", env=env)
    assert result.exit_code == 0, result.output


def test_several_accounts_need_account_option(with_account: Bankwx) -> None:
    args = add_account_args("cards")
    assert with_account(*args).exit_code == 0
    result = with_account("account", "show")
    assert result.exit_code == 1
    assert "choose one with --account" in result.stderr
    shown = with_account("account", "show", "--account", "cards", "--format", "json")
    assert json.loads(shown.stdout)["name"] == "cards"


def test_wrong_master_key(with_account: Bankwx) -> None:
    import base64

    other = base64.urlsafe_b64encode(b"x" * 32).decode()
    result = with_account(
        "account", "update", "main", "--token", TOKEN + "x", env={"BANKWX_MASTER_KEY": other}
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: wrong master key for the store")


def test_malformed_master_key(store_ready: Bankwx) -> None:
    result = store_ready(*add_account_args(), env={"BANKWX_MASTER_KEY": "not-a-key"})
    assert result.exit_code == 1
    assert "is not URL-safe base64 of 32 bytes" in result.stderr


def test_key_file_readable_by_others(
    bankwx: Bankwx, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BANKWX_MASTER_KEY")
    assert bankwx("init").exit_code == 0
    key_file = tmp_path / "master.key"
    key_file.chmod(0o644)
    result = bankwx(*add_account_args())
    assert result.exit_code == 1
    assert result.stderr.endswith(f"Run: chmod 600 {key_file}\n")


def test_version(bankwx: Bankwx) -> None:
    from bankwx_cli import __version__

    result = bankwx("--version")
    assert result.exit_code == 0
    assert result.stdout == f"bankwx {__version__}\n"


def test_usage_error_exit_2(bankwx: Bankwx) -> None:
    result = bankwx("account", "list", "--bogus")
    assert result.exit_code == 2


def test_token_and_check_keep_their_json_shapes(account: Bankwx) -> None:
    none = json.loads(account("account", "token", "--format", "json").stdout)
    assert none == {"account": "main", "token": "none stored", "age_s": None, "expires_in_s": None}
    checked = account("account", "check", "--format", "json")
    assert checked.exit_code == 0, checked.output
    shown = json.loads(checked.stdout)
    assert list(shown) == [
        "account", "appid", "credentials", "token_mode", "token_age_s", "token_expires_in_s",
        "callback_ips", "callback_ip_sample",
    ]  # fmt: skip
    assert (shown["credentials"], shown["token_mode"]) == ("ok", "stable")
    assert len(shown["callback_ip_sample"]) == min(3, shown["callback_ips"])
    token = json.loads(account("account", "token", "--format", "json").stdout)
    assert list(token) == ["account", "token", "token_mode", "age_s", "expires_in_s"]
    assert (token["token"], token["token_mode"]) == ("valid", "stable")
    assert token["expires_in_s"] > 0
