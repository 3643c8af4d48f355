"""Numbered schema migrations, applied in order on open, each in its own transaction.

Never edit a migration once released; add a new one. A store that has applied a migration this
code does not know is newer than the code and is refused. ``tests/storage/test_migrations.py``
holds the statements of m0001 to m0008 as first released and checks that these functions make
the same schema, column for column and index for index.

Tables are created and changed with sqlite-utils (``create``, ``create_index``,
``add_column``, ``transform``), taken from ``db.utils``: imported on first use, never by a
module-level ``import sqlite_utils`` here, because opening a store whose migrations are all
applied must stay cheap (every command does it). A piece that sqlite-utils cannot express
exactly stays a statement, with the reason beside it; today that is a UNIQUE constraint inside
CREATE TABLE (``create`` has no parameter for one, and a separate unique index would be a
different index in the schema than the constraint released).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from bankwx_cli.errors import StoreError
from bankwx_cli.storage.db import Database

Migration = Callable[[Database], None]

# Column types, as sqlite-utils names them (it maps float to REAL, bytes to BLOB).
TEXT, INTEGER, REAL, BLOB = str, int, float, bytes


def m0001_foundation(db: Database) -> None:
    utils = db.utils
    utils.table("meta").create({"key": TEXT, "value": TEXT}, pk="key", not_null={"value"})
    # accounts, orgs, operators: their UNIQUE (name) constraint is not expressible (see above).
    db.execute(
        """CREATE TABLE accounts (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            appid TEXT NOT NULL,
            secret_enc BLOB NOT NULL,
            token_enc BLOB NOT NULL,
            aes_key_enc BLOB,
            original_id TEXT NOT NULL,
            type TEXT NOT NULL,
            mode TEXT NOT NULL,
            token_mode TEXT NOT NULL DEFAULT 'stable',
            welcome TEXT,
            default_reply TEXT,
            settings TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE orgs (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            parent_id INTEGER REFERENCES orgs(id),
            created_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE operators (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL,
            org_id INTEGER REFERENCES orgs(id),
            accounts TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )
    audit = ("at", "operator", "action", "target", "params", "outcome", "prev_hash", "hash")
    utils.table("audit").create(
        {"id": INTEGER, **dict.fromkeys(audit, TEXT)}, pk="id", not_null=set(audit)
    )
    utils.table("audit").create_index(["at"], index_name="audit_at")


def m0002_wechat(db: Database) -> None:
    utils = db.utils
    utils.table("tokens").create(
        {
            "appid": TEXT,
            "token_enc": BLOB,
            "expires_at": REAL,
            "fetched_at": REAL,
            "lease_holder": TEXT,
            "lease_until": REAL,
        },
        pk="appid",
    )
    utils.table("api_calls").create(
        {
            "appid": TEXT,
            "endpoint": TEXT,
            "bucket": TEXT,
            "outcome": TEXT,
            "errcode": INTEGER,
            "calls": INTEGER,
            "total_ms": REAL,
            "max_ms": REAL,
        },
        pk=("appid", "endpoint", "bucket", "outcome", "errcode"),
        not_null={
            "appid",
            "endpoint",
            "bucket",
            "outcome",
            "errcode",
            "calls",
            "total_ms",
            "max_ms",
        },
        defaults={"errcode": 0},
    )


def m0003_engine(db: Database) -> None:
    utils = db.utils
    messages = utils.table("messages")
    messages.create(
        {
            "id": INTEGER,
            "account": TEXT,
            "openid": TEXT,
            "direction": TEXT,
            "msg_type": TEXT,
            "event": TEXT,
            "content": TEXT,
            "msg_id": TEXT,
            "dedup_key": TEXT,
            "state": TEXT,
            "reply": BLOB,
            "route": TEXT,
            "outcome": TEXT,
            "handling_ms": REAL,
            "deliveries": INTEGER,
            "in_reply_to": INTEGER,
            "at": TEXT,
            "claimed_at": REAL,
        },
        pk="id",
        not_null={
            "account",
            "openid",
            "direction",
            "msg_type",
            "event",
            "content",
            "msg_id",
            "state",
            "route",
            "outcome",
            "deliveries",
            "at",
        },
        defaults={
            "event": "",
            "content": "",
            "msg_id": "",
            "state": "done",
            "route": "",
            "outcome": "",
            "deliveries": 1,
        },
    )
    messages.create_index(["account", "dedup_key"], index_name="messages_dedup", unique=True)
    messages.create_index(["account", "at"], index_name="messages_at")
    messages.create_index(["account", "openid", "at"], index_name="messages_openid")
    rules = utils.table("keyword_rules")
    rules.create(
        {
            "id": INTEGER,
            "account": TEXT,
            "pattern": TEXT,
            "match": TEXT,
            "priority": INTEGER,
            "reply_kind": TEXT,
            "reply": TEXT,
            "action": TEXT,
            "arg": TEXT,
            "created_by": TEXT,
            "created_at": TEXT,
        },
        pk="id",
        not_null={"account", "pattern", "match", "priority", "created_by", "created_at"},
        defaults={"priority": 0},
    )
    rules.create_index(["account"], index_name="keyword_rules_account")
    utils.table("follower_state").create(
        {
            "account": TEXT,
            "openid": TEXT,
            "subscribed": INTEGER,
            "subscribe_at": TEXT,
            "unsubscribe_at": TEXT,
            "scene": TEXT,
            "latitude": REAL,
            "longitude": REAL,
            "location_at": TEXT,
            "last_message_at": TEXT,
        },
        pk=("account", "openid"),
        not_null={"account", "openid"},
    )


def m0004_outbox(db: Database) -> None:
    utils = db.utils
    # The table's UNIQUE (account, idempotency_key) constraint is not expressible (see above).
    db.execute(
        """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            account TEXT NOT NULL,
            kind TEXT NOT NULL,
            lane TEXT NOT NULL,
            lane_rank INTEGER NOT NULL,
            openid TEXT,
            payload TEXT NOT NULL,
            idempotency_key TEXT NOT NULL,
            source TEXT,
            state TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            first_attempt_at REAL,
            claimed_by TEXT,
            wechat_msgid TEXT,
            delivery_status TEXT,
            last_error TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (account, idempotency_key)
        )"""
    )
    outbox = utils.table("outbox")
    outbox.create_index(["state", "lane_rank", "next_attempt_at"], index_name="outbox_due")
    outbox.create_index(["source", "state"], index_name="outbox_source")
    outbox.create_index(["account", "wechat_msgid"], index_name="outbox_msgid")
    utils.table("outbox_pauses").create(
        {"account": TEXT, "lane": TEXT, "paused_by": TEXT, "paused_at": TEXT},
        pk=("account", "lane"),
        not_null={"account", "lane", "paused_by", "paused_at"},
    )
    utils.table("rate_budget").create(
        {"account": TEXT, "endpoint": TEXT, "window": INTEGER, "used": INTEGER},
        pk=("account", "endpoint"),
        not_null={"account", "endpoint", "window", "used"},
    )
    utils.table("dispatchers").create(
        {"holder": TEXT, "host": TEXT, "pid": INTEGER, "heartbeat_at": REAL},
        pk="holder",
        not_null={"host", "pid", "heartbeat_at"},
    )


def m0005_menus(db: Database) -> None:
    # The table's UNIQUE (account, version) constraint is not expressible (see above).
    db.execute(
        """CREATE TABLE menu_versions (
            id INTEGER PRIMARY KEY,
            account TEXT NOT NULL,
            version INTEGER NOT NULL,
            state TEXT NOT NULL,
            content TEXT NOT NULL,
            hash TEXT NOT NULL,
            source TEXT NOT NULL DEFAULT '',
            rollback_of INTEGER,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            decided_by TEXT,
            decided_at TEXT,
            reason TEXT,
            deployed_by TEXT,
            deployed_at TEXT,
            wechat_answer TEXT,
            note TEXT NOT NULL DEFAULT '',
            updated_at TEXT NOT NULL,
            UNIQUE (account, version)
        )"""
    )
    db.utils.table("menu_versions").create_index(
        ["account", "state"], index_name="menu_versions_state"
    )


def m0006_followers(db: Database) -> None:
    utils = db.utils
    followers = utils.table("followers")
    followers.create(
        {
            "account": TEXT,
            "openid": TEXT,
            "subscribed": INTEGER,
            "subscribe_at": TEXT,
            "subscribe_scene": TEXT,
            "qr_scene": INTEGER,
            "qr_scene_str": TEXT,
            "language": TEXT,
            "remark": TEXT,
            "unionid": TEXT,
            "blacklisted": INTEGER,
            "unsubscribe_at": TEXT,
            "profile_at": TEXT,
            "listed_at": TEXT,
            "seen_pass": INTEGER,
            "list_seq": INTEGER,
        },
        pk=("account", "openid"),
        not_null={
            "account",
            "openid",
            "subscribed",
            "blacklisted",
            "listed_at",
            "seen_pass",
            "list_seq",
        },
        defaults={"subscribed": 1, "blacklisted": 0, "seen_pass": 0, "list_seq": 0},
    )
    followers.create_index(["account", "list_seq"], index_name="followers_list_seq")
    follower_tags = utils.table("follower_tags")
    follower_tags.create(
        {"account": TEXT, "tag_id": INTEGER, "openid": TEXT},
        pk=("account", "tag_id", "openid"),
        not_null={"account", "tag_id", "openid"},
    )
    follower_tags.create_index(["account", "openid"], index_name="follower_tags_openid")
    utils.table("tags").create(
        {"account": TEXT, "tag_id": INTEGER, "name": TEXT, "count": INTEGER, "synced_at": TEXT},
        pk=("account", "tag_id"),
        not_null={"account", "tag_id", "name", "count", "synced_at"},
        defaults={"count": 0},
    )
    counts = ("pages", "listed", "new", "total", "profiles", "unsubscribed")
    utils.table("follower_sync").create(
        {
            "account": TEXT,
            "pass_no": INTEGER,
            "kind": TEXT,
            "phase": TEXT,
            "cursor": TEXT,
            "tail": TEXT,
            **dict.fromkeys(counts, INTEGER),
            "started_at": TEXT,
            "updated_at": TEXT,
            "finished_at": TEXT,
            "last_full_at": TEXT,
            "holder": TEXT,
            "heartbeat_at": REAL,
            "first_load": INTEGER,
        },
        pk="account",
        not_null={
            "pass_no",
            "kind",
            "phase",
            "cursor",
            "tail",
            "pages",
            "listed",
            "new",
            "profiles",
            "unsubscribed",
            "first_load",
        },
        defaults={
            "pass_no": 0,
            "kind": "full",
            "phase": "done",
            "cursor": "",
            "tail": "",
            "pages": 0,
            "listed": 0,
            "new": 0,
            "profiles": 0,
            "unsubscribed": 0,
            "first_load": 0,
        },
    )
    utils.table("follower_staging").create(
        {"account": TEXT, "pass_no": INTEGER, "page": INTEGER, "openids": TEXT},
        pk=("account", "pass_no", "page"),
        not_null={"account", "pass_no", "page", "openids"},
    )


def m0007_broadcasts(db: Database) -> None:
    utils = db.utils
    who_when = ("submitted", "approved", "rejected")
    broadcasts = utils.table("broadcasts")
    broadcasts.create(
        {
            "id": INTEGER,
            "account": TEXT,
            "title": TEXT,
            "content_kind": TEXT,
            "content": TEXT,
            "audience_kind": TEXT,
            "audience": TEXT,
            "audience_size": INTEGER,
            "scheduled_at": TEXT,
            "state": TEXT,
            "content_hash": TEXT,
            "approved_hash": TEXT,
            "created_by": TEXT,
            "created_at": TEXT,
            **{f"{w}_{p}": TEXT for w in who_when for p in ("by", "at")},
            "reject_reason": TEXT,
            "started_at": TEXT,
            "expanded_at": TEXT,
            "finished_at": TEXT,
            "cancelled_by": TEXT,
            "cancelled_at": TEXT,
            "results": TEXT,
            "updated_at": TEXT,
        },
        pk="id",
        not_null={
            "account",
            "title",
            "content_kind",
            "content",
            "audience_kind",
            "audience",
            "audience_size",
            "state",
            "content_hash",
            "created_by",
            "created_at",
            "results",
            "updated_at",
        },
        defaults={"title": "", "audience_size": 0, "results": "{}"},
    )
    broadcasts.create_index(["state", "scheduled_at"], index_name="broadcasts_due")
    utils.table("broadcast_openids").create(
        {"broadcast_id": INTEGER, "openid": TEXT},
        pk=("broadcast_id", "openid"),
        not_null={"broadcast_id", "openid"},
        foreign_keys=[("broadcast_id", "broadcasts", "id")],
    )
    utils.table("templates").create(
        {
            "account": TEXT,
            "template_id": TEXT,
            "title": TEXT,
            "content": TEXT,
            "example": TEXT,
            "primary_industry": TEXT,
            "deputy_industry": TEXT,
            "synced_at": TEXT,
        },
        pk=("account", "template_id"),
        not_null={
            "account",
            "template_id",
            "title",
            "content",
            "example",
            "primary_industry",
            "deputy_industry",
            "synced_at",
        },
        defaults={"example": "", "primary_industry": "", "deputy_industry": ""},
    )
    utils.table("mass_receipts").create(
        {"account": TEXT, "month": TEXT, "openid": TEXT, "receipts": INTEGER},
        pk=("account", "month", "openid"),
        not_null={"account", "month", "openid", "receipts"},
    )


def m0008_lean_log(db: Database) -> None:
    """The conversation log without a per-follower index (issue 9).

    ``messages_openid`` put every callback's rows at a random place of a B-tree (followers
    write in no order): a page written to the WAL and checkpointed per message, most of the
    receiver's store cost. A follower's messages are found through ``messages_at``, which now
    carries the openid: appended in time order, and a lookup scans the index (not the table)
    from the newest entry back, to ``--since`` when given. ``follower_state.last_message_at``
    (written per message, read nowhere) goes for the same reason: the log holds it.
    """
    messages = db.utils.table("messages")
    messages.drop_index("messages_openid")
    messages.drop_index("messages_at")
    messages.create_index(["account", "at", "openid"], index_name="messages_at")
    # transform rebuilds the table (a copy, then a rename) where the release said ALTER TABLE
    # DROP COLUMN; the same schema, and it checks the store's foreign keys before it ends.
    db.utils.table("follower_state").transform(drop={"last_message_at"})


def m0009_identity(db: Database) -> None:
    """Real operator identity (issue 14): who ran each audited command, and where; and the
    operating-system users each operator may act as (``identity os``).

    ``audit.os_user`` and ``audit.host`` are empty on rows written before this migration (the
    audit chain hashes them only when set, so those rows keep their hashes). One login user
    acts as one operator (``os_user`` is the key): maker-checker then means two people.
    """
    audit = db.utils.table("audit")
    audit.add_column("os_user", TEXT, not_null_default="")
    audit.add_column("host", TEXT, not_null_default="")
    db.utils.table("operator_os_users").create(
        {"os_user": TEXT, "operator": TEXT, "created_at": TEXT},
        pk="os_user",
        not_null={"operator", "created_at"},
    )
    db.utils.table("operator_os_users").create_index(
        ["operator"], index_name="operator_os_users_operator"
    )


def m0010_agents(db: Database) -> None:
    """Agents (统一客服坐席): groups, agents and their groups, sessions (issue 15).

    An agent is an operator serving one account (a row per account), with a WeChat kf account
    when its replies are to carry one. Removed agents and groups stay (``removed_at``) for the
    sessions that name them; names are unique among the others. A follower has at most one
    waiting or open session per account: a partial unique index, so that a WeChat retry, a
    second 人工 or a crash before the outcome is written never queues twice.
    """
    utils = db.utils
    utils.table("agent_groups").create(
        {"id": int, "account": str, "name": str, "policy": str, "queue_timeout": int,
         "sla": int, "away_text": str, "timeout_text": str, "created_by": str,
         "created_at": str, "updated_at": str, "removed_at": str},
        pk="id", not_null={"account", "name", "policy", "queue_timeout", "sla", "created_by",
                           "created_at", "updated_at"},
        defaults={"policy": "round-robin", "queue_timeout": 300, "sla": 60},
    )  # fmt: skip
    db.execute(
        "CREATE UNIQUE INDEX agent_groups_name ON agent_groups (account, name) "
        "WHERE removed_at IS NULL"
    )
    utils.table("agents").create(
        {"id": int, "account": str, "name": str, "max_sessions": int, "kf_account": str,
         "nickname": str, "status": str, "status_at": str, "last_assigned_at": str,
         "created_by": str, "created_at": str, "updated_at": str, "removed_at": str},
        pk="id", not_null={"account", "name", "max_sessions", "status", "created_by",
                           "created_at", "updated_at"},
        defaults={"max_sessions": 5, "status": "offline"},
    )  # fmt: skip
    db.execute("CREATE UNIQUE INDEX agents_name ON agents (account, name) WHERE removed_at IS NULL")
    db.execute(
        "CREATE UNIQUE INDEX agents_kf_account ON agents (account, kf_account) "
        "WHERE kf_account IS NOT NULL AND removed_at IS NULL"
    )
    utils.table("agent_members").create(
        {"agent_id": int, "group_id": int},
        pk=("agent_id", "group_id"),
        foreign_keys=[("agent_id", "agents", "id"), ("group_id", "agent_groups", "id")],
    )
    utils.table("agent_members").create_index(["group_id"])
    utils.table("agent_sessions").create(
        {"id": int, "account": str, "openid": str, "group_id": int, "agent_id": int,
         "state": str, "entered_at": str, "opened_at": str, "closed_at": str,
         "close_reason": str, "first_response_at": str, "rating": int, "notice_at": str,
         "rating_asked_at": str},
        pk="id", not_null={"account", "openid", "state", "entered_at"},
        foreign_keys=[("group_id", "agent_groups", "id"), ("agent_id", "agents", "id")],
    )  # fmt: skip
    db.execute(
        "CREATE UNIQUE INDEX agent_sessions_live ON agent_sessions (account, openid) "
        "WHERE state IN ('waiting', 'open')"
    )
    utils.table("agent_sessions").create_index(["agent_id", "state"])
    utils.table("agent_sessions").create_index(["account", "openid", "rating_asked_at"])
    utils.table("agent_sessions").create_index(["group_id", "state", "entered_at"])
    utils.table("session_messages").create(
        {"id": int, "session_id": int, "at": str, "direction": str, "msg_type": str,
         "content": str, "sender": str},
        pk="id", not_null={"session_id", "at", "direction", "msg_type"},
        foreign_keys=[("session_id", "agent_sessions", "id")],
    )  # fmt: skip
    utils.table("session_messages").create_index(["session_id", "id"])
    # Hand-over: consecutive default replies per follower (written only where it is on).
    utils.table("agent_handover").create(
        {"account": str, "openid": str, "defaults": int},
        pk=("account", "openid"),
        not_null={"account", "openid", "defaults"},
    )
    # The customer-service window (protocol sheet §5.3): when the follower last opened one of
    # each kind, and their customer-service units found by (account, openid).
    utils.table("cs_windows").create(
        {"account": str, "openid": str, "kind": str, "opened_at": str},
        pk=("account", "openid", "kind"),
        not_null={"account", "openid", "kind", "opened_at"},
    )
    utils.table("outbox").create_index(["account", "openid", "created_at"],
                                       index_name="outbox_follower")  # fmt: skip


def m0011_backend(db: Database) -> None:
    """The bank's back-end (issue 16): one per store. Its URL, the API key sealed with the
    master key (purpose ``backend:api_key``), the paths of the client certificate, its key and
    the CA file trusted for the back-end's certificate, and the per-call timeout. ``id`` is
    always 1: a second row cannot be made."""
    db.utils.table("backend").create(
        {"id": INTEGER, "url": TEXT, "api_key_enc": BLOB, "client_cert": TEXT,
         "client_key": TEXT, "ca_file": TEXT, "timeout_ms": INTEGER, "updated_at": TEXT,
         "updated_by": TEXT},
        pk="id", not_null={"url", "timeout_ms", "updated_at", "updated_by"},
    )  # fmt: skip


def m0012_branches(db: Database) -> None:
    """Branches and ATMs (网点, issue 16), and their spatial index.

    ``seq`` is the row's key for the R*Tree; ``id`` is the bank's own, unique per account.
    ``branch_boxes`` is an R*Tree (a virtual table, which sqlite-utils cannot create) over the
    branches' points, kept in step by triggers, so that every way of writing a branch (the
    bulk import, one add, a removal) keeps it right. Its 32-bit bounds are rounded outwards by
    SQLite, so a box query never misses a point; exact distances come from ``branches``.
    """
    utils = db.utils
    utils.table("branches").create(
        {"seq": INTEGER, "account": TEXT, "id": TEXT, "name": TEXT, "type": TEXT, "lat": REAL,
         "lng": REAL, "address": TEXT, "phone": TEXT, "hours": TEXT, "services": TEXT,
         "created_at": TEXT, "updated_at": TEXT},
        pk="seq",
        not_null={"account", "id", "name", "type", "lat", "lng", "address", "phone", "hours",
                  "services", "created_at", "updated_at"},
        defaults={"address": "", "phone": "", "hours": "", "services": "[]"},
    )  # fmt: skip
    utils.table("branches").create_index(["account", "id"], index_name="branches_id", unique=True)
    utils.table("branches").create_index(["id"], index_name="branches_by_id")  # rows by id alone
    db.execute(
        "CREATE VIRTUAL TABLE branch_boxes USING rtree(seq, min_lat, max_lat, min_lng, max_lng)"
    )
    db.execute(
        "CREATE TRIGGER branches_box_insert AFTER INSERT ON branches BEGIN "
        "INSERT INTO branch_boxes (seq, min_lat, max_lat, min_lng, max_lng) "
        "VALUES (new.seq, new.lat, new.lat, new.lng, new.lng); END"
    )
    db.execute(
        "CREATE TRIGGER branches_box_update AFTER UPDATE OF lat, lng ON branches BEGIN "
        "UPDATE branch_boxes SET min_lat = new.lat, max_lat = new.lat, min_lng = new.lng, "
        "max_lng = new.lng WHERE seq = new.seq; END"
    )
    db.execute(
        "CREATE TRIGGER branches_box_delete AFTER DELETE ON branches BEGIN "
        "DELETE FROM branch_boxes WHERE seq = old.seq; END"
    )


def m0013_bindings(db: Database) -> None:
    """Followers bound to bank customers (issue 16): one customer per follower (the primary
    key), several followers per customer (found by customer for alerts). Only the card's last
    four digits are kept; never a full card number, never a phone number. ``bound_by`` is the
    operator, or ``follower:OPENID`` for a follower's own binding."""
    table = db.utils.table("bindings")
    table.create(
        {"account": TEXT, "openid": TEXT, "customer_id": TEXT, "card_last4": TEXT,
         "bound_at": TEXT, "bound_by": TEXT},
        pk=("account", "openid"),
        not_null={"account", "openid", "customer_id", "card_last4", "bound_at", "bound_by"},
    )  # fmt: skip
    table.create_index(["account", "customer_id"], index_name="bindings_customer")


def m0014_alerts(db: Database) -> None:
    """Alerts (消息提醒, issue 17): sources, rules, events, recipients, rejections.

    A source's API key is kept only as ``MasterKey.keyed_hash``; after ``rotate`` the old hash
    stays valid until ``old_key_until`` (Unix time). A rule is one per account and event type.
    An event is unique per source and its id, with the hash of its content (a re-post with
    other content is told so); its data and rendered texts are sealed like outbox payloads
    (``data``, '' once purged). A recipient is a bound follower of the event's customer and
    the outbox unit of its template message. A rejection (and a duplicate, for the counts)
    keeps no data: a rejected id stays free. A job result that arrives before the dispatcher
    recorded its msgid waits in ``alert_job_statuses``.
    Business times used for arithmetic (``*_ts``) are Unix times; ``*_at`` ISO text in UTC.
    """
    utils = db.utils
    utils.table("alert_sources").create(
        {"id": INTEGER, "name": TEXT, "account": TEXT, "key_hash": TEXT, "old_key_hash": TEXT,
         "old_key_until": REAL, "created_at": TEXT, "created_by": TEXT, "last_used_at": TEXT,
         "rotated_at": TEXT},
        pk="id", not_null={"name", "account", "key_hash", "created_at", "created_by"},
    )  # fmt: skip
    utils.table("alert_sources").create_index(["name"], index_name="alert_sources_name",
                                              unique=True)  # fmt: skip
    utils.table("alert_sources").create_index(["key_hash"], index_name="alert_sources_key")
    utils.table("alert_sources").create_index(["old_key_hash"], index_name="alert_sources_old")
    utils.table("alert_rules").create(
        {"id": INTEGER, "account": TEXT, "type": TEXT, "template_id": TEXT, "fields": TEXT,
         "label": TEXT, "url": TEXT, "sms": TEXT, "security": INTEGER, "created_at": TEXT,
         "created_by": TEXT},
        pk="id", not_null={"account", "type", "template_id", "fields", "label", "security",
                           "created_at", "created_by"},
        defaults={"security": 0},
    )  # fmt: skip
    utils.table("alert_rules").create_index(["account", "type"], index_name="alert_rules_type",
                                            unique=True)  # fmt: skip
    utils.table("alert_events").create(
        {"id": INTEGER, "source": TEXT, "event_id": TEXT, "account": TEXT, "type": TEXT,
         "customer_id": TEXT, "occurred_at": TEXT, "security": INTEGER, "amount_fen": INTEGER,
         "content_hash": TEXT, "data": BLOB, "state": TEXT, "reason": TEXT, "channel": TEXT,
         "sms_unit": INTEGER, "received_at": TEXT, "received_ts": REAL, "sent_at": TEXT},
        pk="id", not_null={"source", "event_id", "account", "type", "customer_id",
                           "content_hash", "state", "received_at", "received_ts"},
        defaults={"security": 0},
    )  # fmt: skip
    utils.table("alert_events").create_index(["source", "event_id"], index_name="alert_events_id",
                                             unique=True)  # fmt: skip
    utils.table("alert_events").create_index(["account", "received_at"],
                                             index_name="alert_events_received")  # fmt: skip
    utils.table("alert_recipients").create(
        {"event": INTEGER, "openid": TEXT, "unit_id": INTEGER, "state": TEXT, "reason": TEXT,
         "msgid": TEXT, "accepted_ts": REAL, "delivery": TEXT, "deferred": INTEGER},
        pk=("event", "openid"), not_null={"event", "openid", "state", "deferred"},
        defaults={"deferred": 0},
        foreign_keys=[("event", "alert_events", "id")],
    )  # fmt: skip
    utils.table("alert_recipients").create_index(["unit_id"], index_name="alert_recipients_unit")
    utils.table("alert_rejections").create(
        {"id": INTEGER, "source": TEXT, "account": TEXT, "event_id": TEXT, "status": TEXT,
         "reason": TEXT, "received_at": TEXT},
        pk="id", not_null={"source", "account", "status", "received_at"},
        defaults={"status": "rejected"},
    )  # fmt: skip
    utils.table("alert_rejections").create_index(
        ["account", "received_at"], index_name="alert_rejections_received"
    )
    # WeChat's job result on a template message whose msgid no unit holds yet (the dispatcher
    # had not recorded it): kept until the unit is recorded sent, then applied
    utils.table("alert_job_statuses").create(
        {"account": TEXT, "msgid": TEXT, "status": TEXT, "received_at": TEXT},
        pk=("account", "msgid"), not_null={"account", "msgid", "status", "received_at"},
    )  # fmt: skip
    utils.table("alert_job_statuses").create_index(["received_at"])


def m0015_alert_prefs(db: Database) -> None:
    """Followers' alert preferences (issue 17, 个人设置服务): the labels of the alert types they
    switched off (a JSON array), a minimum amount in fen (NULL: every amount) and quiet hours
    (``HH:MM-HH:MM``, Asia/Shanghai; NULL: none). A follower without a row has the defaults.
    And the back-end's SMS gateway (``backend set --sms-url``)."""
    db.utils.table("alert_preferences").create(
        {"account": TEXT, "openid": TEXT, "off_types": TEXT, "min_amount_fen": INTEGER,
         "quiet_hours": TEXT, "updated_at": TEXT},
        pk=("account", "openid"),
        not_null={"account", "openid", "off_types", "updated_at"},
        defaults={"off_types": "[]"},
    )  # fmt: skip
    # The SMS gateway of the back-end adapter (alerts' SMS fallback): its base URL and API key
    # (sealed, purpose ``backend:sms_api_key``); NULL: the back-end's URL and key.
    backend = db.utils.table("backend")
    backend.add_column("sms_url", TEXT)
    backend.add_column("sms_api_key_enc", BLOB)


def m0016_bind_sessions(db: Database) -> None:
    """The binding page's server-side state (issue 16): one row per browser that came back
    from WeChat's authorisation (``id`` a hash of its cookie's session id), and the failed
    attempts per follower and per card (``key``; a card by a keyed hash, never its number).
    Neither holds a full card number or a phone number."""
    sessions = db.utils.table("bind_sessions")
    sessions.create(
        {"id": TEXT, "account": TEXT, "openid": TEXT, "csrf": TEXT, "step": TEXT,
         "customer_id": TEXT, "card_last4": TEXT, "card_key": TEXT, "otp_request": TEXT,
         "otp_sent_at": REAL, "created_at": TEXT, "expires_at": REAL},
        pk="id",
        not_null={"id", "account", "openid", "csrf", "step", "created_at", "expires_at"},
    )  # fmt: skip
    sessions.create_index(["expires_at"], index_name="bind_sessions_expiry")
    db.utils.table("bind_attempts").create(
        {"key": TEXT, "window_start": REAL, "failures": INTEGER, "locked_until": REAL,
         "code_sent_at": REAL},
        pk="key",
        not_null={"key", "window_start", "failures"},
        defaults={"failures": 0},
    )  # fmt: skip


def _rollup_table(
    db: Database, name: str, keys: Mapping[str, type], counters: tuple[str, ...]
) -> None:
    """A roll-up table (m0017, m0018): its key columns the primary key, counters from 0."""
    columns: dict[str, type] = {**keys, **dict.fromkeys(counters, INTEGER)}
    db.utils.table(name).create(
        columns, pk=tuple(keys), not_null=set(columns), defaults=dict.fromkeys(counters, 0)
    )


def m0017_rollups(db: Database) -> None:
    """Hourly roll-ups for reports (issue 18): counters and histograms per account and UTC hour
    (``hour``: ``YYYY-MM-DDTHH:00:00Z``; an Asia/Shanghai hour is a UTC hour), with no openid and
    no text, in tables of their own that ``messages purge`` leaves whole. Histograms are rows
    of (bucket, n): log-spaced buckets (bankwx_cli/models/reports.py, ``bucket_of``).

    ``messages_unmatched`` is a partial index of the log's unmatched texts (the keywords
    report's ``--unmatched``). ``meta['rollups.backfill_to']`` is the point live counting
    begins: the conversation log's highest id when this migration ran; ``report backfill``
    counts the entries up to it.
    """
    utils = db.utils

    def table(name: str, keys: Mapping[str, type], counters: tuple[str, ...]) -> None:
        _rollup_table(db, name, keys, counters)

    messages = {"account": TEXT, "hour": TEXT, "msg_type": TEXT, "route": TEXT}
    table("rollup_messages", messages, ("inbound", "retries", "replied", "default_reply", "late",
          "late_no_window", "unanswered", "failed", "no_reply"))  # fmt: skip
    table("rollup_handling", {**messages, "bucket": INTEGER}, ("n",))
    table("rollup_followers", {"account": TEXT, "hour": TEXT, "scene": TEXT, "qr_scene": TEXT},
          ("new", "lost"))  # fmt: skip
    table("rollup_menus", {"account": TEXT, "hour": TEXT, "menu_version": INTEGER,
          "event": TEXT, "key": TEXT}, ("clicks",))  # fmt: skip
    table("rollup_keywords", {"account": TEXT, "hour": TEXT, "rule_id": INTEGER}, ("hits",))
    api = {"appid": TEXT, "hour": TEXT, "endpoint": TEXT}
    table("rollup_api", api, ("calls", "errors", "retries"))
    table("rollup_api_latency", {**api, "bucket": INTEGER}, ("n",))
    agents = {"account": TEXT, "hour": TEXT, "group_id": INTEGER, "agent_id": INTEGER}
    table("rollup_agents", agents, ("sessions", "abandoned", "sla_breaches", "ratings",
          "rating_sum"))  # fmt: skip
    table("rollup_agent_times", {**agents, "measure": TEXT, "bucket": INTEGER}, ("n",))
    # The keywords report's unmatched texts: inbound texts the default reply answered, found
    # without reading the rest of the log (appended in time order, as the log is).
    db.execute(
        "CREATE INDEX messages_unmatched ON messages (account, at) "
        "WHERE direction = 'in' AND msg_type = 'text' AND route = 'default'"
    )
    # a call's later attempts (retries, a token refresh's included), per minute as before
    utils.table("api_calls").add_column("retries", INTEGER, not_null_default=0)
    point = db.scalar("SELECT coalesce(max(id), 0) FROM messages")
    db.execute(
        "INSERT INTO meta (key, value) VALUES ('rollups.backfill_to', :v) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        {"v": str(point)},
    )


def m0018_alert_rollups(db: Database) -> None:
    """Alerts' roll-ups for the alerts report (issue 18), and the agents' SLA at opening.

    ``rollup_alerts`` counts, per account, UTC hour of the event's receipt and event type, what
    ``alert status`` counts (events, their recipients' states, rejections and duplicates);
    ``rollup_alert_latency`` the intake-to-acceptance latency of recipients not deferred, in
    log-spaced buckets. The alerts' storage writes them in the transaction of each change
    (storage/alerts.py); what the store held before is counted here, so live counting goes
    on from a whole count. A rejection or duplicate keeps the event's ``type`` (when it gave
    one) for its row.

    ``agent_sessions.sla``: the group's SLA (seconds) when the session opened, set by a
    trigger on every way a session opens (``opened_at`` set from NULL), so that editing the
    group later leaves the breaches already made as they were. Sessions opened before are
    given their group's SLA now, the best that is known of them.
    """
    from bankwx_cli.storage.reports import Rollups

    utils = db.utils

    def table(name: str, keys: Mapping[str, type], counters: tuple[str, ...]) -> None:
        _rollup_table(db, name, keys, counters)

    alerts = {"account": TEXT, "hour": TEXT, "event_type": TEXT}
    table("rollup_alerts", alerts, ("received", "rejected", "duplicates", "suppressed",
          "deferred", "sent_wechat", "delivered", "sms", "failed", "unknown",
          "sms_avoided"))  # fmt: skip
    table("rollup_alert_latency", {**alerts, "bucket": INTEGER}, ("n",))
    utils.table("alert_rejections").add_column("type", TEXT)
    Rollups(db).recount_alerts()
    utils.table("agent_sessions").add_column("sla", INTEGER)
    # sqlite-utils has no triggers: statements (as m0012's)
    db.execute(
        "CREATE TRIGGER agent_sessions_sla_open AFTER UPDATE OF opened_at ON agent_sessions "
        "WHEN NEW.opened_at IS NOT NULL AND OLD.opened_at IS NULL BEGIN "
        "UPDATE agent_sessions SET sla = (SELECT sla FROM agent_groups WHERE id = NEW.group_id) "
        "WHERE id = NEW.id; END"
    )
    db.execute(
        "CREATE TRIGGER agent_sessions_sla_insert AFTER INSERT ON agent_sessions "
        "WHEN NEW.opened_at IS NOT NULL BEGIN "
        "UPDATE agent_sessions SET sla = (SELECT sla FROM agent_groups WHERE id = NEW.group_id) "
        "WHERE id = NEW.id; END"
    )
    db.execute(
        "UPDATE agent_sessions SET sla = (SELECT sla FROM agent_groups g "
        "WHERE g.id = agent_sessions.group_id) WHERE opened_at IS NOT NULL"
    )


def m0019_partial_dedup(db: Database) -> None:
    """The log's de-duplication index holds only the rows that have a key (issue 19).

    Replies, and entries past the 48 hours their key is kept, have none (NULL): ``messages_dedup``
    kept an entry for each all the same, one index write more per reply on the receiver's
    busiest path. As a partial index (``WHERE dedup_key IS NOT NULL``) it holds the keys of the
    last two days only; ``INSERT ... ON CONFLICT`` names that condition, and a lookup by key
    (``dedup_key = ?``) implies it, so every query that used the index still does. Rebuilding
    the index reads the whole log once.
    """
    db.execute("DROP INDEX messages_dedup")
    db.execute(
        "CREATE UNIQUE INDEX messages_dedup ON messages (account, dedup_key) "
        "WHERE dedup_key IS NOT NULL"
    )


def m0020_replies_in_row(db: Database) -> None:
    """A message's passive reply is logged in the message's row (issue 19): ``out_type`` and
    ``out_content``, what the log shows of it (see ``bankwx_cli/storage/engine.py``). The
    replies logged before keep their rows; new rows take every other id from here on."""
    db.execute("ALTER TABLE messages ADD COLUMN out_type TEXT")
    db.execute("ALTER TABLE messages ADD COLUMN out_content TEXT")


MIGRATIONS: list[tuple[str, Migration]] = [
    ("m0001_foundation", m0001_foundation),
    ("m0002_wechat", m0002_wechat),
    ("m0003_engine", m0003_engine),
    ("m0004_outbox", m0004_outbox),
    ("m0005_menus", m0005_menus),
    ("m0006_followers", m0006_followers),
    ("m0007_broadcasts", m0007_broadcasts),
    ("m0008_lean_log", m0008_lean_log),
    ("m0009_identity", m0009_identity),
    ("m0010_agents", m0010_agents),
    ("m0011_backend", m0011_backend),
    ("m0012_branches", m0012_branches),
    ("m0013_bindings", m0013_bindings),
    ("m0014_alerts", m0014_alerts),
    ("m0015_alert_prefs", m0015_alert_prefs),
    ("m0016_bind_sessions", m0016_bind_sessions),
    ("m0017_rollups", m0017_rollups),
    ("m0018_alert_rollups", m0018_alert_rollups),
    ("m0019_partial_dedup", m0019_partial_dedup),
    ("m0020_replies_in_row", m0020_replies_in_row),
]


def schema_version(names: list[str]) -> int:
    return max((int(n[1:5]) for n in names), default=0)


def _applied(db: Database) -> list[str]:
    """The migrations the store has applied; refuse a store newer than this code."""
    applied = [r["name"] for r in db.all("SELECT name FROM _migrations ORDER BY name")]
    known = [name for name, _ in MIGRATIONS]
    unknown = [n for n in applied if n not in known]
    if unknown:
        raise StoreError(
            f"the store at {db.path} is from a newer bankwx (schema {schema_version(applied)}; "
            f"this bankwx knows up to {schema_version(known)}). Upgrade bankwx to use it."
        )
    return applied


def check_current(db: Database) -> None:
    """For a store opened read-only: refuse one newer than this code, or one that needs
    migrations (they cannot be applied)."""
    applied = _applied(db)
    missing = [name for name, _ in MIGRATIONS if name not in applied]
    if missing:
        raise StoreError(
            f"the store at {db.path} is read-only ({db.read_only}) and older than this bankwx "
            f"(schema {schema_version(applied)}; this bankwx needs "
            f"{schema_version([n for n, _ in MIGRATIONS])}). Open it once as a user who may "
            "write it, to bring it up to date."
        )


def apply(db: Database) -> None:
    """Apply what is missing; refuse a store newer than this code."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    applied = _applied(db)
    for name, migrate in MIGRATIONS:
        if name in applied:
            continue
        with db.transaction():
            if db.scalar("SELECT 1 FROM _migrations WHERE name = :n", {"n": name}):
                continue  # another process applied it meanwhile
            migrate(db)
            db.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (:n, :at)",
                {"n": name, "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")},
            )
