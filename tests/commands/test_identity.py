"""Operator identity: the login user and host in the audit log, `identity os`, the refusal
that says who acts, and `bankwx store set identity`."""

from __future__ import annotations

import getpass
import json
import os
import pwd
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from bxtest import Bankwx, add_account_args

# The login user as bankwx takes it: the effective uid's name, not $USER (which anyone can set);
# getpass.getuser() gives the same when $USER and $LOGNAME are unset or true.
ME = pwd.getpwuid(os.geteuid()).pw_name
HOST = socket.gethostname()


def as_json(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def audit(bx: Bankwx, *args: str) -> list[dict[str, Any]]:
    return list(as_json(bx("audit", "--format", "json", *args)))


@pytest.fixture
def os_store(bankwx: Bankwx) -> Bankwx:
    """A store made with `init --identity os`: alice, its administrator, is the login user;
    bob (approver) is another person's login user."""
    result = bankwx("init", "--identity", "os")
    assert result.exit_code == 0, result.output
    assert f"'alice' is the login user '{ME}'" in result.stderr
    assert bankwx(*add_account_args()).exit_code == 0
    added = bankwx("operator", "add", "bob", "--role", "approver", "--os-user", "bob-login")
    assert added.exit_code == 0, added.output
    return bankwx


def test_every_audit_entry_names_the_login_user_and_host(with_account: Bankwx) -> None:
    with_account("account", "update", "main", "--welcome", "hi")
    with_account("account", "remove", "main", "--yes", env={"BANKWX_OPERATOR": "mallory"})
    rows = audit(with_account)
    assert len(rows) == 4
    assert {(r["os_user"], r["host"]) for r in rows} == {(ME, HOST)}
    assert rows[0]["operator"] == "mallory"  # declared: the claimed name, beside the real user
    table = with_account("audit", "--format", "plain").stdout
    assert "os_user" in table.splitlines()[0] and HOST in table


def test_audit_is_newest_first_and_limit_keeps_the_newest(with_account: Bankwx) -> None:
    for text in ("one", "two", "three"):
        assert with_account("account", "update", "main", "--welcome", text).exit_code == 0
    ids = [r["id"] for r in audit(with_account)]
    assert ids == sorted(ids, reverse=True) and len(ids) == 5
    assert [r["id"] for r in audit(with_account, "--limit", "2")] == ids[:2]
    assert [r["id"] for r in audit(with_account, "--oldest-first")] == ids[::-1]
    assert [r["id"] for r in audit(with_account, "--oldest-first", "--limit", "2")] == [
        ids[-1],
        ids[-2],
    ]


def test_the_chain_covers_the_login_user_and_host(with_account: Bankwx, db_path: Path) -> None:
    assert with_account("check").exit_code == 0
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE audit SET os_user = 'someone-else' WHERE id = 2")
    conn.commit()
    conn.close()
    result = with_account("check")
    assert result.exit_code == 1
    assert "audit row 2 was edited" in result.stderr


def test_os_mode_acts_as_the_operator_mapped_to_the_login_user(
    os_store: Bankwx, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BANKWX_OPERATOR")  # no claim: the mapping decides
    assert os_store("account", "update", "main", "--welcome", "hi").exit_code == 0
    newest = audit(os_store)[0]
    assert (newest["operator"], newest["os_user"], newest["host"]) == ("alice", ME, HOST)
    ops = {o["name"]: o for o in as_json(os_store("operator", "list", "--format", "json"))}
    assert ops["alice"]["os_users"] == [ME]
    assert ops["bob"]["os_users"] == ["bob-login"]


def test_os_mode_refuses_a_claimed_operator_the_login_user_is_not_mapped_to(
    os_store: Bankwx,
) -> None:
    result = os_store("broadcast", "list", env={"BANKWX_OPERATOR": "bob"})
    assert result.exit_code == 4, result.output
    assert result.stderr == (
        "Error: operator 'bob' lacks permission 'broadcast.read'. BANKWX_OPERATOR names 'bob', "
        f"but this store requires real identity (identity os) and login user '{ME}' is not "
        f"mapped to 'bob'. Unset BANKWX_OPERATOR to act as 'alice', the operator mapped to "
        f"'{ME}'.\n"
    )
    refused = audit(os_store)[0]
    assert (refused["operator"], refused["os_user"], refused["outcome"]) == ("bob", ME, "denied")
    assert refused["params"]["reason"] == "login user not mapped to the operator"


def test_os_mode_refuses_an_unmapped_login_user(os_store: Bankwx, db_path: Path) -> None:
    """The administrator's login user is mapped elsewhere: this login user is nobody."""
    changed = os_store("operator", "update", "alice", "--os-user", "alice-login")
    assert changed.exit_code == 0, changed.output
    result = os_store("account", "list")
    assert result.exit_code == 4
    assert result.stderr == (
        "Error: operator 'alice' lacks permission 'account.read'. BANKWX_OPERATOR names 'alice', "
        f"but this store requires real identity (identity os) and login user '{ME}' is not "
        f"mapped to 'alice'. An administrator can map it: bankwx operator update alice "
        f"--os-user {ME}.\n"
    )
    checker = os_store("broadcast", "approve", "1", env={"BANKWX_OPERATOR": "bob"})
    assert checker.exit_code == 4
    assert "An administrator can map it: bankwx operator update bob --os-user" in checker.stderr
    conn = sqlite3.connect(db_path)  # nobody may read the audit log through bankwx now
    newest = conn.execute(
        "SELECT operator, action, os_user, host, outcome FROM audit ORDER BY id DESC LIMIT 1"
    ).fetchone()
    conn.close()
    assert newest == ("bob", "broadcast.approve", ME, HOST, "denied")
    unset = os_store("account", "list", env={"BANKWX_OPERATOR": ""})
    assert unset.exit_code == 4
    assert f"login user '{ME}' is not mapped to any operator" in unset.stderr
    assert f"bankwx operator update NAME --os-user {ME}" in unset.stderr


def test_one_login_user_acts_as_one_operator(os_store: Bankwx) -> None:
    result = os_store("operator", "add", "carol", "--role", "publisher", "--os-user", "bob-login")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: login user 'bob-login' acts as operator 'bob' already (one login user, one "
        "operator)."
    )
    names = [o["name"] for o in as_json(os_store("operator", "list", "--format", "json"))]
    assert "carol" not in names  # nothing half-written
    bad = os_store("operator", "add", "carol", "--role", "publisher", "--os-user", "-x")
    assert bad.exit_code == 1 and "login user '-x' is invalid" in bad.stderr
    both = os_store("operator", "update", "bob", "--os-user", "b2", "--no-os-users")
    assert both.exit_code == 1 and "not both" in both.stderr


def test_os_mode_keeps_an_administrator_with_a_login_user(os_store: Bankwx) -> None:
    result = os_store("operator", "update", "alice", "--no-os-users")
    assert result.exit_code == 1
    assert "would leave no administrator with a login user" in result.stderr
    ops = {o["name"]: o for o in as_json(os_store("operator", "list", "--format", "json"))}
    assert ops["alice"]["os_users"] == [ME]  # rolled back


def test_store_set_identity(with_account: Bankwx) -> None:
    assert with_account("operator", "add", "pub", "--role", "publisher").exit_code == 0
    denied = with_account("store", "set", "identity", "os", env={"BANKWX_OPERATOR": "pub"})
    assert denied.exit_code == 4
    unmapped = with_account("store", "set", "identity", "os")
    assert unmapped.exit_code == 1
    assert unmapped.stderr == (
        f"Error: login user '{ME}' is not mapped to operator 'alice': with identity os you "
        f"could no longer administer the store. Map it first: bankwx operator update alice "
        f"--os-user {ME}\n"
    )
    assert with_account("operator", "update", "alice", "--os-user", ME).exit_code == 0
    done = with_account("store", "set", "identity", "os")
    assert done.exit_code == 0, done.output
    assert done.stderr == "The store's identity is now 'os' (was 'declared').\n"
    newest = audit(with_account, "--action", "store.identity")[0]
    assert newest["params"] == {"from": "declared", "to": "os"}
    # now pub (no login user) is refused even for reading; alice still acts
    assert with_account("account", "list", env={"BANKWX_OPERATOR": "pub"}).exit_code == 4
    back = with_account("store", "set", "identity", "declared")
    assert back.exit_code == 0, back.output
    assert with_account("account", "list", env={"BANKWX_OPERATOR": "pub"}).exit_code == 0
    usage = with_account("store", "set", "identity", "nobody")
    assert usage.exit_code == 2


def test_the_login_user_is_told_what_to_do_after_init_with_another_admin(
    bankwx: Bankwx, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BANKWX_OPERATOR")
    me = getpass.getuser()  # identity declared: the login user's name as the session gives it
    assert bankwx("init", "--admin", "opsadmin").exit_code == 0
    result = bankwx("account", "list")
    assert result.exit_code == 4
    assert result.stderr == (
        f"Error: operator '{me}' lacks permission 'account.read'. You act as '{me}', the login "
        f"user (BANKWX_OPERATOR is unset), and '{me}' is not an operator of this store: to act "
        "as another operator, set BANKWX_OPERATOR to its name (see bankwx operator list), or "
        f"have an administrator run: bankwx operator add {me} --role ROLE.\n"
    )
    assert bankwx("account", "list", env={"BANKWX_OPERATOR": "opsadmin"}).exit_code == 0


def test_check_warns_about_declared_identity_but_passes(with_account: Bankwx) -> None:
    result = with_account("check", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert any("identity is 'declared'" in w for w in report["warnings"])
    text = with_account("check")
    assert "WARNING: identity is 'declared'" in text.stderr


def test_check_does_not_warn_in_os_mode(os_store: Bankwx) -> None:
    report = as_json(os_store("check", "--format", "json"))
    assert report["ok"] is True
    assert report["warnings"] == []


def test_init_rejects_an_unknown_identity(bankwx: Bankwx, db_path: Path) -> None:
    result = bankwx("init", "--identity", "sometimes")
    assert result.exit_code == 2
    assert not db_path.exists()


def test_os_mode_refusal_names_the_mapping(os_store: Bankwx) -> None:
    """A mapped operator that lacks the permission is told how it was chosen."""
    other = os_store("operator", "add", "root2", "--role", "admin", "--os-user", "root2-login")
    assert other.exit_code == 0, other.output
    assert os_store("operator", "update", "alice", "--accounts", "main").exit_code == 0
    result = os_store(*add_account_args("cards"))
    assert result.exit_code == 4
    assert result.stderr.endswith(
        f"You act as 'alice', the operator mapped to login user '{ME}' (identity os); to act as "
        "another operator, log in as a user mapped to it.\n"
    )
