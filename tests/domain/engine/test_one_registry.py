"""One registry for every extension point: the outbox's senders and source hooks and the
per-account settings are points of bankwx_cli/extensions.py like actions and routes; one batch
report for every sending run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from bxtest import Bankwx

from bankwx_cli import extensions
from bankwx_cli.context import AppContext
from bankwx_cli.domain import account_settings, accounts, actions, broadcasts, outbox, trials
from bankwx_cli.domain.account_settings import Setting
from bankwx_cli.extensions import Area, Registry
from bankwx_cli.models.batches import BatchFailure
from bankwx_cli.settings import from_environment


def _send(app: Any, unit: Any) -> str | None:
    return None


def _hook(name: str) -> Any:
    def hook(app: Any, unit: Any, *args: Any) -> None:
        return None

    hook.__name__ = name
    return hook


def test_the_old_mechanisms_are_gone() -> None:
    """Nothing registers at import: no second way of doing what the registry does."""
    for name in ("AREAS", "load_areas", "SENDERS", "SOURCES", "sender", "on_final",
                 "on_delivery", "before_send", "Report"):  # fmt: skip
        assert not hasattr(outbox, name), name
    for name in ("REGISTRY", "declare", "AREA_MODULES", "load"):
        assert not hasattr(account_settings, name), name


def test_every_entry_point_sees_the_outbox_points_and_settings() -> None:
    loaded = extensions.registry()
    built_in = {"custom", "template", "mass", "kfsession", "sms"}
    assert set(loaded.senders(tests=False)) == built_in
    assert set(loaded.senders(tests=True)) == {*built_in, "test_note"}
    assert loaded.senders(tests=True)["test_note"].send is trials.send_test_note
    hooks = loaded.source_hooks(tests=False)
    assert hooks["broadcast"].final == (broadcasts._unit_final,)
    assert (hooks["broadcast"].delivery, hooks["broadcast"].checks) == ((), ())
    settings = loaded.settings(tests=False)
    assert list(settings)[:4] == ["welcome", "default_reply", "mode", "retention_days"]
    owners = {key: s.area for key, s in settings.items()}
    assert (owners["welcome"], owners["retention_days"], owners["rates"]) == (
        "engine",
        "messages",
        "outbox",
    )
    assert (owners["preview_openids"], owners["require_approval"]) == ("broadcasts", "menus")
    assert owners["text.help"] == "texts"
    assert "test.service_only" not in settings
    test_only = loaded.settings(tests=True)["test.service_only"]
    assert test_only.test_only and test_only.area == "test"
    # readers on the hot path get what the registry keeps: no rebuilding per call
    assert account_settings.registered() is account_settings.registered()
    assert loaded.senders(tests=False) is loaded.senders(tests=False)


def test_outbox_points_keep_order_and_leave_test_only_entries_out() -> None:
    registry = Registry()
    first, second, late, check, told = (_hook(n) for n in ("1", "2", "late", "check", "told"))
    registry._area = Area("one", "x", ("sender", "final", "before_send", "delivery"))
    registry.sender("k", budget="b", crash="idempotent", rate=3, dedup_window_s=60)(_send)
    registry.on_final("src", second)
    registry.on_final("src", late, order=10)
    registry.on_final("src", first, order=-1)
    registry.before_send("src", check)
    registry.on_delivery("src", told)
    before = registry.source_hooks(tests=False)
    registry._area = Area("trials", "x", ("sender", "final"), test_only=True)
    registry.sender("t", budget="t", crash="at_most_once", rate=1)(_send)
    registry.on_final("src", _hook("t"))
    sender = registry.senders(tests=False)["k"]
    assert (sender.budget, sender.crash, sender.rate, sender.dedup_window_s) == (
        "b",
        "idempotent",
        3,
        60,
    )
    assert (sender.area, sender.test_only) == ("one", False)
    assert set(registry.senders(tests=False)) == {"k"}
    assert registry.senders(tests=True)["t"].test_only
    hooks = registry.source_hooks(tests=False)["src"]
    assert hooks is not before["src"]  # a declaration drops what readers kept
    assert hooks.final == (first, second, late)
    assert (hooks.checks, hooks.delivery) == ((check,), (told,))
    assert len(registry.source_hooks(tests=True)["src"].final) == 4
    with pytest.raises(RuntimeError, match="not in its AREAS points"):
        registry.before_send("src", check)


def test_settings_are_a_point_like_any_other() -> None:
    registry = Registry()
    registry._area = Area("alerts", "x", ("setting",))
    added = registry.setting(Setting("alerts.quiet", "bool", False, "Quiet.", "alerts", "yes/no"))
    assert registry.settings(tests=False) == {"alerts.quiet": added}
    with pytest.raises(RuntimeError, match=r"setting 'alerts\.quiet' is registered twice"):
        registry.setting(Setting("alerts.quiet", "int", 1, "Again.", "alerts", "a number"))
    with pytest.raises(ValueError, match="type must be one of"):
        Setting("alerts.bad", "float", 1.0, "Bad.", "alerts", "a number")
    registry._area = Area("trials", "x", ("setting",), test_only=True)
    hidden = registry.setting(Setting("t.x", "str", "", "Test.", "test", "text"))
    assert hidden.test_only and "t.x" not in registry.settings(tests=False)
    registry._area = Area("outbox", "x", ("sender",))
    with pytest.raises(RuntimeError, match="not in its AREAS points"):
        registry.setting(Setting("o.x", "str", "", "Outbox.", "outbox", "text"))


# --- the action context's settings --------------------------------------------------------------


@pytest.fixture
def app(with_account: Bankwx) -> Iterator[AppContext]:
    context = AppContext(from_environment())
    yield context
    context.close()


def _context(app: AppContext) -> actions.ActionContext:
    return actions.ActionContext(app, accounts.get(app, "main"), "o1", "", None)


def test_an_action_sees_the_settings_in_effect(app: AppContext, with_account: Bankwx) -> None:
    settings = _context(app).settings
    assert settings["retention_days"] == 180  # not set: the default
    assert settings["welcome"] == account_settings.text(accounts.get(app, "main"), "welcome")
    assert settings["preview_openids"] == [] and "test.service_only" not in settings
    changed = with_account("account", "set", "main", "retention_days", "30")
    assert changed.exit_code == 0, changed.output
    assert _context(app).settings["retention_days"] == 30


def test_an_action_sees_test_settings_only_with_test_actions(
    with_account: Bankwx, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BANKWX_TEST_ACTIONS", "1")
    context = AppContext(from_environment())
    try:
        assert _context(context).settings["test.service_only"] is False
    finally:
        context.close()


# --- one batch report -------------------------------------------------------------------------


def test_a_sending_run_reports_as_every_batch_does() -> None:
    refused = BatchFailure("unit 4", "WeChat 43004 (require subscribe)", wechat=True)
    lost = BatchFailure("unit 5", "the sender stopped mid-send", unknown=True)
    report = outbox.report(sent=3, retried=2, failures=(refused, lost))
    assert report.summary() == "3 sent, 1 failed, 1 unknown, 2 to retry."
    assert report.exit_code == 1  # an unknown unit is not WeChat's refusal
    assert outbox.report(failures=(refused,)).exit_code == 3
    assert outbox.report(sent=2).exit_code == 0
    both = outbox.report(sent=1, failures=(refused,)) + outbox.report(sent=2, retried=1)
    assert both.summary() == "3 sent, 1 failed, 0 unknown, 1 to retry."
    assert [f.message() for f in both.failures] == ["unit 4: WeChat 43004 (require subscribe)"]
    assert outbox.report().summary() == "0 sent, 0 failed, 0 unknown, 0 to retry."
