"""Bindings by `bankwx follower bind|unbind|show`, the bank actions' rules as `keyword add`
validates them, the public URL setting, and the audit trail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from bankkit import OPENID, OTHER, secrets_of
from bxtest import Bankwx, add_account_args

ACTIONS = ("balance", "transactions", "card_bill", "rates", "fx_rates", "products", "bind",
           "unbind")  # fmt: skip


def _json(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_actions_are_listed(store_ready: Bankwx) -> None:
    listed = _json(store_ready("keyword", "actions", "--format", "json"))
    names = {a["action"] for a in listed}
    assert set(ACTIONS) <= names, names


def test_rules_refused_without_public_url_or_with_a_bad_arg(store_ready: Bankwx) -> None:
    bx = store_ready
    assert bx(*add_account_args()).exit_code == 0
    for action in ("bind", "balance", "card_bill", "transactions"):
        refused = bx("keyword", "add", f"x{action}", "--match", "exact", "--action", action)
        assert refused.exit_code == 1, (action, refused.output)
        assert "has no public URL" in refused.stderr
        assert "bankwx account update main --public-url" in refused.stderr
    # the actions that need no binding are accepted
    for action in ("rates", "fx_rates", "products", "unbind"):
        ok = bx("keyword", "add", f"x{action}", "--match", "exact", "--action", action)
        assert ok.exit_code == 0, ok.output

    # a public URL: https, or http to this machine only
    bad = bx("account", "update", "main", "--public-url", "http://bank.example.com")
    assert bad.exit_code == 1 and "plain HTTP to 'bank.example.com'" in bad.stderr, bad.output
    for wrong in ("ftp://x.example.com", "https://u:p@x.example.com", "https://x.com/?q=1"):
        assert bx("account", "set", "main", "public_url", wrong).exit_code == 1, wrong
    assert bx("account", "update", "main", "--public-url", "http://127.0.0.1:8080").exit_code == 0
    ok = bx("account", "update", "main", "--public-url", "https://bank.example.com/")
    assert ok.exit_code == 0, ok.output
    settings = _json(bx("account", "settings", "main", "--format", "json"))
    found = {s["key"]: s["value"] for s in settings}
    assert found["public_url"] == "https://bank.example.com"

    for arg in ("11", "0", "-1", "abc", "2.5"):
        refused = bx("keyword", "add", f"t{arg}", "--match", "exact", "--action",
                     "transactions", "--arg", arg)  # fmt: skip
        assert refused.exit_code == 1, (arg, refused.output)
        assert "from 1 to 10" in refused.stderr
    for arg in ("1", "10"):
        ok = bx("keyword", "add", f"t{arg}", "--match", "exact", "--action", "transactions",
                "--arg", arg)  # fmt: skip
        assert ok.exit_code == 0, ok.output
    assert (
        bx("keyword", "add", "明细", "--match", "exact", "--action", "transactions").exit_code == 0
    )
    assert bx("keyword", "add", "绑定", "--match", "exact", "--action", "bind").exit_code == 0
    refused = bx("keyword", "add", "利率x", "--match", "exact", "--action", "rates", "--arg", "1")
    assert refused.exit_code == 1 and "takes no --arg" in refused.stderr


def test_bind_show_unbind(
    banked: Bankwx, customers: list[dict[str, Any]], db_path: Path, control: httpx.Client
) -> None:
    bx = banked
    first, second = customers[0], customers[1]
    debit = next(c for c in first["cards"] if c["type"] == "debit")["number"]

    assert bx("follower", "show", OPENID).exit_code == 1  # not in the store yet
    # off a terminal, --yes is needed
    asked = bx("follower", "bind", OPENID, "--customer", first["id"])
    assert asked.exit_code != 0 and "--yes" in asked.stderr, asked.output
    done = bx("follower", "bind", OPENID, "--customer", first["id"], "--yes")
    assert done.exit_code == 0, done.output
    assert f"card ****{debit[-4:]}" in done.stderr
    shown = _json(bx("follower", "show", OPENID, "--format", "json"))
    binding = shown["binding"]
    assert binding["customer_id"] == first["id"]
    assert binding["card"] == f"****{debit[-4:]}" and binding["bound_at"].endswith("Z")
    plain = bx("follower", "show", OPENID)
    assert plain.exit_code == 0 and f"****{debit[-4:]}" in plain.stdout

    # the same customer again: nothing changes; another: refused, unbind first
    again = bx("follower", "bind", OPENID, "--customer", first["id"], "--yes")
    assert again.exit_code == 0 and "already bound" in again.stderr
    other = bx("follower", "bind", OPENID, "--customer", second["id"], "--yes")
    assert other.exit_code == 1, other.output
    assert f"bankwx follower unbind {OPENID} --yes" in other.stderr
    # several followers per customer
    assert bx("follower", "bind", OTHER, "--customer", first["id"], "--yes").exit_code == 0

    # unknown customer, bad ids, back-end down
    unknown = bx(
        "follower", "bind", "oBank0000000000000000000003", "--customer", "C999999", "--yes"
    )
    assert unknown.exit_code == 1 and "no customer 'C999999'" in unknown.stderr, unknown.output
    bad = bx("follower", "bind", OPENID, "--customer", "C 1", "--yes")
    assert bad.exit_code == 1 and "--customer 'C 1' is invalid" in bad.stderr
    assert bx("follower", "bind", "short", "--customer", first["id"], "--yes").exit_code == 1
    control.post("/sandbox/faults", json={"down": True})
    down = bx(
        "follower", "bind", "oBank0000000000000000000004", "--customer", second["id"], "--yes"
    )
    assert down.exit_code == 1 and "Traceback" not in down.output, down.output
    control.post("/sandbox/faults", json={"down": False})

    # unbind
    assert bx("follower", "unbind", OPENID).exit_code != 0  # --yes needed off a terminal
    gone = bx("follower", "unbind", OPENID, "--yes")
    assert gone.exit_code == 0 and f"****{debit[-4:]}" in gone.stderr, gone.output
    assert _json(bx("follower", "show", OPENID, "--format", "json"))["binding"] is None
    nothing = bx("follower", "unbind", OPENID, "--yes")
    assert nothing.exit_code == 0 and "not bound" in nothing.stderr
    assert bx("follower", "bind", OPENID, "--customer", second["id"], "--yes").exit_code == 0

    entries = _json(bx("audit", "--format", "json"))
    bindings = [e for e in entries if e["action"].startswith("binding.")]
    assert [e["action"] for e in reversed(bindings)] == [
        "binding.add", "binding.add", "binding.remove", "binding.add",
    ]  # fmt: skip
    assert all(e["operator"] == "alice" for e in bindings)
    assert bindings[-1]["params"] == {
        "openid": OPENID, "customer_id": first["id"], "card": f"****{debit[-4:]}",
    }  # fmt: skip

    # no full card or account number, no balance, in the store's files
    secrets = secrets_of(customers)
    for path in db_path.parent.glob(db_path.name + "*"):
        raw = path.read_bytes()
        for secret in secrets:
            assert secret not in raw, (path, secret)


def test_binding_manage_is_for_administrators(
    banked: Bankwx, customers: list[dict[str, Any]]
) -> None:
    bx = banked
    assert bx("operator", "add", "pat", "--role", "publisher").exit_code == 0
    env = {"BANKWX_OPERATOR": "pat"}
    cid = customers[0]["id"]
    refused = bx("follower", "bind", OPENID, "--customer", cid, "--yes", env=env)
    assert refused.exit_code == 4, refused.output
    assert bx("follower", "bind", OPENID, "--customer", cid, "--yes").exit_code == 0
    assert bx("follower", "unbind", OPENID, "--yes", env=env).exit_code == 4
    shown = _json(bx("follower", "show", OPENID, "--format", "json", env=env))  # follower.read
    assert shown["binding"]["customer_id"] == cid


def test_amounts_render_from_fen() -> None:
    from bankwx_cli.domain.bank import yuan as render

    assert render(1_234_567) == "12,345.67元"
    assert render(5) == "0.05元" and render(0) == "0.00元"
    assert render(-800_000, signed=True) == "-8,000.00元"
    assert render(800_000, signed=True) == "+8,000.00元"
    assert render(123_456_789_00) == "123,456,789.00元"


def test_bind_without_a_back_end_says_how_to_set_one(store_ready: Bankwx) -> None:
    bx = store_ready
    assert bx(*add_account_args()).exit_code == 0
    refused = bx("follower", "bind", OPENID, "--customer", "C000001", "--yes")
    assert refused.exit_code == 1, refused.output
    assert "bankwx backend set --url" in refused.stderr
    assert bx("follower", "show", OPENID).exit_code == 1  # nothing written


def test_the_back_end_work_ends_within_15_s_of_the_callback() -> None:
    """The budget: 15 s outside the receiver; inside, what is left of 15 s when the callback
    came at most 5 s (the receiver's deadline) before the deadline."""
    import time

    from bankwx_cli.domain.actions import ActionContext
    from bankwx_cli.domain.bank import budget

    def ctx(deadline: float | None) -> ActionContext:
        return ActionContext(None, None, OPENID, "余额", None, None, deadline)  # type: ignore[arg-type]

    assert budget(ctx(None)) == 15.0
    assert 13.9 < budget(ctx(time.monotonic() + 4.0)) <= 14.0
    assert 10.4 < budget(ctx(time.monotonic() + 0.5)) <= 10.5
    assert budget(ctx(time.monotonic() - 3.0)) == 10.0  # the deadline passed: a late answer
