"""`bankwx follower sync`: exact, resumable after SIGKILL, gentle on quotas, finds
unsubscribes by a complete pass, and follows the engine's events between syncs."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from bxprocs import Proc, start_receiver
from bxtest import Bankwx, add_account_args

SMALL = 60
KEYS = ("openid", "subscribed", "subscribe_at", "subscribe_scene", "tag_ids", "blacklisted")


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def expected(sim_followers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the store must say after a full sync: WeChat's followers, as WeChat says them."""
    rows = [
        {
            "openid": f["openid"],
            "subscribed": f["subscribe"],
            "subscribe_at": _iso(f["subscribe_time"]),
            "subscribe_scene": f["subscribe_scene"],
            "tag_ids": sorted(f["tagid_list"]),
            "blacklisted": f["blacklisted"],
        }
        for f in sim_followers
        if f["subscribe"]
    ]
    return sorted(rows, key=lambda r: r["openid"])


def listed(bankwx: Bankwx, *args: str, db: str | None = None) -> list[dict[str, Any]]:
    before = ["--db", db] if db else []
    result = bankwx(*before, "follower", "list", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def stored(bankwx: Bankwx, *args: str) -> list[dict[str, Any]]:
    rows = [{k: r[k] for k in KEYS} for r in listed(bankwx, *args)]
    return sorted(rows, key=lambda r: r["openid"])


def synced(bankwx: Bankwx, *args: str, later_s: float = 0) -> dict[str, Any]:
    """Sync; later_s moves bankwx's clock on (BANKWX_TEST_CLOCK_OFFSET) instead of sleeping."""
    env = (
        {"BANKWX_TEST_ACTIONS": "1", "BANKWX_TEST_CLOCK_OFFSET": str(later_s)} if later_s else None
    )
    result = bankwx("follower", "sync", *args, "--format", "json", env=env)
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def batchget_openids(entries: list[dict[str, Any]]) -> list[str]:
    return [item["openid"] for e in entries for item in e["body"]["user_list"]]


def test_sync_of_25000_matches_the_simulator_and_a_second_changes_nothing(
    with_account: Bankwx, big_sim: Any
) -> None:
    report = synced(with_account)
    assert report["kind"] == "full"
    assert (report["pages"], report["listed"], report["new"]) == (3, 25_000, 25_000)
    assert report["profiles"] == 25_000
    assert report["total"] == report["subscribed"] == 25_000
    first = listed(with_account)
    assert stored(with_account) == expected(big_sim.followers())
    assert set(first[0]) >= {"openid", "subscribed", "subscribe_at", "subscribe_scene", "tags"}
    # follow order, as WeChat lists them
    times = [r["subscribe_at"] for r in first]
    assert times == sorted(times)

    before = big_sim.last_seq()
    again = synced(with_account)
    assert again["kind"] == "incremental"
    assert (again["listed"], again["new"], again["profiles"]) == (0, 0, 0)
    assert listed(with_account) == first
    # one user/get that continues after the last follower seen; no profile is fetched again
    (page,) = big_sim.log("/cgi-bin/user/get", since=before)
    assert page["query"]["next_openid"] == big_sim.followers()[-1]["openid"]
    assert big_sim.log("/cgi-bin/user/info/batchget", since=before) == []


def test_sync_killed_while_fetching_profiles_resumes_without_refetching(
    with_account: Bankwx, big_sim: Any, spawn: Any, read_store: Any, wait_for: Any, tmp_path: Any
) -> None:
    big_sim.faults(latency_ms=4)
    process = spawn("follower", "sync", "--threads", "2")
    wait_for(
        lambda: (
            read_store("SELECT count(*) FROM followers WHERE profile_at IS NOT NULL")[0][0] >= 4000
        ),
        what="4,000 profiles stored",
    )
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = {r[0] for r in read_store("SELECT openid FROM followers WHERE profile_at IS NOT NULL")}
    assert 4000 <= len(done) < 25_000
    ((phase, pages),) = read_store("SELECT phase, pages FROM follower_sync")
    assert (phase, pages) == ("load", 3)  # a first sync: listed, profiles under way

    big_sim.faults(latency_ms=0)
    before = big_sim.last_seq()
    report = synced(with_account)
    assert report["resumed"] is True
    assert report["profiles"] == 25_000  # counted from the start of the pass
    assert big_sim.log("/cgi-bin/user/get", since=before) == []  # the list was done
    fetched = batchget_openids(big_sim.log("/cgi-bin/user/info/batchget", since=before))
    assert not done & set(fetched)
    assert len(fetched) == len(set(fetched)) == 25_000 - len(done)

    # identical to an uninterrupted sync into another store
    resumed = listed(with_account)
    other = str(tmp_path / "other.db")
    with_account("--db", other, "init")
    assert with_account("--db", other, *add_account_args()).exit_code == 0
    assert with_account("--db", other, "follower", "sync").exit_code == 0
    assert listed(with_account, db=other) == resumed
    assert stored(with_account) == expected(big_sim.followers())


def test_sync_killed_while_listing_resumes_from_the_stored_page(
    with_account: Bankwx, big_sim: Any, spawn: Any, read_store: Any, wait_for: Any
) -> None:
    big_sim.faults(latency_ms=300)
    process = spawn("follower", "sync")
    wait_for(
        lambda: (read_store("SELECT pages FROM follower_sync") or [(0,)])[0][0] >= 1,
        what="the first page stored",
    )
    process.send_signal(signal.SIGKILL)
    process.wait()
    ((pages, cursor),) = read_store("SELECT pages, cursor FROM follower_sync")
    assert pages in (1, 2)
    big_sim.faults(latency_ms=0)
    before = big_sim.last_seq()
    report = synced(with_account)
    assert report["resumed"] is True
    first_page = big_sim.log("/cgi-bin/user/get", since=before)[0]
    assert first_page["query"]["next_openid"] == cursor  # not the first page again
    assert stored(with_account) == expected(big_sim.followers())


def test_a_later_pass_killed_while_fetching_profiles_resumes_without_refetching(
    with_account: Bankwx, big_sim: Any, spawn: Any, read_store: Any, wait_for: Any
) -> None:
    synced(with_account)
    big_sim.faults(latency_ms=10)
    # a full pass that refreshes every profile (none is younger than the pass)
    process = spawn("follower", "sync", "--full", "--profile-max-age", "0", "--threads", "2")
    wait_for(
        lambda: read_store("SELECT pass_no, profiles FROM follower_sync")[0] >= (2, 2000),
        what="2,000 profiles refreshed by the second pass",
    )
    process.send_signal(signal.SIGKILL)
    process.wait()
    ((started, phase),) = read_store("SELECT started_at, phase FROM follower_sync")
    assert phase == "profiles"
    refreshed = {
        r[0] for r in read_store("SELECT openid FROM followers WHERE profile_at >= ?", started)
    }
    assert 2000 <= len(refreshed) < 25_000

    big_sim.faults(latency_ms=0)
    before = big_sim.last_seq()
    report = synced(with_account, "--profile-max-age", "0")
    assert (report["resumed"], report["kind"], report["profiles"]) == (True, "full", 25_000)
    fetched = batchget_openids(big_sim.log("/cgi-bin/user/info/batchget", since=before))
    assert not refreshed & set(fetched)
    assert len(fetched) == 25_000 - len(refreshed)
    assert stored(with_account) == expected(big_sim.followers())


def test_quota_used_up_mid_sync_stops_cleanly_and_resumes(
    with_account: Bankwx, big_sim: Any, read_store: Any
) -> None:
    big_sim.faults(quotas={"/cgi-bin/user/get": {"daily": 2}})
    result = with_account("follower", "sync")
    assert result.exit_code == 3, result.output
    message = result.stderr
    assert message.startswith("Error: WeChat 45009 (reach max api daily quota limit rid: ")
    assert "the sync of 'main' stopped with its progress saved (2 pages listed, 0 profiles" in (
        message
    )
    assert "run bankwx follower sync again after " in message
    assert "00:00:00 CST (Asia/Shanghai) to resume." in message
    assert "Traceback" not in result.output
    assert read_store("SELECT listed, phase FROM follower_sync") == [(20_000, "list")]

    # the next day (quota reset): it goes on from page 3
    big_sim.control("POST", "/sim/clock", {"advance": 86_400})
    big_sim.faults(quotas={"/cgi-bin/user/info/batchget": {"daily": 100}})
    result = with_account("follower", "sync")
    assert result.exit_code == 3, result.output
    written = read_store("SELECT count(*) FROM followers WHERE profile_at IS NOT NULL")[0][0]
    assert 9_000 <= written <= 10_000  # the calls WeChat answered, written in openid order
    assert f"(3 pages listed, {written:,} profiles fetched)" in result.stderr
    before = big_sim.last_seq()
    big_sim.faults(quotas={})
    report = synced(with_account)
    assert report["resumed"] and report["profiles"] == 25_000
    fetched = batchget_openids(big_sim.log("/cgi-bin/user/info/batchget", since=before))
    assert len(fetched) == 25_000 - written
    assert stored(with_account) == expected(big_sim.followers())


def test_a_complete_pass_finds_unsubscribes_and_incremental_ones_find_new_followers(
    with_account: Bankwx, small_sim: Any
) -> None:
    synced(with_account)
    gone = [r["openid"] for r in listed(with_account)[:3]]
    for openid in gone:
        small_sim.unsubscribe(openid)
    newcomer = "oNEWfollower0123456789abcdef"
    small_sim.subscribe(newcomer, "ADD_SCENE_QR_CODE")

    report = synced(with_account)
    assert report["kind"] == "incremental"
    assert (report["new"], report["profiles"], report["unsubscribed"]) == (1, 1, 0)
    shown = with_account("follower", "show", newcomer, "--format", "json")
    assert json.loads(shown.stdout)["subscribe_scene"] == "ADD_SCENE_QR_CODE"

    report = synced(with_account, "--full")
    assert (report["kind"], report["unsubscribed"], report["new"]) == ("full", 3, 0)
    left = listed(with_account, "--subscribed", "no")
    assert sorted(r["openid"] for r in left) == sorted(gone)
    assert stored(with_account, "--subscribed", "yes") == expected(small_sim.followers())
    assert len(listed(with_account)) == 61  # those who left stay known

    # one who left follows again: listed anew, profile refetched
    small_sim.subscribe(gone[0])
    report = synced(with_account, "--full")
    assert (report["new"], report["profiles"], report["unsubscribed"]) == (0, 1, 0)
    assert stored(with_account, "--subscribed", "yes") == expected(small_sim.followers())


def test_profiles_older_than_the_max_age_are_refetched(
    with_account: Bankwx, small_sim: Any
) -> None:
    synced(with_account)
    assert synced(with_account)["profiles"] == 0
    assert synced(with_account, "--profile-max-age", "1s", later_s=2)["profiles"] == SMALL


def test_full_every_makes_a_complete_pass_when_the_last_is_old(
    with_account: Bankwx, small_sim: Any
) -> None:
    synced(with_account)
    assert synced(with_account, "--full-every", "1s", later_s=2)["kind"] == "full"
    assert synced(with_account, "--full-every", "1s", later_s=2)["kind"] == "incremental"
    assert synced(with_account, "--full-every", "1s", later_s=4)["kind"] == "full"


def test_the_engine_keeps_subscriptions_current_between_syncs(
    with_account: Bankwx, small_sim: Any, receivers: list[Proc]
) -> None:
    synced(with_account)
    start_receiver(with_account, receivers, "--quiet")  # registered with the simulator

    leaving = listed(with_account)[0]["openid"]
    newcomer = "oENGINEfollower0123456789abc"
    for openid, event in ((leaving, "unsubscribe"), (newcomer, "subscribe")):
        sent = with_account("sim", "send", "--event", event, "--openid", openid)
        assert sent.exit_code == 0, sent.output

    subscribed = {r["openid"]: r for r in listed(with_account, "--subscribed", "yes")}
    assert leaving not in subscribed
    assert newcomer in subscribed
    assert len(subscribed) == SMALL  # 60 - 1 + 1
    shown = json.loads(with_account("follower", "show", leaving, "--format", "json").stdout)
    assert (shown["subscribed"], shown["source"]) == (False, "engine")
    assert shown["unsubscribe_at"] is not None

    # the next sync agrees with the engine (and the follower's profile arrives)
    synced(with_account, "--full")
    assert stored(with_account, "--subscribed", "yes") == expected(small_sim.followers())


def test_a_live_sync_elsewhere_is_refused_and_a_dead_one_taken_over(
    with_account: Bankwx, small_sim: Any, read_store: Any, db: Any
) -> None:
    import sqlite3

    synced(with_account)
    conn = sqlite3.connect(str(db))
    holder = f"{socket.gethostname()}:{os.getppid()}"  # a live process that is not us
    with conn:
        conn.execute(
            "UPDATE follower_sync SET phase = 'list', holder = ?, heartbeat_at = ?",
            (holder, time.time()),
        )
    result = with_account("follower", "sync")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: a sync of 'main' is running ({holder}, last ")
    with conn:
        conn.execute("UPDATE follower_sync SET heartbeat_at = ?", (time.time() - 120,))
    conn.close()
    assert synced(with_account)["resumed"] is True
    assert read_store("SELECT holder FROM follower_sync") == [(None,)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile-max-age", "soon"], "Error: --profile-max-age 'soon' is invalid: use a "),
        (["--full-every", "1w"], "Error: --full-every '1w' is invalid: use a number and a unit"),
        # --threads 0 is a usage error (exit 2): tests/commands/test_bad_input.py
    ],
)
def test_bad_sync_options(with_account: Bankwx, args: list[str], message: str) -> None:
    result = with_account("follower", "sync", *args)
    assert result.exit_code == 1
    assert result.stderr.startswith(message)


def test_sync_needs_permission_and_is_audited(with_account: Bankwx, small_sim: Any) -> None:
    added = with_account("operator", "add", "ann", "--role", "agent")
    assert added.exit_code == 0, added.output
    refused = with_account("follower", "sync", env={"BANKWX_OPERATOR": "ann"})
    assert refused.exit_code == 4
    assert refused.stderr == (
        "Error: operator 'ann' lacks permission 'follower.sync'. "
        "You act as 'ann' because BANKWX_OPERATOR says so; to act as another operator, "
        "set BANKWX_OPERATOR to its name (see bankwx operator list).\n"
    )
    assert with_account("follower", "list", env={"BANKWX_OPERATOR": "ann"}).exit_code == 0
    synced(with_account)
    audit = with_account("audit", "--action", "follower.sync", "--format", "json")
    (entry,) = [e for e in json.loads(audit.stdout) if e["outcome"] == "ok"]
    assert entry["params"]["listed"] == SMALL
