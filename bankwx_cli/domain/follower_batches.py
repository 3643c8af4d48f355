"""Tagging and the blacklist: followers tagged, untagged, blocked or unblocked on WeChat in
batches of WeChat's maximum size, each accepted batch mirrored in the store
(``bankwx follower tag|untag|block|unblock``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bankwx_cli.clock import iso
from bankwx_cli.domain import accounts, audit
from bankwx_cli.domain.followers import account_for, check_openids
from bankwx_cli.domain.permissions import require
from bankwx_cli.domain.tags import live_tag
from bankwx_cli.errors import ValidationError, WeChatError, WeChatUnreachableError
from bankwx_cli.models.batches import (
    BatchFailure,
    BatchReport,
    Progress,
    ProgressBar,
    no_progress,
)

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext
    from bankwx_cli.wechat.client import WeChatClient

MEMBER_CALLS = {
    "tag": "/cgi-bin/tags/members/batchtagging",
    "untag": "/cgi-bin/tags/members/batchuntagging",
    "block": "/cgi-bin/tags/members/batchblacklist",
    "unblock": "/cgi-bin/tags/members/batchunblacklist",
}
BATCH_SIZES = {"tag": 50, "untag": 50, "block": 20, "unblock": 20}  # WeChat's maximum a call
PERMISSIONS = {
    "tag": "follower.tag",
    "untag": "follower.tag",
    "block": "follower.block",
    "unblock": "follower.block",
}
TAGS_PER_FOLLOWER = 20
_BATCH_ADVICE = {
    40003: "an openid in the batch is not a follower of this account (wrong, unsubscribed "
    "or another account's); nothing in the batch changed",
    45059: "a follower in the batch would hold more than 20 tags; nothing in the batch changed",
    45159: "the tag no longer exists on WeChat; see bankwx tag list",
    40032: "the batch is larger than WeChat accepts",
}
_ON_THE_WAY = {"tag": "Tagging", "untag": "Untagging", "block": "Blacklisting",
               "unblock": "Removing from the blacklist"}  # fmt: skip
_DONE = {
    "tag": "Tagged with '{tag}'",
    "untag": "Untagged from '{tag}'",
    "block": "Blacklisted",
    "unblock": "Removed from the blacklist",
}


@dataclass(frozen=True)
class MemberPlan:
    """Followers to tag, untag, block or unblock, in batches of WeChat's maximum size."""

    action: str  # tag | untag | block | unblock
    account: str
    openids: tuple[str, ...]
    skipped: int  # repeated openids
    tag: str | None = None
    tag_id: int | None = None

    @property
    def batches(self) -> list[list[str]]:
        size = BATCH_SIZES[self.action]
        return [list(self.openids[i : i + size]) for i in range(0, len(self.openids), size)]

    def body(self, batch: list[str]) -> dict[str, Any]:
        if self.tag_id is None:
            return {"openid_list": batch}
        return {"openid_list": batch, "tagid": self.tag_id}

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "batch": n,
                "call": MEMBER_CALLS[self.action],
                "tag": self.tag,
                "tagid": self.tag_id,
                "openids": len(batch),
                "first": batch[0],
                "last": batch[-1],
            }
            for n, batch in enumerate(self.batches, start=1)
        ]


def _failure(number: int, batch: list[str], error: WeChatError) -> BatchFailure:
    shown = ", ".join(batch[:3]) + (", ..." if len(batch) > 3 else "")
    advice = _BATCH_ADVICE.get(error.errcode, error.explanation)
    reason = f"WeChat {error.errcode} ({error.errmsg}): {advice}."
    if isinstance(error, WeChatUnreachableError):  # not WeChat's answer: no code to show
        reason = str(error)
    return BatchFailure(
        what=f"batch {number} ({len(batch)} openids: {shown})",
        reason=reason,
        items=len(batch),
        wechat=error.exit_code == 3,
    )


def plan(
    app: AppContext, name: str | None, action: str, openids: list[str], tag: str | None = None
) -> MemberPlan:
    """Check the openids (and the tag) and split them into WeChat's batches; calls WeChat only
    to refresh the tags when the store does not know the tag. Raises ValidationError,
    NotFoundError (unknown tag)."""
    account = account_for(app, PERMISSIONS[action], name)
    unique, repeats = check_openids(openids)
    tag_name, tag_id = None, None
    if action in ("tag", "untag"):
        if tag is None:
            raise ValidationError(
                f"give the tag: bankwx follower {action} TAG --from FILE, or bankwx follower "
                f"{action} OPENID... --tag TAG."
            )
        found = live_tag(app, account, tag)
        tag_name, tag_id = found.name, found.tag_id
    if action == "tag":
        held = app.store.followers.tag_ids(account.name, unique)
        for openid, tag_ids in held.items():
            if tag_id not in tag_ids and len(tag_ids) >= TAGS_PER_FOLLOWER:
                raise ValidationError(
                    f"follower '{openid}' already holds {len(tag_ids)} tags, WeChat's maximum: "
                    f"untag one first (bankwx follower untag {openid} --tag NAME)."
                )
    return MemberPlan(action, account.name, tuple(unique), repeats, tag_name, tag_id)


def apply(app: AppContext, plan: MemberPlan, progress: Progress = no_progress) -> BatchReport:
    """Send the plan's batches; each batch WeChat accepts is mirrored in the store with its
    audit row; a refused batch is recorded and the others still go. Never raises for a
    WeChat refusal: see the report's failures and exit_code."""
    require(app, PERMISSIONS[plan.action], plan.account)
    account = accounts.get(app, plan.account)
    client = app.client(account)
    title = _DONE[plan.action].format(tag=plan.tag) + f" on '{plan.account}'"
    with progress(_ON_THE_WAY[plan.action], len(plan.openids)) as bar:
        done, failures = _send(app, client, plan, bar)
    return BatchReport(done=done, skipped=plan.skipped, failures=tuple(failures), title=title)


def _send(
    app: AppContext, client: WeChatClient, plan: MemberPlan, bar: ProgressBar
) -> tuple[int, list[BatchFailure]]:
    store = app.store
    done = 0
    failures: list[BatchFailure] = []
    for number, batch in enumerate(plan.batches, start=1):
        params = {"tag": plan.tag, "tag_id": plan.tag_id, "batch": number,
                  "openids": len(batch)}  # fmt: skip
        try:
            client.post(MEMBER_CALLS[plan.action], plan.body(batch))
        except WeChatError as exc:
            failures.append(_failure(number, batch, exc))
            with store.transaction():
                audit.record(app, f"follower.{plan.action}", plan.account, params,
                             outcome=f"failed: WeChat {exc.errcode}")  # fmt: skip
            bar.advance(len(batch))
            continue
        with store.transaction():
            at = iso(app.clock.now())
            store.followers.ensure(plan.account, batch, at)
            if plan.action == "tag":
                store.followers.add_tag(plan.account, int(plan.tag_id or 0), batch)
            elif plan.action == "untag":
                store.followers.remove_tag(plan.account, int(plan.tag_id or 0), batch)
            else:
                store.followers.set_blacklisted(plan.account, batch, plan.action == "block")
            audit.record(app, f"follower.{plan.action}", plan.account, params)
        done += len(batch)
        bar.advance(len(batch))
    return done, failures
