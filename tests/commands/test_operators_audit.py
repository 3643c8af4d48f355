"""Operators, roles, permissions, the audit chain, backup and check."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bxtest import Bankwx, add_account_args


def test_operator_lifecycle(store_ready: Bankwx) -> None:
    assert store_ready("org", "add", "总行").exit_code == 0
    assert store_ready("org", "add", "上海分行", "--parent", "总行").exit_code == 0
    orgs = json.loads(store_ready("org", "list", "--format", "json").stdout)
    assert {"name": "上海分行", "parent": "总行", "id": orgs[0]["id"]} in orgs
    assert store_ready(*add_account_args()).exit_code == 0
    result = store_ready(
        "operator", "add", "bob", "--role", "approver", "--org", "上海分行", "--accounts", "main"
    )
    assert result.exit_code == 0, result.output
    ops = {
        o["name"]: o for o in json.loads(store_ready("operator", "list", "--format", "json").stdout)
    }
    assert ops["bob"]["role"] == "approver" and ops["bob"]["accounts"] == ["main"]
    assert ops["bob"]["org"] == "上海分行"
    assert store_ready("operator", "update", "bob", "--role", "publisher").exit_code == 0
    assert store_ready("operator", "remove", "bob", "--yes").exit_code == 0
    names = [
        o["name"] for o in json.loads(store_ready("operator", "list", "--format", "json").stdout)
    ]
    assert names == ["alice"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["operator", "add", "bob", "--role", "agent", "--org", "x"], "no organisation named 'x'"),
        (
            ["operator", "add", "bob", "--role", "agent", "--accounts", "zz"],
            "no account named 'zz'",
        ),
        (["operator", "add", "alice", "--role", "agent"], "an operator named 'alice' exists"),
        (["operator", "update", "nobody", "--role", "agent"], "no operator named 'nobody'"),
        (["operator", "remove", "alice", "--yes"], "'alice' is the last administrator"),
        (["org", "add", "a", "--parent", "missing"], "no organisation named 'missing'"),
    ],
)
def test_operator_bad_input(store_ready: Bankwx, args: list[str], message: str) -> None:
    result = store_ready(*args)
    assert result.exit_code == 1, result.output
    assert message in result.stderr


def test_role_list_formats(store_ready: Bankwx) -> None:
    roles = json.loads(store_ready("role", "list", "--format", "json").stdout)
    assert [r["role"] for r in roles] == [
        "admin", "publisher", "approver", "agent", "supervisor", "auditor",
    ]  # fmt: skip
    assert store_ready("role", "list", "--format", "markdown").stdout.startswith("| role")


def test_unknown_operator_exit_4_and_audited(with_account: Bankwx) -> None:
    result = with_account("account", "remove", "main", "--yes", env={"BANKWX_OPERATOR": "mallory"})
    assert result.exit_code == 4
    assert result.stderr == (
        "Error: operator 'mallory' lacks permission 'account.remove'. You act as 'mallory' "
        "because BANKWX_OPERATOR says so, and 'mallory' is not an operator of this store: to act "
        "as another operator, set BANKWX_OPERATOR to its name (see bankwx operator list), or have "
        "an administrator run: bankwx operator add mallory --role ROLE.\n"
    )
    rows = json.loads(with_account("audit", "--operator", "mallory", "--format", "json").stdout)
    assert len(rows) == 1
    assert rows[0]["outcome"] == "denied" and rows[0]["action"] == "account.remove"
    assert {"at", "operator", "action", "target", "params", "outcome"} <= set(rows[0])


def test_refusal_reveals_nothing(with_account: Bankwx) -> None:
    """A forbidden request for a missing account gets the same answer as for a present one."""
    env = {"BANKWX_OPERATOR": "bob"}
    assert with_account("operator", "add", "bob", "--role", "agent").exit_code == 0
    a = with_account("account", "remove", "main", "--yes", env=env)
    b = with_account("account", "remove", "nope", "--yes", env=env)
    assert a.exit_code == b.exit_code == 4
    assert a.stderr == b.stderr


def test_account_limited_operator(with_account: Bankwx) -> None:
    assert with_account(*add_account_args("cards")).exit_code == 0
    assert (
        with_account("operator", "add", "pat", "--role", "admin", "--accounts", "cards").exit_code
        == 0
    )
    env = {"BANKWX_OPERATOR": "pat"}
    assert with_account("account", "update", "cards", "--welcome", "x", env=env).exit_code == 0
    assert with_account("account", "update", "main", "--welcome", "x", env=env).exit_code == 4


def test_auditor_reads_but_cannot_change(with_account: Bankwx) -> None:
    assert with_account("operator", "add", "aud", "--role", "auditor").exit_code == 0
    env = {"BANKWX_OPERATOR": "aud"}
    assert with_account("audit", "--format", "json", env=env).exit_code == 0
    assert with_account("account", "list", env=env).exit_code == 0
    assert with_account("account", "update", "main", "--welcome", "x", env=env).exit_code == 4
    env = {"BANKWX_OPERATOR": "pub"}
    assert with_account("operator", "add", "pub", "--role", "publisher").exit_code == 0
    assert with_account("audit", env=env).exit_code == 4


def test_audit_filters(with_account: Bankwx) -> None:
    with_account("account", "update", "main", "--welcome", "hi")
    rows = json.loads(with_account("audit", "--action", "account", "--format", "json").stdout)
    assert [r["action"] for r in rows] == ["account.update", "account.add"]  # newest first
    assert rows[1]["params"]["appid"] == "wx1234567890abcdef"
    assert (
        json.loads(with_account("audit", "--since", "2999-01-01", "--format", "json").stdout) == []
    )
    bad = with_account("audit", "--since", "yesterday")
    assert bad.exit_code == 1 and "is not an ISO 8601 time" in bad.stderr
    # a time without an offset is Asia/Shanghai: 8 hours ahead of UTC
    first = rows[0]["at"]
    assert first.endswith("Z")


def test_audit_params_have_no_secrets(with_account: Bankwx) -> None:
    with_account("account", "update", "main", "--secret", "f" * 32)
    rows = json.loads(with_account("audit", "--format", "json").stdout)
    update = [r for r in rows if r["action"] == "account.update"][0]
    assert update["params"] == {"secret": "****"}
    assert "f" * 32 not in json.dumps(rows)


def test_check_detects_edited_audit_row(with_account: Bankwx, db_path: Path) -> None:
    ok = with_account("check")
    assert ok.exit_code == 0, ok.output
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE audit SET operator = 'eve' WHERE id = 2")
    conn.commit()
    conn.close()
    result = with_account("check")
    assert result.exit_code == 1
    assert "audit row 2 was edited" in result.stderr


def test_check_detects_removed_rows(with_account: Bankwx, db_path: Path) -> None:
    with_account("account", "update", "main", "--welcome", "x")
    conn = sqlite3.connect(db_path)
    conn.execute("DELETE FROM audit WHERE id = 2")
    conn.commit()
    conn.close()
    result = with_account("check", "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert any("missing" in p for p in report["problems"])


def test_check_detects_removed_last_row(with_account: Bankwx, db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("DELETE FROM audit WHERE id = (SELECT max(id) FROM audit)")
    conn.commit()
    conn.close()
    result = with_account("check")
    assert result.exit_code == 1
    assert "newest rows were removed" in result.stderr


def test_store_newer_than_code(with_account: Bankwx, db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("INSERT INTO _migrations VALUES ('m9999_future', '2030-01-01')")
    conn.commit()
    conn.close()
    result = with_account("account", "list")
    assert result.exit_code == 1
    assert "is from a newer bankwx (schema 9999; this bankwx knows up to" in result.stderr


def test_not_a_store(bankwx: Bankwx, db_path: Path) -> None:
    db_path.write_bytes(b"this is not sqlite" * 100)
    result = bankwx("account", "list")
    assert result.exit_code == 1
    assert "is not a bankwx store" in result.stderr


def test_backup_refuses_existing_target(with_account: Bankwx, tmp_path: Path) -> None:
    target = tmp_path / "exists.db"
    target.write_text("x")
    result = with_account("backup", str(target))
    assert result.exit_code == 1
    assert result.stderr == f"Error: '{target}' already exists. Choose a new file name.\n"


WRITER = """
import sys, time
from pathlib import Path
from bankwx_cli.context import AppContext
from bankwx_cli.settings import from_environment
from bankwx_cli.domain import accounts
app = AppContext(from_environment())
deadline = time.time() + float(sys.argv[1])
i = 0
while time.time() < deadline:
    accounts.update(app, "main", welcome=f"welcome {i}")
    i += 1
print(i)
"""


def test_backup_while_another_process_writes(with_account: Bankwx, tmp_path: Path) -> None:
    import os

    env = {**os.environ}
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, "3"], env=env, stdout=subprocess.PIPE, text=True
    )
    time.sleep(0.8)
    copy = tmp_path / "copy.db"
    result = with_account("backup", str(copy))
    assert result.exit_code == 0, result.output
    out, _ = writer.communicate(timeout=30)
    assert int(out) > 5  # the writer really wrote meanwhile
    check = with_account("--db", str(copy), "check")
    assert check.exit_code == 0, check.output
