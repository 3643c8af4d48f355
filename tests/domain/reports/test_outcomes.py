"""One table maps every outcome the engine records to a column of the messages report."""

from __future__ import annotations

import re
from pathlib import Path

from bankwx_cli.domain import reports

PACKAGE = Path(reports.__file__).resolve().parent.parent
# outcome="x", outcome = "x", return "late..." in a late hook
_FOUND = (
    re.compile(r"""outcome\s*=\s*["']([a-z_]*)["']"""),
    re.compile(r"""outcome=["']([a-z_]+)["'] if \w+ else ["']([a-z_]+)["']"""),
    re.compile(r"""return ["'](late[a-z_]*)["']"""),
)
# Files whose ``outcome`` is another thing's: WeChat API calls, the audit log, the outbox's own.
OTHER_OUTCOMES = ("wechat/", "sim/", "sandbox/", "backend/", "domain/audit.py",
                  "domain/menus.py", "domain/permissions.py", "domain/reports.py",
                  "domain/binding_page.py",
                  "commands/")  # fmt: skip


def produced() -> set[str]:
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith(OTHER_OUTCOMES):
            continue
        text = path.read_text(encoding="utf-8")
        for pattern in _FOUND:
            for match in pattern.finditer(text):
                found.update(g for g in match.groups() if g)
    return found


def test_every_outcome_the_code_produces_has_a_column() -> None:
    found = produced()
    assert {"replied", "late_enqueued", "handler_error", "forwarded"} <= found  # the scan works
    missing = sorted(found - set(reports.OUTCOMES) - reports.NOT_LOGGED)
    assert missing == [], f"add {missing} to reports.OUTCOMES"


def test_the_columns_add_up() -> None:
    assert set(reports.OUTCOMES.values()) == set(reports.CATEGORIES)
    assert reports.OUTCOMES[""] == "unanswered"  # a claim still processing
    contract = {
        "replied": ["replied"],
        "late": ["late_enqueued"],
        "late_no_window": ["late_no_window"],
        "unanswered": ["late_unsendable", "late_silent", "late", "unhandled_key",
                       "unknown_type"],
        "failed": ["handler_error", "unknown_action"],
        "no_reply": ["recorded", "ignored", "silent"],
    }  # fmt: skip
    for column, outcomes in contract.items():
        for outcome in outcomes:
            assert reports.OUTCOMES[outcome] == column, outcome


def test_route_kinds() -> None:
    kinds = {
        "rule:12": "rule", "rule:12:action:balance": "action", "default": "default",
        "event:subscribe:qrscene=7": "event", "agent": "agent", "trial:agent": "agent",
        "error": "error", "unknown:shortvideo": "unknown", "trial:scan": "other", "": "other",
    }  # fmt: skip
    assert {route: reports.route_kind(route) for route in kinds} == kinds
    assert set(kinds.values()) == set(reports.ROUTE_KINDS)
