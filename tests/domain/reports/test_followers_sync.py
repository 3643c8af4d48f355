"""Follows and unfollows counted once: by the engine (its events, counted by backfill) or by
the follower sync (what the engine did not see), whichever sees them first."""

from __future__ import annotations

import json
from typing import Any

from bxprocs import Sim
from bxtest import APPID, Bankwx
from reportkit import Traffic

from bankwx_cli.clock import FixedClock
from bankwx_cli.context import AppContext
from bankwx_cli.settings import from_environment

NEW = "oNewFollower0000000000000001"
QUIET = "oQuietFollower00000000000001"
EVERYTHING = ["--by", "total", "--since", "2000-01-01", "--split", "scene"]


def _followers(bankwx: Bankwx) -> dict[tuple[str, Any], tuple[int, int]]:
    result = bankwx("report", "followers", *EVERYTHING, "--format", "json")
    assert result.exit_code == 0, result.output
    return {(r["scene"], r["qr_scene"]): (r["new"], r["lost"]) for r in json.loads(result.stdout)}


def _sim_post(sim: Sim, path: str, body: dict[str, Any]) -> None:
    answer = sim.http.post(path, json=body)
    assert answer.status_code == 200, answer.text


def test_a_follow_seen_by_the_engine_then_the_sync_counts_once(account: Bankwx, sim: Sim) -> None:
    assert account("follower", "sync").exit_code == 0
    listed = json.loads(account("follower", "list", "--format", "json").stdout)
    scenes: dict[tuple[str, Any], tuple[int, int]] = {}
    for follower in sim.driver.followers(APPID, limit=1000):
        qr = str(follower.get("qr_scene_str") or "") or str(follower.get("qr_scene") or "")
        key = (follower.get("subscribe_scene") or "unknown", qr if qr not in ("", "0") else None)
        scenes[key] = (scenes.get(key, (0, 0))[0] + 1, 0)
    assert _followers(account) == scenes  # the first load: every follower new, by scene
    assert sum(n for n, _ in scenes.values()) == len(listed)
    # NEW follows by a QR code: the engine sees it (and counts it); QUIET follows unseen
    _sim_post(sim, f"/sim/followers/{NEW}/subscribe",
              {"appid": APPID, "scene": "ADD_SCENE_QR_CODE", "qr_scene": "42"})  # fmt: skip
    _sim_post(sim, f"/sim/followers/{QUIET}/subscribe",
              {"appid": APPID, "scene": "ADD_SCENE_SEARCH"})  # fmt: skip
    gone = listed[0]["openid"]
    _sim_post(sim, f"/sim/followers/{gone}/unsubscribe", {"appid": APPID})
    app = AppContext(from_environment(), clock=FixedClock())
    try:
        traffic = Traffic(app, FixedClock())
        traffic.event(FixedClock().now(), "subscribe", "qrscene_42", openid=NEW)
    finally:
        app.close()
    assert account("report", "backfill").exit_code == 0
    assert account("follower", "sync", "--full").exit_code == 0, "full pass: finds the gone one"
    counted = _followers(account)
    expected = dict(scenes)
    qr = expected.get(("ADD_SCENE_QR_CODE", "42"), (0, 0))
    expected[("ADD_SCENE_QR_CODE", "42")] = (qr[0] + 1, qr[1])  # once: the engine's
    search = expected.get(("ADD_SCENE_SEARCH", None), (0, 0))
    expected[("ADD_SCENE_SEARCH", None)] = (search[0] + 1, search[1])  # the sync's
    gone_scene = next(k for k in scenes if k[0] == (listed[0].get("subscribe_scene") or
                                                    "unknown"))  # fmt: skip
    was = expected.get(gone_scene, (0, 0))
    expected[gone_scene] = (was[0], was[1] + 1)
    assert counted == expected
    again = account("follower", "sync", "--full")
    assert again.exit_code == 0 and _followers(account) == expected  # nothing twice
