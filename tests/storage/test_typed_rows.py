"""Rows that cross between the domain and the store as models: the binding page's sessions and
attempts, a menu version's decision and deploy calls, the API call recorder's counts, and alert
updates by typed fields."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from bankwx_cli.models.binding import BindAttempts, BindSession, BindSessionChange
from bankwx_cli.models.menus import MenuCall
from bankwx_cli.models.wechat import ApiCallCount, ApiHourCount, ApiLatencyCount
from bankwx_cli.storage import Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(tmp_path / "bankwx.db", create=True)
    yield store
    store.close()


SESSION = BindSession(
    id="s1",
    account="main",
    openid="o1",
    csrf="f" * 32,
    step="card",
    created_at="2026-03-01T00:00:00Z",
    expires_at=1900.0,
)


def test_a_session_reads_back_as_added_until_it_expires(store: Store) -> None:
    sessions = store.bind_sessions
    with store.transaction():
        sessions.add(SESSION)
    assert sessions.get("s1", 1000.0) == SESSION
    assert sessions.get("s1", 1900.0) is None  # expired
    assert sessions.get("nope", 1000.0) is None


def test_a_session_change_sets_what_it_gives_and_keeps_the_rest(store: Store) -> None:
    sessions = store.bind_sessions
    with store.transaction():
        sessions.add(SESSION)
        sessions.update(
            "s1",
            BindSessionChange(
                step="code",
                customer_id="C1",
                card_last4="1234",
                card_key="card:k",
                otp_request="r1",
                otp_sent_at=1000.5,
            ),
        )
    coded = replace(
        SESSION,
        step="code",
        customer_id="C1",
        card_last4="1234",
        card_key="card:k",
        otp_request="r1",
        otp_sent_at=1000.5,
    )
    assert sessions.get("s1", 1000.0) == coded
    with store.transaction():
        sessions.update("s1", BindSessionChange(otp_request="r2", otp_sent_at=1060.0))
        sessions.update("s1", BindSessionChange())  # nothing to change
    assert sessions.get("s1", 1000.0) == replace(coded, otp_request="r2", otp_sent_at=1060.0)
    with store.transaction():
        sessions.update("s1", BindSessionChange(customer_id=None))  # None stores NULL
        sessions.remove("s1")
    assert sessions.get("s1", 1000.0) is None


def test_attempts_read_back_as_set(store: Store) -> None:
    sessions = store.bind_sessions
    assert sessions.attempts("follower:main:o1") is None
    first = BindAttempts("follower:main:o1", window_start=100.0, failures=1)
    with store.transaction():
        sessions.set_attempts(first)
    assert sessions.attempts("follower:main:o1") == first
    locked = replace(first, failures=5, locked_until=3700.0, code_sent_at=90.0)
    with store.transaction():
        sessions.set_attempts(locked)
    assert sessions.attempts("follower:main:o1") == locked


def test_a_versions_decision_and_deploy_calls_read_back_in_the_recorded_shape(
    store: Store,
) -> None:
    versions = store.menu_versions
    at, later = "2026-03-01T10:00:00Z", "2026-03-01T10:05:00Z"
    with store.transaction():
        number = versions.add(account="main", state="pending", content={"button": []},
                              hash="h" * 64, source="menu.yaml", created_by="ann", at=at,
                              note="submitted")  # fmt: skip
        versions.decide("main", number, state="deploying", by="bob", at=later, note="started")
    decided = versions.get("main", number)
    assert decided is not None
    assert (decided.state, decided.decided_by, decided.decided_at, decided.reason) == (
        "deploying", "bob", later, None)  # fmt: skip
    assert (decided.created_by, decided.note, decided.wechat_answer) == ("ann", "started", ())
    calls = [
        MenuCall("/cgi-bin/menu/create", {"errcode": 0, "errmsg": "ok"}),
        MenuCall("/cgi-bin/menu/addconditional", {"matchrule": {"tag_id": "2"}, "menuid": "41"}),
        MenuCall("conditionalmenu[1] (menu/addconditional)", {"errcode": 65303, "errmsg": "x"}),
    ]
    with store.transaction():
        versions.finish("main", number, state="partial", deployed_by="bob", deployed_at=later,
                        wechat_answer=calls, note="Live now: ...", at=later)  # fmt: skip
    found = versions.get("main", number)
    assert found is not None
    assert found.wechat_answer == tuple(calls)
    assert (found.state, found.decided_by, found.deployed_by) == ("partial", "bob", "bob")
    assert found.to_json()["wechat_answer"] == [
        {"call": "/cgi-bin/menu/create", "errcode": 0, "errmsg": "ok"},
        {"call": "/cgi-bin/menu/addconditional", "matchrule": {"tag_id": "2"}, "menuid": "41"},
        {"call": "conditionalmenu[1] (menu/addconditional)", "errcode": 65303, "errmsg": "x"},
    ]
    added = found.to_json()["wechat_answer"][1]
    assert list(added) == ["call", "matchrule", "menuid"]  # in the order recorded


def test_api_counts_add_up_per_minute_and_hour(store: Store) -> None:
    path = "/cgi-bin/message/custom/send"
    minute, hour = "2026-03-01T10:05:00Z", "2026-03-01T10:00:00Z"
    for _ in range(2):
        store.api_calls.add(
            [ApiCallCount("wx1", path, minute, "error", 45011, 2, 30.0, 20.0, retries=1)],
            hourly=[ApiHourCount("wx1", hour, path, calls=2, errors=2, retries=1)],
            latency=[ApiLatencyCount("wx1", hour, path, bucket=7, n=2)],
        )
    store.api_calls.add([ApiCallCount("wx1", path, minute, "ok", 0, 1, 5.0, 5.0)])
    rows = store.db.all(
        "SELECT outcome, errcode, calls, total_ms, max_ms, retries FROM api_calls ORDER BY outcome"
    )
    assert [tuple(r) for r in rows] == [
        ("error", 45011, 4, 60.0, 20.0, 2),
        ("ok", 0, 1, 5.0, 5.0, 0),
    ]
    hours = store.db.all("SELECT calls, errors, retries FROM rollup_api")
    assert [tuple(r) for r in hours] == [(4, 4, 2)]
    assert store.db.scalar("SELECT n FROM rollup_api_latency WHERE bucket = 7") == 4


def test_an_alert_update_with_nothing_to_set_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="nothing to set"):
        store.alerts.update_event(1)
    with pytest.raises(ValueError, match="nothing to set"):
        store.alerts.update_recipient(1, "o1")
