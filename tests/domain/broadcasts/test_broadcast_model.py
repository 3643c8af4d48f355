"""The Broadcast model: the store gives back what it was given, and the JSON shape stays
the one scripts parse (keys and their order, as the store's sorted JSON kept them)."""

from __future__ import annotations

import json
from dataclasses import replace

from bxtest import Bankwx

from bankwx_cli.context import AppContext
from bankwx_cli.domain import broadcasts
from bankwx_cli.models.broadcasts import (
    Audience,
    Broadcast,
    BroadcastStatus,
    BroadcastUpdate,
    MassJob,
    MediaContent,
    TemplateContent,
    TextContent,
)
from bankwx_cli.settings import from_environment

SHOW_KEYS = [
    "id",
    "account",
    "title",
    "state",
    "content_kind",
    "content",
    "audience_kind",
    "audience",
    "audience_size",
    "scheduled_at",
    "created_by",
    "approved_by",
    "reject_reason",
    "error",
    "retry_at",
    "units",
]


def _draft(content: TextContent | MediaContent | TemplateContent, audience: Audience) -> Broadcast:
    return Broadcast(
        id=0,
        account="main",
        title="t",
        content=content,
        audience=audience,
        state="draft",
        content_hash="h",
        created_by="alice",
        created_at="2026-01-01T00:00:00.000000Z",
        updated_at="2026-01-01T00:00:00.000000Z",
        scheduled_at="2026-12-01T01:30:00.000000Z",
    )


def test_the_store_gives_back_each_content_and_audience(with_account: Bankwx) -> None:
    cases = [
        (TextContent("通知"), Audience("all")),
        (MediaContent("image", "M1"), Audience("tag", tag="VIP", tag_id=100)),
        (MediaContent("news", "N1"), Audience("openids", file="ids.txt", count=3)),
        (
            TemplateContent("T1", {"remark": {"value": "b"}, "first": {"value": "a"}}, "提醒"),
            Audience("filter", tag="VIP", scene="ADD_SCENE_QR_CODE", until="2026-02-01"),
        ),
    ]
    app = AppContext(from_environment())
    try:
        for content, audience in cases:
            draft = _draft(content, audience)
            with app.store.transaction():
                broadcast_id = app.store.broadcasts.insert(draft)
                job = MassJob("send success", 3, 3, 3, 0)
                app.store.broadcasts.update(broadcast_id, BroadcastUpdate(jobs={"1001": job}))
            stored = app.store.broadcasts.get(broadcast_id)
            assert stored == replace(draft, id=broadcast_id, jobs={"1001": job})
            shown = stored.to_json()
            assert list(shown) == SHOW_KEYS
            assert shown["content_kind"] == content.kind
            assert shown["audience_kind"] == audience.kind
            assert shown["scheduled_at"] == "2026-12-01T01:30:00.000000Z"  # ISO 8601 UTC
            # the content and the audience as the store's JSON (sorted keys) gave them before
            for key in ("content", "audience"):
                assert json.dumps(shown[key]) == json.dumps(shown[key], sort_keys=True)
            with_estimate = broadcasts.describe(app, stored, with_estimate=True).to_json()
            assert list(with_estimate) == [*SHOW_KEYS, "allowance_warning"]
    finally:
        app.close()


def test_a_change_set_writes_only_the_fields_it_gives(with_account: Bankwx) -> None:
    app = AppContext(from_environment())
    try:
        draft = _draft(TextContent("通知"), Audience("all"))
        job = MassJob("send success", 3, 3, 3, 0)
        with app.store.transaction():
            broadcast_id = app.store.broadcasts.insert(draft)
            changed = BroadcastUpdate(
                state="approved", approved_by="bob", error="busy", retry_at="2026-12-01T02:00Z"
            )
            assert app.store.broadcasts.update(broadcast_id, changed)
            app.store.broadcasts.update(broadcast_id, BroadcastUpdate(jobs={"1001": job}))
            # expect_state: nothing changes once the broadcast has left that state
            assert not app.store.broadcasts.update(
                broadcast_id, BroadcastUpdate(state="sent"), expect_state="sending"
            )
        stored = app.store.broadcasts.get(broadcast_id)
        assert stored == replace(
            draft,
            id=broadcast_id,
            state="approved",
            approved_by="bob",
            error="busy",
            retry_at="2026-12-01T02:00Z",
            jobs={"1001": job},
        )
        with app.store.transaction():  # None removes a results key and keeps the others
            app.store.broadcasts.update(broadcast_id, BroadcastUpdate(error=None, approved_by=None))
        stored = app.store.broadcasts.get(broadcast_id)
        assert (stored.error, stored.approved_by) == (None, None)
        assert (stored.retry_at, stored.jobs, stored.state) == (
            "2026-12-01T02:00Z",
            {"1001": job},
            "approved",
        )
    finally:
        app.close()


def test_the_shapes_scripts_parse() -> None:
    b = _draft(
        TemplateContent("T1", {"b": {"value": "2"}, "a": {"value": "1"}}, "提醒"),
        Audience("openids", file="ids.txt", count=2),
    )
    shown = replace(b, id=7, units={"sent": 2}, approved_by="bob").to_json()
    assert shown["content"] == {
        "data": {"a": {"value": "1"}, "b": {"value": "2"}},
        "template_id": "T1",
        "title": "提醒",
    }
    assert list(shown["content"]["data"]) == ["a", "b"]
    assert list(shown["audience"]) == ["count", "file"]
    assert shown["units"] == {"sent": 2} and shown["approved_by"] == "bob"
    assert shown["reject_reason"] is None and "allowance_warning" not in shown
    status = BroadcastStatus(
        id=7,
        state="sent",
        audience_size=2,
        units={"sent": 2},
        jobs={"1": MassJob("send success", 2, 2, 2, 0), "2": MassJob("err", 1, 1, 0, 1)},
        template_results={},
    ).to_json()
    assert status["wechat_total"] == 3 and status["wechat_sent"] == 2
    assert status["wechat_errors"] == 1 and status["wechat_filtered"] == 3
    assert list(status["jobs"]["1"]) == ["errors", "filtered", "sent", "status", "total"]
    assert Audience("all").to_json() == {} and TextContent("x").to_json() == {"text": "x"}
