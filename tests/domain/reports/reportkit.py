"""Small stores with exactly known traffic, made through the real engine, for the reports."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bxtest import ORIGINAL_ID

from bankwx_cli.clock import FixedClock
from bankwx_cli.context import AppContext
from bankwx_cli.domain import reports, routing
from bankwx_cli.wechat import callback

FOLLOWER = "oFollower0000000000000000001"


def utc(text: str) -> datetime:
    """A UTC time from ``YYYY-MM-DDTHH:MM`` (given in UTC)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def shanghai(text: str) -> datetime:
    """A time given in the bank's time, as UTC."""
    from bankwx_cli.clock import parse_user_time

    return parse_user_time(text)


class Traffic:
    """Sends messages and events through the real engine at chosen times."""

    def __init__(self, app: AppContext, clock: FixedClock) -> None:
        self.app = app
        self.clock = clock
        self.engine = routing.Engine(app)
        self.engine.refresh(True)
        self._msg_id = 1000

    def _inbound(self, openid: str, body: str, msg_type: str) -> Any:
        self._msg_id += 1
        xml = (
            f"<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName><FromUserName><![CDATA["
            f"{openid}]]></FromUserName><CreateTime>{int(self.clock.time())}</CreateTime>"
            f"<MsgType><![CDATA[{msg_type}]]></MsgType>{body}"
        )
        if msg_type != "event":
            xml += f"<MsgId>{self._msg_id}</MsgId>"
        return callback.parse((xml + "</xml>").encode())

    def send(self, at: datetime, inbound: Any, account: str = "main") -> routing.Result:
        self.clock.set(at)
        self.engine.refresh(True)
        runtime = self.engine.runtime(account)
        return self.engine.process(runtime, inbound, routing.Ticket())

    def text(self, at: datetime, content: str, openid: str = FOLLOWER, **kw: Any) -> Any:
        inbound = self._inbound(openid, f"<Content><![CDATA[{content}]]></Content>", "text")
        return self.send(at, inbound, **kw)

    def image(self, at: datetime, openid: str = FOLLOWER, **kw: Any) -> Any:
        body = "<PicUrl><![CDATA[http://x/p.jpg]]></PicUrl><MediaId><![CDATA[m1]]></MediaId>"
        return self.send(at, self._inbound(openid, body, "image"), **kw)

    def event(
        self, at: datetime, event: str, key: str = "", openid: str = FOLLOWER, **kw: Any
    ) -> Any:
        body = f"<Event><![CDATA[{event}]]></Event>"
        if key:
            body += f"<EventKey><![CDATA[{key}]]></EventKey>"
        return self.send(at, self._inbound(openid, body, "event"), **kw)

    def retry_of(self, at: datetime, inbound: Any, account: str = "main") -> Any:
        return self.send(at, inbound, account)


def report(app: AppContext, name: str, **options: Any) -> list[dict[str, Any]]:
    """The report's rows as --format json gives them."""
    from bankwx_cli.commands._cli import to_row

    req = reports.request(app, name, **options)
    rows = [to_row(r) for r in reports.run(app, req).rows]
    return json.loads(json.dumps(rows, ensure_ascii=False))


def answered(app: AppContext, row: dict[str, Any]) -> int | None:
    """Write one quick answer as the receiver's group write does (``insert_answered_many``):
    row has the log's columns; its id, or None when its key exists."""
    (found,) = app.store.messages.insert_answered_many([(
        row["account"], row["openid"], row["msg_type"], row["event"], row["content"],
        row["msg_id"], row["dedup_key"], row["route"], row["outcome"], row["handling_ms"],
        row["at"], row["claimed_at"], row.get("out_type"), row.get("out_content"),
    )], [row["reply"]])  # fmt: skip
    return found
