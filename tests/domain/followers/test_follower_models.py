"""The JSON shapes of the follower, tag and sync models: scripts and the outside checks read
these keys, in this order."""

from __future__ import annotations

from bankwx_cli.models.followers import (
    PROFILE_COLUMNS,
    Follower,
    FollowerRecord,
    Profile,
    SyncReport,
    SyncStatus,
    Tag,
    TagChange,
    Template,
    parse_profiles,
)
from bankwx_cli.models.templates import TemplateRecord

LIST_KEYS = [
    "openid",
    "subscribed",
    "subscribe_at",
    "subscribe_scene",
    "tags",
    "tag_ids",
    "blacklisted",
    "remark",
]
SHOW_KEYS = [
    *LIST_KEYS,
    "unsubscribe_at",
    "qr_scene",
    "qr_scene_str",
    "language",
    "unionid",
    "profile_at",
    "listed_at",
    "source",
]


def test_a_follower_lists_and_shows_with_stable_keys() -> None:
    follower = Follower("o" * 28, True, tag_ids=(2, 100), tags=("星标组", "VIP"))
    assert list(follower.to_json()) == LIST_KEYS
    assert follower.to_json()["tags"] == ["星标组", "VIP"]
    assert follower.to_json()["tag_ids"] == [2, 100]
    record = FollowerRecord("o" * 28, False, source="engine", unsubscribe_at="2026-12-01T00Z")
    assert list(record.to_json()) == SHOW_KEYS
    assert record.to_json()["source"] == "engine"


def test_tags_and_tag_changes_keep_their_keys() -> None:
    assert Tag(2, "星标组", 3, "2026-12-01T00:00:00Z").to_json() == {
        "id": 2,
        "name": "星标组",
        "count": 3,
        "system": True,
        "synced_at": "2026-12-01T00:00:00Z",
    }
    assert not Tag(100, "VIP").system
    change = TagChange("rename", "main", "VIP", 100, "VIP客户", 7)
    assert list(change.to_json()) == ["action", "account", "name", "tag_id", "new_name", "members"]
    assert change.headline(done=False) == "Would rename tag 'VIP' (id 100) to 'VIP客户'."


def test_sync_report_and_status_keys() -> None:
    report = SyncReport(
        "main", "full", False, 3, 25_000, 25_000, 25_000, 0, 2, 3, 25_000, 25_000, 1.5
    )
    assert list(report.to_json()) == [
        "account",
        "kind",
        "resumed",
        "pages",
        "listed",
        "new",
        "profiles",
        "unsubscribed",
        "blacklisted",
        "tags",
        "total",
        "subscribed",
        "seconds",
    ]
    assert list(SyncStatus("main", "never synced").to_json()) == [
        "account",
        "phase",
        "kind",
        "pages",
        "listed",
        "profiles",
        "started_at",
        "finished_at",
        "last_full_at",
        "known",
        "subscribed",
        "without_profile",
    ]


def test_a_template_shows_the_fields_its_content_needs() -> None:
    content = "{{first.DATA}}\n金额：{{amount.DATA}}\n{{remark.DATA}}"
    listed = Template("main", "T1", "到账通知", content, synced_at="2026-12-01T00:00:00Z")
    assert list(listed.to_json()) == [
        "account",
        "template_id",
        "title",
        "content",
        "example",
        "primary_industry",
        "deputy_industry",
        "synced_at",
    ]
    shown = TemplateRecord(**listed.to_json()).to_json()
    assert shown["fields"] == ["first", "amount", "remark"]
    assert list(shown)[-2:] == ["fields", "field_rules"]


def test_wechat_answers_are_parsed_once_into_models() -> None:
    """Tags and profiles reach the store as models: the shapes of tags/get and user/info."""
    tag = Tag.from_wechat({"id": 100, "name": "VIP", "count": 3}, "2026-12-01T00:00:00.000000Z")
    assert tag == Tag(100, "VIP", 3, "2026-12-01T00:00:00.000000Z")
    assert Tag.from_wechat({"id": "2", "name": "星标组"}, "").count == 0
    info = {
        "subscribe": 1,
        "openid": "o1",
        "language": "zh_CN",
        "subscribe_time": 1700000000,
        "unionid": "u1",
        "remark": "",
        "tagid_list": [100, "2", "x", -1],
        "subscribe_scene": "ADD_SCENE_QR_CODE",
        "qr_scene": 0,
        "qr_scene_str": "",
    }
    profile = Profile.from_wechat(info)
    # the stored columns' values, as WeChat sent them (the store's SQL converts them)
    assert profile[:PROFILE_COLUMNS] == (
        "o1", 1700000000, "ADD_SCENE_QR_CODE", 0, "", "zh_CN", "", "u1",
    )  # fmt: skip
    assert profile.subscribed and profile.tag_ids == (100, 2, -1)
    left = Profile.from_wechat({"subscribe": 0, "openid": "o2"})
    assert not left.subscribed and left.tag_ids == () and left.language is None
    # an item without an openid names no follower
    assert [p.openid for p in parse_profiles([info, {"subscribe": 1}, {"openid": ""}])] == ["o1"]
