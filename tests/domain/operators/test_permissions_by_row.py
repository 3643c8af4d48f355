"""Permissions by the row: an operator limited to account A acting by id on a row of account B.

Every command that takes an id, run by carol (role admin, ``--accounts retail``) on a row of
``cards``, with and without ``--account``, exits 4, changes nothing (read back by alice, the
unlimited administrator) and leaves a denied audit entry of carol's that names ``cards``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bxprocs import SimOptions, SimPool
from bxtest import Bankwx, add_account_args

from bankwx_cli.context import AppContext
from bankwx_cli.settings import from_environment

A, B = "retail", "cards"
CAROL = {"BANKWX_OPERATOR": "carol"}
BOB = {"BANKWX_OPERATOR": "bob"}
MENU = {"button": [{"type": "click", "name": "账户查询", "key": "BALANCE"}]}
OPENID = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"


@dataclass
class World:
    bankwx: Bankwx
    rows: dict[str, int]  # what -> id (a broadcast per state, a rule, a unit, a menu version)


def _json(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def world(
    store_ready: Bankwx, sim_pool: SimPool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[World]:
    with sim_pool.use(SimOptions(followers=3, seed=11), monkeypatch):
        bx = store_ready
        assert bx(*add_account_args(A)).exit_code == 0
        assert bx(*add_account_args(B, simulated=True)).exit_code == 0
        assert bx("operator", "add", "bob", "--role", "approver").exit_code == 0
        ok = bx("operator", "add", "carol", "--role", "admin", "--accounts", A)
        assert ok.exit_code == 0, ok.output
        assert bx("follower", "sync", "--account", B).exit_code == 0
        rows: dict[str, int] = {}

        def broadcast(text: str, *steps: str, content: tuple[str, ...] = ()) -> int:
            made = bx(
                "broadcast", "create", *(content or ("--text", text)), "--to-all",
                "--account", B, "--format", "json",
            )  # fmt: skip
            bid = int(_json(made)["id"])
            if "submit" in steps:
                assert bx("broadcast", "submit", str(bid), "--account", B).exit_code == 0
            if "approve" in steps:
                done = bx("broadcast", "approve", str(bid), "--account", B, env=BOB)
                assert done.exit_code == 0, done.output
            return bid

        rows["draft"] = broadcast("cards draft")
        rows["submitted"] = broadcast("cards submitted", "submit")
        rows["approved"] = broadcast("cards approved", "submit", "approve")
        rule = bx(
            "keyword", "add", "余额", "--match", "exact", "--reply-text", "cards",
            "--account", B, "--format", "json",
        )  # fmt: skip
        rows["rule"] = int(_json(rule)["id"])
        # A failed unit of B: an image broadcast whose media id the simulator does not know.
        failing = broadcast("", "submit", "approve", content=("--image", "no-such-media-id"))
        bx("broadcast", "send", str(failing), "--yes", "--account", B)
        failed = _json(
            bx("outbox", "list", "--account", B, "--state", "failed", "--format", "json")
        )
        assert failed, "no failed outbox unit on cards"
        rows["unit"] = int(failed[0]["id"])
        # A pending menu version of B (menus of B need approval; alice submits it).
        ok = bx("account", "update", B, "--require-approval", "menus")
        assert ok.exit_code == 0, ok.output
        menu = tmp_path / "menu.json"
        menu.write_text(json.dumps(MENU, ensure_ascii=False), encoding="utf-8")
        ok = bx("menu", "deploy", str(menu), "--yes", "--account", B)
        assert ok.exit_code == 0, ok.output
        [pending] = _json(bx("menu", "history", "--account", B, "--format", "json"))
        assert pending["state"] == "pending"
        rows["version"] = int(pending["version"])
        # A waiting agent session of B (a follower queued, as talk_to_agent queues one).
        assert bx("agent", "group", "add", "desk", "--account", B).exit_code == 0
        app = AppContext(from_environment())
        try:
            group = app.store.agents.group(B, "desk")
            assert group is not None
            with app.store.transaction():
                session, _ = app.store.agents.queue(B, "o" + "s" * 27, group.id, "2026-01-01")
        finally:
            app.close()
        rows["session"] = session.id
        yield World(bx, rows)


def snapshot(bx: Bankwx) -> dict[str, Any]:
    """What the administrator sees of B's rows."""
    return {
        "broadcasts": _json(bx("broadcast", "list", "--account", B, "--format", "json")),
        "rules": _json(bx("keyword", "list", "--account", B, "--format", "json")),
        "units": _json(bx("outbox", "list", "--account", B, "--format", "json")),
        "menus": _json(bx("menu", "history", "--account", B, "--format", "json")),
        "sessions": _json(bx("agent", "sessions", "--all", "--account", B, "--format", "json")),
    }


def audit_of_carol(bx: Bankwx) -> list[dict[str, Any]]:
    return list(_json(bx("audit", "--operator", "carol", "--format", "json", "--oldest-first")))


# (command words, which row its id names); "{id}" is replaced by the row's id.
CASES: list[tuple[list[str], str]] = [
    (["broadcast", "approve", "{id}"], "submitted"),
    (["broadcast", "reject", "{id}", "--reason", "x"], "submitted"),
    (["broadcast", "cancel", "{id}"], "submitted"),
    (["broadcast", "submit", "{id}"], "draft"),
    (["broadcast", "send", "{id}", "--yes"], "approved"),
    (["broadcast", "show", "{id}", "--format", "json"], "submitted"),
    (["broadcast", "status", "{id}", "--format", "json"], "approved"),
    (["broadcast", "edit", "{id}", "--text", "changed"], "draft"),
    (["broadcast", "preview", "{id}", "--to", OPENID], "draft"),
    (["keyword", "remove", "{id}", "--yes"], "rule"),
    (["outbox", "retry", "{id}"], "unit"),
    (["menu", "approve", "{id}"], "version"),
    (["menu", "reject", "{id}", "--reason", "x"], "version"),
    (["menu", "rollback", "{id}", "--yes"], "version"),
    (["agent", "reply", "{id}", "您好"], "session"),
    (["agent", "transfer", "{id}", "--to", "desk"], "session"),
    (["agent", "close", "{id}"], "session"),
]
# Without --account; with B's; with A's (the operator's own: still B's row, still refused).
# A menu version is numbered per account: "--account retail" names a version of retail, not
# B's row, so that variant is left out for menus.
VARIANTS: list[list[str]] = [[], ["--account", B], ["--account", A]]


def test_every_id_command_refuses_a_row_of_another_account(world: World) -> None:
    bx = world.bankwx
    before = snapshot(bx)
    seen = len(audit_of_carol(bx))
    problems: list[str] = []
    walked = 0
    for words, row in CASES:
        for variant in VARIANTS:
            if words[0] == "menu" and variant == ["--account", A]:
                continue
            args = [w.replace("{id}", str(world.rows[row])) for w in words] + variant
            result = bx(*args, env=CAROL)
            walked += 1
            entries = audit_of_carol(bx)
            new, seen = entries[seen:], len(entries)
            named = [
                e
                for e in new
                if e["outcome"] == "denied" and B in json.dumps(e, ensure_ascii=False)
            ]
            if result.exit_code != 4:
                problems.append(f"{' '.join(args)}: exit {result.exit_code}: {result.output}")
            if not named:
                problems.append(f"{' '.join(args)}: no denied audit entry naming {B}: {new}")
            if "cards submitted" in result.stdout or "cards draft" in result.stdout:
                problems.append(f"{' '.join(args)}: shows the row: {result.stdout}")
    menus = sum(1 for words, _ in CASES if words[0] == "menu")
    assert walked == len(CASES) * len(VARIANTS) - menus
    assert problems == []
    assert snapshot(bx) == before


def test_the_refusal_names_the_row_and_its_account(world: World) -> None:
    bx = world.bankwx
    rule = world.rows["rule"]
    refused = bx("keyword", "remove", str(rule), "--yes", env=CAROL)
    assert refused.exit_code == 4
    assert refused.stderr == (
        f"Error: operator 'carol' lacks permission 'keyword.write' on account '{B}'. "
        "You act as 'carol' because BANKWX_OPERATOR says so; to act as another operator, "
        "set BANKWX_OPERATOR to its name (see bankwx operator list).\n"
    )
    last = audit_of_carol(bx)[-1]
    assert (last["action"], last["target"], last["outcome"]) == ("keyword.write", B, "denied")
    assert last["params"]["row"] == f"keyword rule {rule}"


def test_a_missing_row_is_still_not_found(world: World) -> None:
    bx = world.bankwx
    for args, message in (
        (["broadcast", "approve", "999"], "no broadcast 999"),
        (["keyword", "remove", "999", "--yes"], "no keyword rule 999"),
        (["outbox", "retry", "999"], "no outbox unit 999"),
    ):
        result = bx(*args, env=CAROL)
        assert result.exit_code == 1, result.output
        assert message in result.stderr
    # The administrator naming another account than the row's: not found, as before.
    other = bx("broadcast", "show", str(world.rows["draft"]), "--account", A)
    assert other.exit_code == 1 and "no broadcast" in other.stderr


def test_a_limited_operator_still_works_on_their_own_account(world: World) -> None:
    bx = world.bankwx
    made = bx(
        "keyword", "add", "营业", "--match", "exact", "--reply-text", "9-17",
        "--account", A, "--format", "json", env=CAROL,
    )  # fmt: skip
    rule = int(_json(made)["id"])
    made = bx(
        "broadcast", "create", "--text", "retail notice", "--to-all",
        "--account", A, "--format", "json", env=CAROL,
    )  # fmt: skip
    bid = int(_json(made)["id"])
    assert bx("broadcast", "submit", str(bid), env=CAROL).exit_code == 0
    assert bx("broadcast", "show", str(bid), "--format", "json", env=CAROL).exit_code == 0
    # A list without --account shows a limited operator their own accounts' rows only.
    listed = _json(bx("broadcast", "list", "--format", "json", env=CAROL))
    assert [b["id"] for b in listed] == [bid]
    assert len(_json(bx("broadcast", "list", "--format", "json"))) > 1  # alice sees all
    assert bx("keyword", "remove", str(rule), "--yes", env=CAROL).exit_code == 0
    # A command over every account (no --account) asks a limited operator to name one.
    everything = bx("outbox", "list", env=CAROL)
    assert everything.exit_code == 4
    assert "name one of yours (retail) with --account" in everything.stderr
    assert bx("outbox", "list", "--account", A, env=CAROL).exit_code == 0
    # Global permissions (accounts, operators, the audit log) are not about one account's rows.
    assert bx("account", "list", env=CAROL).exit_code == 0


def test_broadcast_maker_checker_exits_4_and_is_audited(world: World) -> None:
    bx = world.bankwx
    bid = world.rows["submitted"]
    own = bx("broadcast", "approve", str(bid), "--account", B)  # alice created it
    assert own.exit_code == 4
    assert "may not approve it" in own.stderr and "maker-checker" in own.stderr
    last = _json(
        bx("audit", "--action", "broadcast.approve", "--format", "json", "--oldest-first")
    )[-1]
    assert (last["operator"], last["outcome"], last["params"]["account"]) == (
        "alice",
        "denied",
        B,
    )
    assert _json(bx("broadcast", "show", str(bid), "--format", "json"))["state"] == "submitted"


def test_no_account_named_means_every_account_of_the_store(world: World) -> None:
    """require(account=None) for a limited operator: every account, not any account."""
    bx = world.bankwx
    refused = bx("keyword", "list", env=CAROL)
    assert refused.exit_code == 4
    assert audit_of_carol(bx)[-1]["params"]["accounts"] == [B]
    assert bx("keyword", "list", "--account", A, env=CAROL).exit_code == 0
