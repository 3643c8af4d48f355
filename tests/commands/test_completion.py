"""Shell completion of account names, operator names and broadcast ids, from the store that
--db (BANKWX_DB) names, as the acting operator may see them; silent and harmless when it cannot.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from bxtest import Bankwx, add_account_args

OPENIDS = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M\no6_bmjrPTlm6_2sgVt7hMZOPfL2N\n"


def complete(line: str, **env: str) -> tuple[list[str], str]:
    """What bash completion offers for the last word of line (through the real CLI)."""
    words = line.split(" ")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "bankwx")],  # the console script: prog name bankwx
        env={
            **os.environ,
            "_BANKWX_COMPLETE": "complete_bash",
            "COMP_WORDS": line,
            "COMP_CWORD": str(len(words) - 1),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split(), done.stderr


def _audit_rows(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM audit").fetchone()[0])
    finally:
        conn.close()


def test_names_and_ids(store_ready: Bankwx, tmp_path: Path) -> None:
    bankwx = store_ready
    assert bankwx(*add_account_args()).exit_code == 0
    cards = add_account_args("cards", mode="plain")
    cards[cards.index("--appid") + 1] = "wx1234567890abcd02"
    cards[cards.index("--original-id") + 1] = "gh_0123456789a2"
    assert bankwx(*cards).exit_code == 0
    assert bankwx("operator", "add", "bob", "--role", "approver").exit_code == 0
    assert (
        bankwx("operator", "add", "carol", "--role", "agent", "--accounts", "cards").exit_code == 0
    )
    (tmp_path / "ids.txt").write_text(OPENIDS, encoding="utf-8")
    for account in ("main", "cards", "main"):
        created = bankwx(
            "broadcast", "create", "--text", "通知", "--openids", str(tmp_path / "ids.txt"),
            "--account", account,
        )  # fmt: skip
        assert created.exit_code == 0, created.output

    assert complete("bankwx account show ") == (["cards", "main"], "")
    assert complete("bankwx account set m")[0] == ["main"]
    assert complete("bankwx keyword list --account c")[0] == ["cards"]
    assert complete("bankwx --account ")[0] == ["cards", "main"]
    assert complete("bankwx operator remove ")[0] == ["alice", "bob", "carol"]
    assert complete("bankwx audit --operator b")[0] == ["bob"]
    assert complete("bankwx broadcast show ")[0] == ["3", "2", "1"]  # newest first
    assert complete("bankwx broadcast approve --account main ")[0] == ["3", "1"]
    # as the acting operator sees them: carol is limited to cards, and cannot list operators
    as_carol = {"BANKWX_OPERATOR": "carol"}
    assert complete("bankwx account show ", **as_carol)[0] == ["cards"]
    assert complete("bankwx operator update ", **as_carol)[0] == []
    # --db names the store
    other = str(tmp_path / "other.db")
    assert complete(f"bankwx --db {other} account show ") == ([], "")


def test_silent_and_harmless(store_ready: Bankwx, tmp_path: Path) -> None:
    db = tmp_path / "bankwx.db"
    before = _audit_rows(db)
    # an operator not in the store: nothing completed, and no audited refusal
    assert complete("bankwx account show ", BANKWX_OPERATOR="nobody") == ([], "")
    assert _audit_rows(db) == before
    # no store: nothing completed, no file made
    missing = tmp_path / "missing" / "x.db"
    assert complete("bankwx account show ", BANKWX_DB=str(missing)) == ([], "")
    assert not missing.parent.exists()
    # not a store
    garbage = tmp_path / "notes.db"
    garbage.write_text("not SQLite\n", encoding="utf-8")
    assert complete("bankwx broadcast show ", BANKWX_DB=str(garbage)) == ([], "")
    assert garbage.read_text(encoding="utf-8") == "not SQLite\n"
