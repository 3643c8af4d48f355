"""An operator limited to some accounts cannot widen their reach: not through operator or org
changes, not by reading another account's details, not by a prompt before the permission check.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from bxtest import Bankwx, add_account_args

A, B = "retail", "cards"
CAROL = {"BANKWX_OPERATOR": "carol"}


@pytest.fixture
def bx(store_ready: Bankwx) -> Bankwx:
    assert store_ready(*add_account_args(A)).exit_code == 0
    assert store_ready(*add_account_args(B)).exit_code == 0
    made = store_ready("operator", "add", "carol", "--role", "admin", "--accounts", A)
    assert made.exit_code == 0, made.output
    return store_ready


def _denied(bx: Bankwx, action: str) -> list[dict[str, Any]]:
    entries = json.loads(
        bx("audit", "--operator", "carol", "--format", "json", "--oldest-first").stdout
    )
    return [e for e in entries if e["outcome"] == "denied" and e["action"] == action]


def _carol(bx: Bankwx) -> dict[str, Any]:
    listed = json.loads(bx("operator", "list", "--format", "json").stdout)
    found: dict[str, Any] = next(o for o in listed if o["name"] == "carol")
    return found


@pytest.mark.parametrize(
    ("args", "permission"),
    [
        (("operator", "update", "carol", "--all-accounts"), "operator.update"),
        (("operator", "add", "eve", "--role", "admin"), "operator.add"),
        (("operator", "remove", "alice", "--yes"), "operator.remove"),
        (("org", "add", "branch-9"), "org.add"),
    ],
)
def test_a_limited_admin_cannot_change_who_may_do_what(
    bx: Bankwx, args: tuple[str, ...], permission: str
) -> None:
    before = json.loads(bx("operator", "list", "--format", "json").stdout)
    result = bx(*args, env=CAROL)
    assert result.exit_code == 4, result.output
    assert "only an operator with every account" in result.stderr
    assert json.loads(bx("operator", "list", "--format", "json").stdout) == before
    assert _carol(bx)["accounts"] != "all"
    assert len(_denied(bx, permission)) == 1


def test_account_show_and_list_stop_at_the_operators_accounts(bx: Bankwx) -> None:
    shown = bx("account", "show", B, "--format", "json", env=CAROL)
    assert shown.exit_code == 4, shown.output
    assert B not in shown.stdout
    assert len(_denied(bx, "account.read")) == 1
    own = bx("account", "show", A, "--format", "json", env=CAROL)
    assert own.exit_code == 0, own.output
    listed = json.loads(bx("account", "list", "--format", "json", env=CAROL).stdout)
    assert [a["name"] for a in listed] == [A]
    assert len(json.loads(bx("account", "list", "--format", "json").stdout)) == 2


def test_keyword_remove_checks_the_row_before_asking(bx: Bankwx) -> None:
    added = bx(
        "keyword", "add", "余额", "--match", "exact", "--reply-text", "x", "--account", B,
        "--format", "json",
    )  # fmt: skip
    rule = str(json.loads(added.stdout)["id"])
    refused = bx("keyword", "remove", rule, env=CAROL)  # no --yes: refused, never asked
    assert refused.exit_code == 4, refused.output
    assert len(_denied(bx, "keyword.write")) == 1
    # the global --account names where the rule must be: another account's rule is not found
    missing = bx("--account", A, "keyword", "remove", rule, "--yes")
    assert missing.exit_code == 1, missing.output
    assert "no keyword rule" in missing.stderr
    assert bx("keyword", "remove", rule, "--yes").exit_code == 0
