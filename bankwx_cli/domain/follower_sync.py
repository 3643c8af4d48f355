"""The follower sync: the store's followers brought in line with WeChat's list and profiles.

The sync pages the follower list by ``next_openid`` (10,000 a page) and fetches profiles
(``user/info/batchget``, 100 a call, from a few threads) for followers that have none or one
older than the max age. Every page, and every few hundred profiles, is one short transaction
that also saves the pass's progress, so that a killed sync resumes where it stopped (without
fetching again the profiles it wrote) and a callback receiver on the same store keeps
answering. Only the calling thread writes.

- The first pass of an account (no follower stored) keeps the list's pages as they come,
  then fetches the profiles in openid order and writes each follower once, complete, in that
  order: the follower index grows at its end instead of being rewritten all over.
- A later pass writes each page (new followers, who is still there) and fetches the
  profiles that are due in the order the rows were written; a page of followers the store
  has never seen is written once, with its profiles.
- A full pass (the first, ``--full``, or when the last one is older than ``--full-every``)
  also finds who unsubscribed; an incremental pass continues the list after the last
  follower seen.

The engine's subscribe and unsubscribe events between syncs are merged into every read
(followers.py).
"""

from __future__ import annotations

import bisect
import logging
import os
import re
import socket
import sys
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bankwx_cli.clock import BANK_TZ, bank_time, from_iso, iso
from bankwx_cli.domain import audit
from bankwx_cli.domain.followers import account_for
from bankwx_cli.domain.tags import TAGS_GET
from bankwx_cli.errors import ConflictError, ValidationError, WeChatError, WeChatUnreachableError
from bankwx_cli.models.accounts import Account
from bankwx_cli.models.batches import Progress, no_progress
from bankwx_cli.models.followers import (
    Profile,
    SyncProgress,
    SyncReport,
    SyncStatus,
    Tag,
    parse_profiles,
)

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext
    from bankwx_cli.wechat.client import WeChatClient

log = logging.getLogger(__name__)

USER_GET = "/cgi-bin/user/get"
BATCHGET = "/cgi-bin/user/info/batchget"
BLACKLIST_GET = "/cgi-bin/tags/members/getblacklist"
PROFILES_PER_CALL = 100
DEFAULT_PROFILE_MAX_AGE = "7d"
DEFAULT_FULL_EVERY = "1d"
DEFAULT_THREADS = 4
MAX_THREADS = 16
PROFILE_ROWS_PER_COMMIT = 500
KEYSET_CHUNK = 2000
# Profile calls queued per thread: enough that the threads keep calling WeChat while this
# thread writes a page of the list (the threads still make only ``threads`` calls at once).
QUEUED_CALLS = 4
SWITCH_INTERVAL_S = 0.001
LOAD_ROWS_PER_COMMIT = 500
PAGES_AHEAD = 2  # new pages held in memory while their profiles arrive
UNLIST_BATCH = 5000
LEASE_S = 60.0  # a sync whose holder has not saved progress for this long is taken over
_DURATION = re.compile(r"(\d+)\s*([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


# --- Values -----------------------------------------------------------------------------------


def parse_duration(text: str, option: str) -> float:
    """'90s', '30m', '12h', '7d' or a number of seconds. Raises ValidationError."""
    found = _DURATION.fullmatch(text.strip().lower())
    if not found:
        raise ValidationError(
            f"{option} '{text}' is invalid: use a number and a unit, e.g. 30m, 12h or 7d."
        )
    return float(int(found.group(1)) * _UNITS[found.group(2)])


def _now(app: AppContext) -> str:
    return iso(app.clock.now())


def _count(value: object) -> int | None:
    """A count in WeChat's answer (``total``), or None when it gives none."""
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else None


def next_quota_reset(app: AppContext) -> datetime:
    """WeChat's daily quotas reset at midnight Beijing time."""
    local = app.clock.now().astimezone(BANK_TZ)
    midnight = datetime(local.year, local.month, local.day, tzinfo=BANK_TZ) + timedelta(days=1)
    return midnight.astimezone(UTC)


# --- Sync -------------------------------------------------------------------------------------


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _holder_alive(holder: str | None, heartbeat: float | None, now: float) -> bool:
    """Whether another process still runs a sync: a recent heartbeat and, on this host, a
    live process (a killed sync is taken over at once)."""
    if not holder or heartbeat is None or now - heartbeat > LEASE_S or holder == _holder():
        return False
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Due:
    """Openids of stored followers whose profile is due, 100 a call, in list order (keyset
    paging on list_seq, so that the updates follow the rows' order in the table)."""

    def __init__(self, app: AppContext, account: str, cutoff: str) -> None:
        self.followers = app.store.followers
        self.account = account
        self.cutoff = cutoff
        self.after = 0
        self.calls: deque[list[str]] = deque()

    def next_call(self) -> list[str] | None:
        """The openids of the next call, or None when none is due now."""
        if not self.calls:
            chunk = self.followers.needing_profile(
                self.account, self.cutoff, self.after, KEYSET_CHUNK
            )
            if not chunk:
                # Nothing due up to the last row: rows written later come after it.
                self.after = max(self.after, self.followers.last_seq(self.account))
                return None
            self.after = chunk[-1][0]
            openids = [openid for _, openid in chunk]
            step = PROFILES_PER_CALL
            self.calls.extend(openids[i : i + step] for i in range(0, len(openids), step))
        return self.calls.popleft()


@dataclass
class _Page:
    """A page of the follower list on its way to the store.

    A page of followers the store has never seen ("new") is written once, with the profiles,
    when every profile call of the page has answered; any other page is written at once and
    its due profiles are fetched from the store's side (``_Due``). Pages are written in list
    order, each with the cursor after it, in one transaction.
    """

    openids: list[str]
    answer: dict[str, Any]
    new: bool
    calls: int = 0  # profile calls not answered yet
    profiles: list[Profile] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.new or self.calls == 0


class _Sync:
    def __init__(
        self,
        app: AppContext,
        account: Account,
        client: WeChatClient,
        *,
        full: bool,
        profile_max_age_s: float,
        full_every_s: float,
        threads: int,
        progress: Progress,
    ) -> None:
        self.app = app
        self.store = app.store
        self.name = account.name
        self.client = client
        self.full = full
        self.profile_max_age_s = profile_max_age_s
        self.full_every_s = full_every_s
        self.threads = threads
        self.progress = progress
        self.holder = _holder()
        self.state = SyncProgress(account.name)
        self.resumed = False
        self.blacklisted = 0
        self.tags = 0
        self.tags_stored = True

    # progress is saved in the caller's transaction
    def _save(self, state: SyncProgress) -> None:
        """Save the pass's progress (``self.state`` changed with ``dataclasses.replace``); the
        heartbeat renews the lease of the holder (none once it is released)."""
        heartbeat = self.app.clock.time() if state.holder else None
        self.state = replace(state, updated_at=_now(self.app), heartbeat_at=heartbeat)
        self.store.follower_sync.save_sync_state(self.state)

    def begin(self) -> None:
        self.store.followers.bulk_mode()
        now = self.app.clock.time()
        with self.store.transaction():
            found = self.store.follower_sync.sync_state(self.name)
            if found and _holder_alive(found.holder, found.heartbeat_at, now):
                raise ConflictError(
                    f"a sync of '{self.name}' is running ({found.holder}, last progress "
                    f"{now - (found.heartbeat_at or now):.0f} s ago). Wait for it to finish."
                )
            previous = found or SyncProgress(self.name)
            self.state = previous
            unfinished = found is not None and previous.phase != "done"
            if unfinished and not (self.full and previous.kind != "full"):
                self.resumed = True
                self._save(replace(previous, holder=self.holder))
                return
            tail = previous.tail
            last_full = previous.last_full_at
            stale = iso(self.app.clock.now() - timedelta(seconds=self.full_every_s))
            full = self.full or not tail or not last_full or last_full < stale
            empty = not self.store.followers.counts(self.name).known
            self.store.follower_sync.drop_staged(self.name)
            self._save(
                replace(
                    previous,
                    first_load=full and empty,
                    pass_no=previous.pass_no + 1,
                    kind="full" if full else "incremental",
                    phase="list",
                    cursor="" if full else tail,
                    tail=tail,
                    pages=0,
                    listed=0,
                    new=0,
                    total=None,
                    profiles=0,
                    unsubscribed=0,
                    started_at=_now(self.app),
                    finished_at=None,
                    last_full_at=last_full,
                    holder=self.holder,
                )
            )

    def release(self) -> None:
        with self.store.transaction():
            self._save(replace(self.state, holder=None))

    def _page(self, cursor: str) -> tuple[list[str], dict[str, Any]]:
        """One page of the follower list: (openids, the answer); none on the last page.

        An incremental pass whose starting follower WeChat no longer knows (40003) becomes a
        full pass.
        """
        try:
            page = self.client.get(USER_GET, {"next_openid": cursor})
        except WeChatError as exc:
            if exc.errcode != 40003 or not cursor or self.state.kind == "full":
                raise
            log.info("incremental cursor refused (40003); starting a full pass")
            return [], {"restart": True}
        data = page.get("data") if page.get("count") else None
        return [str(o) for o in (data or {}).get("openid") or []], page

    def _write_page(self, page: _Page) -> str | None:
        """Store a page (and the pass's progress); the cursor of the next page, if any."""
        state = self.state
        openids, answer = page.openids, page.answer
        at = _now(self.app)
        with self.store.transaction():
            if page.new:
                self.store.followers.insert_listed(
                    self.name, openids, page.profiles, state.pass_no, at
                )
                new, profiles = len(openids), len(page.profiles)
            else:
                new = self.store.followers.upsert_listed(self.name, openids, state.pass_no, at)
                profiles = 0
            next_openid = str(answer.get("next_openid") or "")
            self._save(
                replace(
                    state,
                    cursor=next_openid or openids[-1],
                    tail=openids[-1],
                    pages=state.pages + 1,
                    listed=state.listed + len(openids),
                    new=state.new + new,
                    total=_count(answer.get("total")),
                    profiles=state.profiles + profiles,
                )
            )
        return next_openid or None

    def _list_done(self) -> None:
        if self.state.kind == "full":
            # Who the complete list did not name has unsubscribed.
            while True:
                with self.store.transaction():
                    state = self.state
                    n = self.store.followers.mark_unlisted(
                        self.name, state.pass_no, str(state.started_at), UNLIST_BATCH
                    )
                    self._save(replace(state, unsubscribed=state.unsubscribed + n))
                if n == 0:
                    break
        with self.store.transaction():
            self._save(replace(self.state, phase="profiles"))

    def _fetch(self, openids: list[str]) -> list[Profile]:
        """The profiles of up to 100 followers, parsed here (in the fetching thread)."""
        body = {"user_list": [{"openid": o, "lang": "zh_CN"} for o in openids]}
        answer = self.client.post(BATCHGET, body)
        return parse_profiles(answer.get("user_info_list") or ())

    def _commit(self, rows: list[Profile]) -> None:
        # Tags are compared with the stored ones only when there are any (a first sync of
        # an account without tags skips a query a commit).
        self.tags_stored = self.tags_stored or any(r.tag_ids for r in rows)
        with self.store.transaction():
            self.store.followers.save_profiles(self.name, rows, _now(self.app), self.tags_stored)
            self._save(replace(self.state, profiles=self.state.profiles + len(rows)))

    def stage_list(self) -> None:
        """The first load's list: every page kept as it comes (one row a page)."""
        cursor = self.state.cursor
        with self.progress("Listing followers", self.state.total) as bar:
            bar.advance(self.state.listed)
            while True:
                openids, answer = self._page(cursor)
                if not openids:
                    break
                cursor = str(answer.get("next_openid") or "")
                with self.store.transaction():
                    state = self.state
                    pages = state.pages + 1
                    self.store.follower_sync.stage_page(self.name, state.pass_no, pages, openids)
                    self._save(
                        replace(
                            state,
                            cursor=cursor or openids[-1],
                            tail=openids[-1],
                            pages=pages,
                            listed=state.listed + len(openids),
                            new=state.new + len(openids),
                            total=_count(answer.get("total")),
                        )
                    )
                bar.total(self.state.total)
                bar.advance(len(openids))
                if not cursor:
                    break
        with self.store.transaction():
            self._save(replace(self.state, phase="load"))

    def load(self) -> None:
        """The first load's profiles, in openid order, written in that order.

        The store holds no follower of the account yet, so every follower is new; writing
        them in openid order makes each commit append to the follower index instead of
        rewriting pages all over it. Calls answer in any order; rows are written in order,
        so that a resumed load continues after the highest openid written.
        """
        pass_no = self.state.pass_no
        openids = self.store.follower_sync.staged(self.name, pass_no)
        done = self.store.follower_sync.last_written(self.name, pass_no)
        start = bisect.bisect_right(openids, done) if done else 0
        step = PROFILES_PER_CALL
        calls = [openids[i : i + step] for i in range(start, len(openids), step)]
        answers: dict[int, list[Profile]] = {}
        running: dict[Future[list[Profile]], int] = {}
        submitted = written = 0
        failure: WeChatError | None = None
        with (
            self.progress("Fetching profiles", len(openids)) as bar,
            ThreadPoolExecutor(self.threads, thread_name_prefix="sync-load") as pool,
        ):
            bar.advance(start)
            while True:
                limit = QUEUED_CALLS * self.threads
                while failure is None and submitted < len(calls) and len(running) < limit:
                    running[pool.submit(self._fetch, calls[submitted])] = submitted
                    submitted += 1
                if running:
                    done_now, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done_now:
                        index = running.pop(future)
                        try:
                            answers[index] = future.result()
                        except WeChatError as exc:
                            failure = failure or exc
                # Write the answered calls that follow the last written, in order.
                ready = written
                while ready in answers:
                    ready += 1
                size = sum(len(calls[i]) for i in range(written, ready))
                finished = not running and (failure is not None or submitted == len(calls))
                if ready > written and (size >= LOAD_ROWS_PER_COMMIT or finished):
                    listed = [o for i in range(written, ready) for o in calls[i]]
                    infos = [info for i in range(written, ready) for info in answers.pop(i)]
                    with self.store.transaction():
                        self.store.followers.insert_listed(
                            self.name, listed, infos, pass_no, _now(self.app)
                        )
                        profiles = self.state.profiles + len(infos)
                        self._save(replace(self.state, profiles=profiles))
                    bar.advance(len(listed))
                    written = ready
                if finished:
                    break
        if failure is not None:
            raise failure
        with self.store.transaction():
            self.store.follower_sync.drop_staged(self.name)
            self._save(replace(self.state, phase="profiles"))

    def pump(self) -> None:
        """List the pages (while phase is 'list') and fetch the profiles that are due, at once.

        One thread fetches the next page while this one writes; ``threads`` more fetch
        profiles (100 a call, ``threads`` calls at once): those of new pages (written with
        their page), then those the store says are due (missing, or older than the max
        age). Only this thread writes. When WeChat refuses a page, the profiles of the pages
        already listed are still fetched and written; when it refuses a profile call, no more
        are made. Either way what was fetched is written, and the error raised.
        """
        # Relative to the pass's start: a resumed pass does not refetch what it wrote.
        started = from_iso(str(self.state.started_at))
        cutoff = iso(started - timedelta(seconds=self.profile_max_age_s))
        wanted = self.store.followers.count_needing_profile(self.name, cutoff)
        if self.state.phase == "profiles" and not wanted:
            with self.store.transaction():
                self._save(replace(self.state, phase="extras"))
            return
        due = _Due(self.app, self.name, cutoff)
        self.tags_stored = self.store.followers.has_tags(self.name)
        pages: deque[_Page] = deque()  # listed, not yet written, in list order
        calls: deque[tuple[_Page, list[str]]] = deque()  # profile calls of new pages
        running: dict[Future[list[Profile]], _Page | None] = {}
        rows: list[Profile] = []  # profiles of stored followers, to write
        list_failure: WeChatError | None = None
        call_failure: WeChatError | None = None
        cursor: str | None = self.state.cursor if self.state.phase == "list" else None
        listing: Future[tuple[list[str], dict[str, Any]]] | None = None
        with (
            self.progress("Syncing followers", wanted + (self.state.total or 0)) as bar,
            ThreadPoolExecutor(1, thread_name_prefix="sync-list") as lister,
            ThreadPoolExecutor(self.threads, thread_name_prefix="sync-profiles") as pool,
        ):
            bar.advance(self.state.listed)
            while True:
                if listing is not None and listing.done():
                    try:
                        openids, answer = listing.result()
                    except WeChatError as exc:
                        list_failure, openids, answer = exc, [], {}
                    listing, cursor = None, None
                    if answer.get("restart"):
                        with self.store.transaction():
                            restart = replace(self.state, kind="full", cursor="")
                            self._save(replace(restart, pages=0, listed=0, new=0))
                        cursor = ""
                    elif openids:
                        new = self.store.followers.none_known(self.name, openids)
                        page = _Page(openids, answer, new)
                        pages.append(page)
                        if new:
                            for i in range(0, len(openids), PROFILES_PER_CALL):
                                calls.append((page, openids[i : i + PROFILES_PER_CALL]))
                                page.calls += 1
                            wanted += len(openids)
                        cursor = str(answer.get("next_openid") or "") or None
                        bar.total(wanted + int(answer.get("total") or 0))
                        bar.advance(len(openids))
                held = sum(1 for p in pages if p.new)
                if listing is None and cursor is not None and held < PAGES_AHEAD:
                    listing = lister.submit(self._page, cursor)
                while call_failure is None and len(running) < QUEUED_CALLS * self.threads:
                    if calls:
                        page, openids = calls.popleft()
                        running[pool.submit(self._fetch, openids)] = page
                        continue
                    stored = due.next_call()
                    if stored is None:
                        break
                    running[pool.submit(self._fetch, stored)] = None
                waiting: set[Future[Any]] = set(running)
                if listing is not None:
                    waiting.add(listing)
                if waiting:
                    done, _ = wait(waiting, return_when=FIRST_COMPLETED)
                    for future in done & running.keys():
                        owner = running.pop(future)
                        try:
                            got = future.result()
                        except WeChatError as exc:
                            call_failure = call_failure or exc
                            got = []
                        bar.advance(len(got))
                        if owner is None:
                            rows += got
                        else:
                            owner.profiles += got
                            owner.calls -= 1
                written = False
                while pages and pages[0].ready:
                    self._write_page(pages.popleft())
                    written = True
                while len(rows) >= PROFILE_ROWS_PER_COMMIT:
                    self._commit(rows[:PROFILE_ROWS_PER_COMMIT])
                    del rows[:PROFILE_ROWS_PER_COMMIT]
                listed_all = cursor is None and listing is None and not pages
                if self.state.phase == "list" and listed_all and list_failure is None:
                    self._list_done()
                    written = True
                if not waiting and not written:
                    break  # nothing under way, nothing left that can be written
            if rows:
                self._commit(rows)
        failure = list_failure or call_failure
        if failure is not None:
            raise failure
        with self.store.transaction():
            self._save(replace(self.state, phase="extras"))

    def extras(self) -> None:
        """The blacklist and the account's tags, then the pass is done."""
        blocked: list[str] = []
        cursor = ""
        while True:
            page = self.client.post(BLACKLIST_GET, {"begin_openid": cursor})
            data = page.get("data") if page.get("count") else None
            openids = [str(o) for o in (data or {}).get("openid") or []]
            if not openids:
                break
            blocked += openids
            cursor = str(page.get("next_openid") or "")
            if not cursor:
                break
        tags = self.client.get(TAGS_GET).get("tags") or []
        self.blacklisted, self.tags = len(blocked), len(tags)
        state = self.state
        with self.store.transaction():
            self.store.followers.replace_blacklist(self.name, blocked)
            now = _now(self.app)
            self.store.tags.replace(self.name, [Tag.from_wechat(t, now) for t in tags])
            full = state.kind == "full"
            self._save(
                replace(
                    state,
                    phase="done",
                    finished_at=_now(self.app),
                    last_full_at=state.started_at if full else state.last_full_at,
                    holder=None,
                )
            )
            params: dict[str, Any] = {
                "kind": state.kind,
                "pass_no": state.pass_no,
                "pages": state.pages,
                "listed": state.listed,
                "new": state.new,
                "profiles": state.profiles,
                "unsubscribed": state.unsubscribed,
                "blacklisted": self.blacklisted,
                "tags": self.tags,
            }
            audit.record(self.app, "follower.sync", self.name, params)

    def stopped(self, exc: WeChatError) -> WeChatError:
        """The error, with what was saved and when to run again."""
        state = self.state
        saved = (
            f"the sync of '{self.name}' stopped with its progress saved "
            f"({state.pages} pages listed, {state.profiles:,} profiles "
            "fetched)"
        )
        if exc.errcode == 45009:
            when = bank_time(next_quota_reset(self.app))
            advice = f"run bankwx follower sync again after {when} to resume"
        else:
            advice = "run bankwx follower sync again to resume"
        if isinstance(exc, WeChatUnreachableError):
            return WeChatUnreachableError(exc.url, exc.cause, f"; {saved}; {advice}.")
        explanation = f"{exc.explanation}; {saved}; {advice}."
        return type(exc)(exc.errcode, exc.errmsg, explanation, exc.body)

    def run(self) -> SyncReport:
        started = time.monotonic()
        self.begin()
        # The threads fetching from WeChat run short bursts of Python between network
        # waits, while this one builds pages of rows: with the interpreter's default 5 ms
        # switch interval they queue for its lock after every wait. A shorter one hands it
        # over sooner (about 20% faster on a million followers).
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(switch_interval, SWITCH_INTERVAL_S))
        try:
            if self.state.phase == "list" and self.state.first_load:
                self.stage_list()
            if self.state.phase == "load":
                self.load()
            if self.state.phase in ("list", "profiles"):
                self.pump()
            if self.state.phase == "extras":
                self.extras()
        except WeChatError as exc:
            self.release()
            raise self.stopped(exc) from None
        except BaseException:
            self.release()
            raise
        finally:
            sys.setswitchinterval(switch_interval)
        state = self.state
        counts = self.store.followers.counts(self.name)
        return SyncReport(
            account=self.name,
            kind=state.kind,
            resumed=self.resumed,
            pages=state.pages,
            listed=state.listed,
            new=state.new,
            profiles=state.profiles,
            unsubscribed=state.unsubscribed,
            blacklisted=self.blacklisted,
            tags=self.tags,
            total=state.total,
            subscribed=counts.subscribed,
            seconds=round(time.monotonic() - started, 3),
        )


def sync(
    app: AppContext,
    name: str | None,
    *,
    full: bool = False,
    profile_max_age: str = DEFAULT_PROFILE_MAX_AGE,
    full_every: str = DEFAULT_FULL_EVERY,
    threads: int = DEFAULT_THREADS,
    progress: Progress | None = None,
) -> SyncReport:
    """Bring the store's followers in line with WeChat's list and profiles.

    Resumes an interrupted pass (unless ``full`` asks for a full pass and the interrupted one
    is not). Raises ValidationError for bad options, ConflictError while another live process
    syncs the account, and WeChatError (exit 3; 45009: the daily quota, with the time to run
    again) after saving the progress made.
    """
    max_age = parse_duration(profile_max_age, "--profile-max-age")
    every = parse_duration(full_every, "--full-every")
    if not 1 <= threads <= MAX_THREADS:
        raise ValidationError(f"--threads {threads} is invalid: use 1 to {MAX_THREADS}.")
    account = account_for(app, "follower.sync", name)
    runner = _Sync(
        app,
        account,
        app.client(account),
        full=full,
        profile_max_age_s=max_age,
        full_every_s=every,
        threads=threads,
        progress=progress or no_progress,
    )
    return runner.run()


def sync_status(app: AppContext, name: str | None) -> SyncStatus:
    """The last or current pass of an account's sync, and the store's counts."""
    account = account_for(app, "follower.read", name)
    counts = app.store.followers.counts(account.name)
    status = SyncStatus(
        account=account.name,
        phase="never synced",
        known=counts.known,
        subscribed=counts.subscribed,
        without_profile=counts.without_profile,
    )
    state = app.store.follower_sync.sync_state(account.name)
    if state is None:
        return status
    return replace(
        status,
        phase=state.phase,
        kind=state.kind,
        pages=state.pages,
        listed=state.listed,
        profiles=state.profiles,
        started_at=state.started_at,
        finished_at=state.finished_at,
        last_full_at=state.last_full_at,
    )
