"""Broadcasts, account templates, and the per-follower mass-message receipts (estimates).

A broadcast's ``results`` column is a JSON object: ``jobs`` (WeChat's job-finished counts by
msg id), ``error`` (why its send failed, or why the last attempt did not finish) and
``retry_at`` (ISO time, UTC: an approved broadcast handed back for a later attempt is not due
before it). Each key is written on its own (``json_set``/``json_remove``), so recording a job's
counts never loses an error, nor the other way round.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from bankwx_cli.models.broadcasts import (
    Audience,
    AudienceFilter,
    Broadcast,
    BroadcastUpdate,
    MassJob,
    MediaContent,
    TemplateContent,
    TextContent,
    broadcast_content,
)
from bankwx_cli.models.changes import given
from bankwx_cli.models.followers import Template
from bankwx_cli.storage.db import Database


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _broadcast(row: Any) -> Broadcast:
    data = dict(row)
    results = json.loads(data["results"]) if data.get("results") else {}
    jobs = {
        str(msgid): MassJob(
            status=str(job.get("status", "")),
            total=int(job.get("total", 0)),
            filtered=int(job.get("filtered", 0)),
            sent=int(job.get("sent", 0)),
            errors=int(job.get("errors", 0)),
        )
        for msgid, job in dict(results.get("jobs", {})).items()
    }
    content = json.loads(data["content"]) if data.get("content") else {}
    audience = json.loads(data["audience"]) if data.get("audience") else {}
    return Broadcast(
        id=int(data["id"]),
        account=data["account"],
        title=data["title"],
        content=broadcast_content(data["content_kind"], content),
        audience=Audience.from_json(data["audience_kind"], audience),
        state=data["state"],
        content_hash=data["content_hash"],
        created_by=data["created_by"],
        created_at=data["created_at"],
        updated_at=data["updated_at"],
        audience_size=int(data["audience_size"]),
        scheduled_at=data["scheduled_at"],
        approved_hash=data["approved_hash"],
        submitted_by=data["submitted_by"],
        submitted_at=data["submitted_at"],
        approved_by=data["approved_by"],
        approved_at=data["approved_at"],
        rejected_by=data["rejected_by"],
        rejected_at=data["rejected_at"],
        reject_reason=data["reject_reason"],
        started_at=data["started_at"],
        expanded_at=data["expanded_at"],
        finished_at=data["finished_at"],
        cancelled_by=data["cancelled_by"],
        cancelled_at=data["cancelled_at"],
        jobs=jobs,
        error=results.get("error"),
        retry_at=results.get("retry_at"),
    )


_RESULTS = ("jobs", "error", "retry_at")  # the Broadcast fields kept in ``results``


def _columns(values: Mapping[str, object]) -> dict[str, object]:
    """Column values: a content and an audience as the JSON the store keeps (the fields kept
    in ``results`` are left to ``_results``)."""
    row: dict[str, object] = {}
    for key, value in values.items():
        if key in _RESULTS:
            continue
        if isinstance(value, TextContent | MediaContent | TemplateContent | Audience):
            row[key] = _dump(value.to_json())
        else:
            row[key] = value
    return row


def _results(values: Mapping[str, object]) -> tuple[str, dict[str, object]]:
    """The SQL expression that writes the given ``results`` fields into the column (each key on
    its own; None removes it), and its parameters."""
    expr = "results"
    params: dict[str, object] = {}
    for key in _RESULTS:
        if key not in values:
            continue
        value = values[key]
        if key == "jobs" and isinstance(value, Mapping):
            value = {k: j.to_json() for k, j in value.items()}
        if value is None:
            expr = f"json_remove({expr}, '$.{key}')"
        else:
            expr = f"json_set({expr}, '$.{key}', json(:_r_{key}))"
            params[f"_r_{key}"] = _dump(value)
    return expr, params


# What the store keeps of a broadcast (the rest is the domain's, added when it is shown).
_STORED = tuple(f.name for f in fields(Broadcast) if f.name not in ("id", "units", "estimated",
                "allowance_warning", *_RESULTS))  # fmt: skip


class Broadcasts:
    def __init__(self, db: Database) -> None:
        self.db = db

    def insert(self, b: Broadcast) -> int:
        """Store a new broadcast (its id is the store's); returns the id."""
        row = _columns(
            {
                **{k: getattr(b, k) for k in _STORED},
                "content_kind": b.content_kind,
                "audience_kind": b.audience_kind,
            }
        )
        cols = ", ".join(row)
        params = ", ".join(f":{k}" for k in row)
        cursor = self.db.execute(f"INSERT INTO broadcasts ({cols}) VALUES ({params})", row)  # noqa: S608
        return int(cursor.lastrowid or 0)

    def get(self, broadcast_id: int) -> Broadcast | None:
        row = self.db.one("SELECT * FROM broadcasts WHERE id = :id", {"id": broadcast_id})
        return None if row is None else _broadcast(row)

    def all(self, account: str | None, state: str | None) -> list[Broadcast]:
        where, params = [], {}
        if account:
            where.append("account = :account")
            params["account"] = account
        if state:
            where.append("state = :state")
            params["state"] = state
        sql = "SELECT * FROM broadcasts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_broadcast(r) for r in self.db.all(sql + " ORDER BY id DESC", params)]

    def update(
        self, broadcast_id: int, change: BroadcastUpdate, expect_state: str | None = None
    ) -> bool:
        """Change the fields the change set gives; with expect_state only if the broadcast is
        still in that state."""
        values = given(change)
        row = _columns(values)
        sets = [f"{k} = :{k}" for k in row]
        results, result_params = _results(values)
        if result_params or results != "results":
            sets.append(f"results = {results}")
        sql = f"UPDATE broadcasts SET {', '.join(sets)} WHERE id = :_id"  # noqa: S608 - our names
        params = {**row, **result_params, "_id": broadcast_id}
        if expect_state:
            sql += " AND state = :_state"
            params["_state"] = expect_state
        return self.db.execute(sql, params).rowcount == 1

    def due(self, now_iso: str) -> list[Broadcast]:
        """Approved broadcasts whose time (and next attempt's time) has come, and sending ones
        (a killed run's)."""
        return [
            _broadcast(r)
            for r in self.db.all(
                "SELECT * FROM broadcasts WHERE (state = 'approved' AND (scheduled_at IS NULL OR "
                "scheduled_at <= :now) AND coalesce(json_extract(results, '$.retry_at'), '') "
                "<= :now) OR state = 'sending' ORDER BY id",
                {"now": now_iso},
            )
        ]

    def add_openids(self, broadcast_id: int, openids: list[str]) -> None:
        for openid in openids:
            self.db.execute(
                "INSERT INTO broadcast_openids (broadcast_id, openid) VALUES (:b, :o) "
                "ON CONFLICT (broadcast_id, openid) DO NOTHING",
                {"b": broadcast_id, "o": openid},
            )

    def openids(self, broadcast_id: int) -> list[str]:
        return [
            r[0]
            for r in self.db.all(
                "SELECT openid FROM broadcast_openids WHERE broadcast_id = :b ORDER BY openid",
                {"b": broadcast_id},
            )
        ]

    def audience(self, account: str, where: AudienceFilter) -> list[str]:
        return audience(self.db, account, where)

    def find_by_source_msgid(self, account: str, msgid: str) -> int | None:
        value = self.db.scalar(
            "SELECT source FROM outbox WHERE account = :a AND wechat_msgid = :m",
            {"a": account, "m": msgid},
        )
        if isinstance(value, str) and value.startswith("broadcast:"):
            return int(value.split(":", 1)[1])
        return None

    # --- the monthly allowance estimate --------------------------------------------------------

    def add_receipts(self, account: str, month: str, openids: list[str]) -> None:
        for openid in openids:
            self.db.execute(
                "INSERT INTO mass_receipts (account, month, openid, receipts) VALUES "
                "(:a, :m, :o, 1) ON CONFLICT (account, month, openid) DO UPDATE SET "
                "receipts = mass_receipts.receipts + 1",
                {"a": account, "m": month, "o": openid},
            )

    def saturated(self, account: str, month: str, openids: list[str], limit: int) -> int:
        """How many of openids already had limit mass messages this month (bankwx's own)."""
        count = 0
        for start in range(0, len(openids), 500):
            chunk = openids[start : start + 500]
            names = {f"o{i}": o for i, o in enumerate(chunk)}
            marks = ", ".join(f":{k}" for k in names)
            count += int(
                self.db.scalar(
                    "SELECT count(*) FROM mass_receipts WHERE account = :a AND month = :m "  # noqa: S608
                    f"AND receipts >= :limit AND openid IN ({marks})",
                    {"a": account, "m": month, "limit": limit, **names},
                )
                or 0
            )
        return count


class Templates:
    def __init__(self, db: Database) -> None:
        self.db = db

    def replace_all(self, account: str, templates: Sequence[Template]) -> None:
        """Make these the account's templates (WeChat's listing; each its ``synced_at``)."""
        self.db.execute("DELETE FROM templates WHERE account = :a", {"a": account})
        for t in templates:
            self.db.execute(
                "INSERT INTO templates (account, template_id, title, content, example, "
                "primary_industry, deputy_industry, synced_at) VALUES (:account, :template_id, "
                ":title, :content, :example, :primary_industry, :deputy_industry, :synced_at)",
                {**t.to_json(), "account": account},
            )

    def all(self, account: str) -> list[Template]:
        return [
            _template(r)
            for r in self.db.all(
                "SELECT * FROM templates WHERE account = :a ORDER BY title", {"a": account}
            )
        ]

    def get(self, account: str, template_id: str) -> Template | None:
        row = self.db.one(
            "SELECT * FROM templates WHERE account = :a AND template_id = :t",
            {"a": account, "t": template_id},
        )
        return None if row is None else _template(row)


def _template(row: Any) -> Template:
    """The model of a stored row (its columns, whatever others the table gains)."""
    return Template(**{f.name: row[f.name] for f in fields(Template)})


def audience(db: Database, account: str, conditions: AudienceFilter) -> list[str]:
    """Subscribed, not blacklisted synced followers matching the conditions, ordered by
    openid."""
    where = ["f.account = :account", "f.subscribed = 1", "f.blacklisted = 0"]
    params: dict[str, Any] = {"account": account}
    if conditions.tag_id is not None:
        where.append(
            "EXISTS (SELECT 1 FROM follower_tags t WHERE t.account = f.account "
            "AND t.openid = f.openid AND t.tag_id = :tag_id)"
        )
        params["tag_id"] = conditions.tag_id
    if conditions.scene:
        where.append("f.subscribe_scene = :scene")
        params["scene"] = conditions.scene
    if conditions.since:
        where.append("f.subscribe_at >= :since")
        params["since"] = conditions.since
    if conditions.until:
        where.append("f.subscribe_at < :until")
        params["until"] = conditions.until
    clauses = " AND ".join(where)  # fixed clauses; values are bound parameters
    sql = f"SELECT f.openid FROM followers f WHERE {clauses} ORDER BY f.openid"  # noqa: S608
    return [r[0] for r in db.all(sql, params)]
