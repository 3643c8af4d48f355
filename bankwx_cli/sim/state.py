"""Everything the simulated WeChat knows, in memory: accounts, followers, tokens, quotas,
customer-service windows, media, the call log and what followers received.

Time comes from ``now()`` (the real clock plus an offset that ``advance()`` moves), randomness
from seeded ``random.Random`` objects, so tests are exact and runs repeatable.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar, cast

from bankwx_cli.sim.codes import ApiError

T = TypeVar("T")

TOKEN_TTL = 7200  # seconds an access token lives
TOKEN_OVERLAP = 300  # a superseded token keeps working this long (classic and stable)
STABLE_FORCE_PER_DAY = 20
STABLE_FORCE_SPACING = 30  # seconds between two force refreshes that take effect
TEMP_MEDIA_TTL = 3 * 86400
CLEAR_QUOTA_PER_MONTH = 10
MESSAGE_WINDOW = (48 * 3600, 5)  # a follower's message: 5 messages within 48 h
EVENT_WINDOW = (60, 3)  # click / scancode / subscribe / scan: 3 messages within 1 minute
DEFAULT_CALLBACK_TIMEOUT = 5.0
MAX_LOG_ENTRIES = 50_000  # the oldest entries go first (seq numbers keep counting)
MAX_DELIVERED = 500_000
MAX_TOKENS = 10_000  # beyond this, long-expired tokens are forgotten

TOKEN_PATHS = frozenset({"/cgi-bin/token", "/cgi-bin/stable_token"})
MODES = ("plain", "compatible", "safe")
FAULT_KINDS = ("busy", "rate_limit", "http_503", "drop")
SUBSCRIBE_SCENES = (
    "ADD_SCENE_SEARCH",
    "ADD_SCENE_ACCOUNT_MIGRATION",
    "ADD_SCENE_PROFILE_CARD",
    "ADD_SCENE_QR_CODE",
    "ADD_SCENE_PROFILE_LINK",
    "ADD_SCENE_PROFILE_ITEM",
    "ADD_SCENE_PAID",
    "ADD_SCENE_WECHAT_ADVERTISEMENT",
    "ADD_SCENE_REPRINT",
    "ADD_SCENE_LIVESTREAM",
    "ADD_SCENE_CHANNELS",
    "ADD_SCENE_OTHERS",
)
_SCENE_WEIGHTS = (30, 2, 8, 30, 5, 3, 2, 5, 5, 3, 3, 4)

APPID_RE = re.compile(r"wx[0-9a-f]{16}")
OPENID_RE = re.compile(r"[A-Za-z0-9_-]{28}")
ORIGINAL_ID_RE = re.compile(r"gh_[0-9a-f]{12}")
CALLBACK_TOKEN_RE = re.compile(r"[A-Za-z0-9]{3,32}")
AES_KEY_RE = re.compile(r"[A-Za-z0-9]{43}")
ACCESS_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,512}")
_BEIJING = timezone(timedelta(hours=8))
_FOLLOWERS_EPOCH = 1_700_000_000  # generated subscribe times lie in the 3 years before this

# Default daily quotas of a new production account (§7.1), keyed by API path.
DAILY_LIMITS: dict[str, int] = {
    "/cgi-bin/token": 2000,
    "/cgi-bin/stable_token": 500_000,
    "/cgi-bin/menu/create": 1000,
    "/cgi-bin/menu/get": 10_000,
    "/cgi-bin/menu/delete": 1000,
    "/cgi-bin/menu/addconditional": 2000,
    "/cgi-bin/menu/delconditional": 2000,
    "/cgi-bin/menu/trymatch": 20_000,
    "/cgi-bin/media/upload": 100_000,
    "/cgi-bin/media/get": 200_000,
    "/cgi-bin/message/custom/send": 500_000,
    "/cgi-bin/message/mass/sendall": 100,
    "/cgi-bin/message/mass/send": 100,
    "/cgi-bin/qrcode/create": 100_000,
    "/cgi-bin/user/get": 500,
    "/cgi-bin/user/info": 5_000_000,
    "/cgi-bin/user/info/updateremark": 10_000,
    "/cgi-bin/message/template/send": 100_000,
    "/cgi-bin/draft/add": 1000,
    "/cgi-bin/draft/get": 500,
    "/cgi-bin/draft/delete": 1000,
    "/cgi-bin/draft/update": 1000,
    "/cgi-bin/draft/count": 1000,
    "/cgi-bin/draft/batchget": 1000,
    "/cgi-bin/freepublish/submit": 100,
    "/cgi-bin/freepublish/get": 100,
    "/cgi-bin/freepublish/delete": 10,
    "/cgi-bin/freepublish/getarticle": 100,
    "/cgi-bin/freepublish/batchget": 100,
}
DEFAULT_DAILY_LIMIT = 100_000  # for routed APIs the table does not name
MINUTE_LIMITS: dict[str, int] = {
    "/cgi-bin/stable_token": 10_000,
    "/cgi-bin/message/mass/sendall": 60,
    "/cgi-bin/message/mass/send": 60,
}


@dataclass
class Account:
    """An official account as WeChat's console holds it."""

    appid: str
    secret: str
    name: str = ""
    token: str = ""
    aes_key: str | None = None
    mode: str = "plain"
    original_id: str = ""
    callback_url: str | None = None
    ip_allowlist: list[str] | None = None
    oauth_domain: str | None = None  # the web authorisation domain (protocol sheet §5.2)
    registered: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_original_id(appid: str) -> str:
    return "gh_" + hashlib.sha256(appid.encode()).hexdigest()[:12]


def account_from_dict(data: Mapping[str, Any]) -> Account:
    """Validate an account record (the fields of ``POST /sim/accounts``).

    Raises ValueError naming the first bad field.
    """
    known = {f for f in Account.__dataclass_fields__ if f != "registered"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown account field(s): {', '.join(unknown)}")
    appid = data.get("appid")
    if not isinstance(appid, str) or not APPID_RE.fullmatch(appid):
        raise ValueError(f"appid {appid!r} is not 'wx' followed by 16 lower-case hex digits")
    secret = data.get("secret")
    if not isinstance(secret, str) or not secret:
        raise ValueError("secret must be a non-empty string")
    mode = str(data.get("mode") or "plain")
    mode = "plain" if mode == "plaintext" else mode
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    token = data.get("token") or ""
    if not isinstance(token, str) or (token and not CALLBACK_TOKEN_RE.fullmatch(token)):
        raise ValueError("token must be 3 to 32 letters or digits")
    aes_key = data.get("aes_key")
    if aes_key is not None and (not isinstance(aes_key, str) or not AES_KEY_RE.fullmatch(aes_key)):
        raise ValueError("aes_key must be 43 letters or digits, or null")
    if mode != "plain" and aes_key is None:
        raise ValueError(f"mode {mode!r} needs an aes_key")
    original_id = data.get("original_id") or default_original_id(appid)
    if not isinstance(original_id, str) or not ORIGINAL_ID_RE.fullmatch(original_id):
        raise ValueError("original_id must be 'gh_' followed by 12 lower-case hex digits")
    callback_url = data.get("callback_url")
    if callback_url is not None:
        if not isinstance(callback_url, str) or not re.match(r"https?://[^/\s]+", callback_url):
            raise ValueError("callback_url must be an http:// or https:// URL, or null")
        if not token:
            raise ValueError("an account with a callback_url needs a token")
    allowlist = data.get("ip_allowlist")
    if allowlist is not None and (
        not isinstance(allowlist, list) or not all(isinstance(ip, str) for ip in allowlist)
    ):
        raise ValueError("ip_allowlist must be a list of IP addresses, or null")
    oauth_domain = data.get("oauth_domain")
    if oauth_domain is not None and (
        not isinstance(oauth_domain, str) or not re.fullmatch(r"[A-Za-z0-9.-]{1,253}", oauth_domain)
    ):
        raise ValueError("oauth_domain must be a host name (no scheme, port or path), or null")
    name = data.get("name") or appid
    return Account(
        appid=appid,
        secret=secret,
        name=str(name),
        token=token,
        aes_key=aes_key,
        mode=mode,
        original_id=original_id,
        callback_url=callback_url,
        ip_allowlist=allowlist,
        oauth_domain=oauth_domain,
    )


@dataclass
class Follower:
    """One follower of one account (openids are per account)."""

    openid: str
    subscribe: bool
    subscribe_time: int
    subscribe_scene: str
    qr_scene: int = 0
    qr_scene_str: str = ""
    language: str = "zh_CN"
    remark: str = ""
    tagid_list: list[int] = field(default_factory=list)
    blacklisted: bool = False
    unsubscribe_time: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AccessToken:
    value: str
    appid: str
    kind: str  # "classic" (/cgi-bin/token) or "stable" (/cgi-bin/stable_token)
    issued_at: float
    expires_at: float
    dies_at: float | None = None  # set when a newer token supersedes this one

    def alive(self, now: float) -> bool:
        return now < self.expires_at and (self.dies_at is None or now < self.dies_at)


@dataclass
class Window:
    """A customer-service window the follower opened (§5.3)."""

    kind: str  # "message" or "event"
    opened_at: float
    expires_at: float
    allowance: int
    used: int = 0


@dataclass
class Media:
    media_id: str
    appid: str
    type: str
    filename: str
    content_type: str
    data: bytes
    created_at: int
    expires_at: float | None  # None: permanent material


@dataclass
class Faults:
    """Injected trouble and tunables (``POST /sim/faults``)."""

    fail_rate: float = 0.0
    latency_ms: int = 0
    seed: int = 0
    callback_timeout: float = DEFAULT_CALLBACK_TIMEOUT
    quota_scale: float = 1.0
    kinds: list[str] = field(default_factory=lambda: list(FAULT_KINDS))
    quotas: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _scaled(limit: int, scale: float) -> int:
    return max(1, int(limit * scale))


class SimState:
    """The simulator's memory. Mutating methods hold ``lock`` (the ASGI app runs them on one
    event loop, but tests and tools may reach in from another thread)."""

    def __init__(
        self,
        *,
        followers: int = 100,
        seed: int = 0,
        fail_rate: float = 0.0,
        latency_ms: int = 0,
        callback_timeout: float = DEFAULT_CALLBACK_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lock = threading.RLock()
        self.seed = seed
        self.followers_per_account = followers
        self._clock = clock
        self.clock_offset = 0.0
        self.rng = random.Random(f"ids:{seed}")
        self.initial_faults = Faults(
            fail_rate=fail_rate,
            latency_ms=latency_ms,
            seed=seed,
            callback_timeout=callback_timeout,
        )
        self.faults = copy.deepcopy(self.initial_faults)
        self.fault_rng = random.Random(seed)
        self.accounts: dict[str, Account] = {}
        self.followers: dict[str, dict[str, Follower]] = {}
        self._modules: dict[str, tuple[object, bool]] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self._clear_runtime()

    def _clear_runtime(self) -> None:
        self.tokens: dict[str, AccessToken] = {}
        self.current_token: dict[tuple[str, str], str] = {}
        self.stable_forces: dict[str, list[float]] = {}
        self.daily: dict[tuple[str, str], tuple[int, int]] = {}
        self.minute: dict[tuple[str, str], tuple[int, int]] = {}
        self.clears: dict[tuple[str, int], int] = {}
        self.windows: dict[tuple[str, str], dict[str, Window]] = {}
        self.media: dict[str, Media] = {}
        self.log: list[dict[str, Any]] = []
        self.delivered: list[dict[str, Any]] = []
        self._log_seq = 0
        self._delivered_seq = 0
        self.token_calls = 0
        self.token_calls_by_path: dict[str, int] = {}
        self._msgids: set[int] = set()

    # -- clock ------------------------------------------------------------------------------

    def now(self) -> float:
        return self._clock() + self.clock_offset

    def advance(self, seconds: float) -> float:
        """Move the simulated clock forward; returns the new time."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self.lock:
            self.clock_offset += seconds
            return self.now()

    def day_index(self) -> int:
        """Days since the epoch in Beijing time: WeChat's daily quotas reset at 00:00 there."""
        return int((self.now() + 8 * 3600) // 86400)

    def month_index(self) -> int:
        moment = datetime.fromtimestamp(self.now(), UTC).astimezone(_BEIJING)
        return moment.year * 12 + moment.month

    # -- ids --------------------------------------------------------------------------------

    def new_id(self, nbytes: int = 48) -> str:
        """A random base64url id (tokens, media ids, tickets)."""
        with self.lock:
            return base64.urlsafe_b64encode(self.rng.randbytes(nbytes)).decode().rstrip("=")

    def new_msgid(self) -> int:
        """A unique 64-bit message id, like WeChat's MsgId and msgid."""
        with self.lock:
            while True:
                msgid = self.rng.randrange(10**18, 2**63)
                if msgid not in self._msgids:
                    self._msgids.add(msgid)
                    return msgid

    def nonce(self) -> str:
        """A numeric nonce like those WeChat puts on callback URLs."""
        with self.lock:
            return str(self.rng.randrange(10**8, 10**10))

    def rid(self) -> str:
        with self.lock:
            return "-".join(f"{self.rng.getrandbits(32):08x}" for _ in range(3))

    # -- accounts and followers -------------------------------------------------------------

    def has_registered_accounts(self) -> bool:
        return any(a.registered for a in self.accounts.values())

    def register_account(self, account: Account) -> Account:
        """Add or replace an account; its followers are generated once, on first sight."""
        with self.lock:
            self.accounts[account.appid] = account
            self._ensure_followers(account.appid)
            return account

    def account_for_credentials(self, appid: str | None, secret: str | None) -> Account:
        """The account a token request names, or the WeChat error for the credentials.

        With no registered account, any well-formed appid and any 32-character secret are
        accepted (an account record is created on the fly).
        """
        if not appid:
            raise ApiError(41002)
        if not secret:
            raise ApiError(41004)
        with self.lock:
            account = self.accounts.get(appid)
            if account is None:
                if self.has_registered_accounts() or not APPID_RE.fullmatch(appid):
                    raise ApiError(40013)
                if len(secret) != 32:
                    raise ApiError(40125)
                account = self.register_account(
                    Account(
                        appid=appid,
                        secret=secret,
                        name=appid,
                        original_id=default_original_id(appid),
                        registered=False,
                    )
                )
            if secret != account.secret:
                raise ApiError(40125)
            return account

    def _ensure_followers(self, appid: str) -> dict[str, Follower]:
        existing = self.followers.get(appid)
        if existing is not None:
            return existing
        rng = random.Random(f"followers:{self.seed}:{appid}")
        generated: list[Follower] = []
        seen: set[str] = set()
        while len(generated) < self.followers_per_account:
            openid = "o" + base64.urlsafe_b64encode(rng.randbytes(21)).decode()[1:]
            if openid in seen:
                continue
            seen.add(openid)
            scene = rng.choices(SUBSCRIBE_SCENES, weights=_SCENE_WEIGHTS)[0]
            generated.append(
                Follower(
                    openid=openid,
                    subscribe=True,
                    subscribe_time=_FOLLOWERS_EPOCH - rng.randrange(3 * 365 * 86400),
                    subscribe_scene=scene,
                    qr_scene=rng.randint(1, 100_000) if scene == "ADD_SCENE_QR_CODE" else 0,
                )
            )
        generated.sort(key=lambda f: f.subscribe_time)  # user/get pages in follow order
        table = {f.openid: f for f in generated}
        self.followers[appid] = table
        return table

    def follower_table(self, appid: str) -> dict[str, Follower]:
        """All followers of an account (subscribed or not), in follow order."""
        with self.lock:
            return self._ensure_followers(appid)

    def follower(self, appid: str, openid: str) -> Follower | None:
        return self.followers.get(appid, {}).get(openid)

    def require_follower(
        self, appid: str, openid: object, *, unsubscribed_errcode: int = 43004
    ) -> Follower:
        """The follower an API call names: 40003 for a malformed or unknown openid,
        ``unsubscribed_errcode`` (43004 require subscribe) when they unfollowed."""
        if not isinstance(openid, str) or not OPENID_RE.fullmatch(openid):
            raise ApiError(40003)
        follower = self.follower(appid, openid)
        if follower is None:
            raise ApiError(40003)
        if not follower.subscribe:
            raise ApiError(unsubscribed_errcode)
        return follower

    def subscribed_followers(self, appid: str) -> list[Follower]:
        return [f for f in self.follower_table(appid).values() if f.subscribe]

    def subscribe(self, appid: str, openid: str, scene: str, qr_scene: str = "") -> Follower:
        """Record a (re)subscription at the current time."""
        with self.lock:
            table = self._ensure_followers(appid)
            follower = table.pop(openid, None) or Follower(openid, True, 0, scene)
            follower.subscribe = True
            follower.subscribe_time = int(self.now())
            follower.subscribe_scene = scene
            follower.unsubscribe_time = None
            follower.qr_scene, follower.qr_scene_str = 0, ""
            if qr_scene.isdigit():
                follower.qr_scene = int(qr_scene)
            else:
                follower.qr_scene_str = qr_scene
            table[openid] = follower  # moves to the end: the newest follower
            return follower

    def unsubscribe(self, appid: str, openid: str) -> None:
        with self.lock:
            follower = self.follower(appid, openid)
            if follower is not None:
                follower.subscribe = False
                follower.unsubscribe_time = int(self.now())
            self.windows.pop((appid, openid), None)

    # -- access tokens ----------------------------------------------------------------------

    def _mint(self, appid: str, kind: str) -> AccessToken:
        now = self.now()
        if len(self.tokens) >= MAX_TOKENS:
            # Forget tokens expired over a day ago (they then answer 40001, not 42001).
            self.tokens = {v: t for v, t in self.tokens.items() if t.expires_at > now - 86400}
        token = AccessToken(self.new_id(102), appid, kind, now, now + TOKEN_TTL)
        self.tokens[token.value] = token
        self.current_token[(appid, kind)] = token.value
        return token

    def _current(self, appid: str, kind: str) -> AccessToken | None:
        value = self.current_token.get((appid, kind))
        return self.tokens.get(value) if value else None

    def fetch_classic_token(self, appid: str) -> AccessToken:
        """``/cgi-bin/token``: a new token each call; the previous one lives 5 more minutes."""
        with self.lock:
            now = self.now()
            previous = self._current(appid, "classic")
            if previous is not None:
                limit = now + TOKEN_OVERLAP
                previous.dies_at = (
                    limit if previous.dies_at is None else min(previous.dies_at, limit)
                )
            return self._mint(appid, "classic")

    def fetch_stable_token(self, appid: str, force_refresh: bool = False) -> AccessToken:
        """``/cgi-bin/stable_token``: the same token until 5 minutes before it expires.

        A force refresh revokes the current token at once; more than 20 a day, or one within
        30 s of the last, leaves the current token in place.
        """
        with self.lock:
            now = self.now()
            current = self._current(appid, "stable")
            alive = current is not None and current.alive(now)
            if force_refresh:
                day_start = (self.day_index() * 86400) - 8 * 3600
                forces = [t for t in self.stable_forces.get(appid, []) if t >= day_start]
                too_soon = bool(forces) and now - forces[-1] < STABLE_FORCE_SPACING
                if (
                    current is not None
                    and alive
                    and (too_soon or len(forces) >= STABLE_FORCE_PER_DAY)
                ):
                    return current
                if current is not None:
                    current.dies_at = now
                self.stable_forces[appid] = [*forces, now]
                return self._mint(appid, "stable")
            if current is not None and alive and now < current.expires_at - TOKEN_OVERLAP:
                return current
            # Rotation inside the last 5 minutes: the old token still works until it expires.
            return self._mint(appid, "stable")

    def check_token(self, value: str | None) -> Account:
        """The account an access token belongs to, or the error WeChat gives for it."""
        if not value:
            raise ApiError(41001)
        if not ACCESS_TOKEN_RE.fullmatch(value):
            raise ApiError(40014)
        with self.lock:
            token = self.tokens.get(value)
            now = self.now()
            if token is None:
                raise ApiError(40001)
            if now >= token.expires_at:
                raise ApiError(42001)
            if token.dies_at is not None and now >= token.dies_at:
                raise ApiError(40001)
            account = self.accounts.get(token.appid)
            if account is None:
                raise ApiError(40001)
            return account

    # -- quotas -----------------------------------------------------------------------------

    def quota_limits(self, path: str) -> tuple[int, int | None]:
        """(daily limit, per-minute limit or None) for an API path, after scale and overrides."""
        scale = self.faults.quota_scale
        override = self.faults.quotas.get(path, {})
        daily = override.get("daily", _scaled(DAILY_LIMITS.get(path, DEFAULT_DAILY_LIMIT), scale))
        minute_default = MINUTE_LIMITS.get(path)
        minute = override.get(
            "minute", None if minute_default is None else _scaled(minute_default, scale)
        )
        return daily, minute

    def _count(
        self, table: dict[tuple[str, str], tuple[int, int]], key: tuple[str, str], period: int
    ) -> int:
        stored = table.get(key)
        return stored[1] if stored is not None and stored[0] == period else 0

    def hit_quota(self, appid: str, path: str) -> None:
        """Count one call; raise 45009 (daily) or 45011 (per minute) when over the limit."""
        with self.lock:
            daily_limit, minute_limit = self.quota_limits(path)
            day, minute = self.day_index(), int(self.now() // 60)
            key = (appid, path)
            used_today = self._count(self.daily, key, day)
            used_minute = self._count(self.minute, key, minute)
            if used_today >= daily_limit:
                raise ApiError(45009)
            if minute_limit is not None and used_minute >= minute_limit:
                raise ApiError(45011)
            self.daily[key] = (day, used_today + 1)
            self.minute[key] = (minute, used_minute + 1)

    def quota_info(self, appid: str, path: str) -> dict[str, Any]:
        with self.lock:
            daily_limit, minute_limit = self.quota_limits(path)
            used = self._count(self.daily, (appid, path), self.day_index())
            return {
                "quota": {
                    "daily_limit": daily_limit,
                    "used": used,
                    "remain": max(0, daily_limit - used),
                },
                "rate_limit": {"call_count": minute_limit or 0, "refresh_second": 60},
                "component_rate_limit": {"call_count": 0, "refresh_second": 60},
            }

    def clear_quota(self, appid: str, path: str | None = None) -> None:
        """Reset an account's daily counters (all, or one path); 10 per month, then 48006."""
        with self.lock:
            month_key = (appid, self.month_index())
            if self.clears.get(month_key, 0) >= CLEAR_QUOTA_PER_MONTH:
                raise ApiError(48006)
            self.clears[month_key] = self.clears.get(month_key, 0) + 1
            for key in [k for k in self.daily if k[0] == appid and path in (None, k[1])]:
                del self.daily[key]

    # -- customer-service windows -----------------------------------------------------------

    def open_window(self, appid: str, openid: str, kind: str) -> None:
        """The follower wrote ("message") or clicked / followed / scanned ("event")."""
        seconds, allowance = MESSAGE_WINDOW if kind == "message" else EVENT_WINDOW
        with self.lock:
            now = self.now()
            self.windows.setdefault((appid, openid), {})[kind] = Window(
                kind, now, now + seconds, allowance
            )

    def consume_window(self, appid: str, openid: str) -> None:
        """Spend one customer-service message: 45015 outside any window, 45047 when spent."""
        with self.lock:
            now = self.now()
            open_windows = [
                w for w in self.windows.get((appid, openid), {}).values() if now < w.expires_at
            ]
            if not open_windows:
                raise ApiError(45015)
            available = [w for w in open_windows if w.used < w.allowance]
            if not available:
                raise ApiError(45047)
            min(available, key=lambda w: w.expires_at).used += 1

    # -- records ----------------------------------------------------------------------------

    def record(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        """Append to the call log (API calls and callback exchanges); returns the stored
        entry, which the caller may still annotate."""
        with self.lock:
            self._log_seq += 1
            stored = {"seq": self._log_seq, "time": int(self.now()), **entry}
            self.log.append(stored)
            if len(self.log) > MAX_LOG_ENTRIES:
                del self.log[: len(self.log) - MAX_LOG_ENTRIES]
            return stored

    def record_delivery(
        self,
        *,
        appid: str,
        openid: str,
        kind: str,
        msgtype: str,
        content: Any,
        msgid: int | None = None,
        **extra: Any,
    ) -> int:
        """Note what a follower received; returns the msgid (a new one unless given).

        ``kind`` is custom, template, mass, preview, reply (passive) or notice (WeChat's own
        failure notice); ``content`` is the text for text messages, else the message object.
        """
        with self.lock:
            msgid = msgid if msgid is not None else self.new_msgid()
            self._delivered_seq += 1
            self.delivered.append(
                {
                    "seq": self._delivered_seq,
                    "time": int(self.now()),
                    "appid": appid,
                    "openid": openid,
                    "kind": kind,
                    "msgtype": msgtype,
                    "msgid": msgid,
                    "content": content,
                    **extra,
                }
            )
            if len(self.delivered) > MAX_DELIVERED:
                del self.delivered[: len(self.delivered) - MAX_DELIVERED]
            return msgid

    def count_token_call(self, path: str) -> None:
        with self.lock:
            self.token_calls += 1
            self.token_calls_by_path[path] = self.token_calls_by_path.get(path, 0) + 1

    # -- faults -----------------------------------------------------------------------------

    def set_faults(self, changes: Mapping[str, Any]) -> Faults:
        """Apply ``POST /sim/faults``; a ``seed`` restarts the fault sequence.

        Raises ValueError for an unknown field or a bad value.
        """
        allowed = set(Faults.__dataclass_fields__)
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(unknown)}")
        with self.lock:
            faults = copy.deepcopy(self.faults)
            for name, value in changes.items():
                setattr(faults, name, value)
            _validate_faults(faults)
            self.faults = faults
            if "seed" in changes:
                self.fault_rng = random.Random(faults.seed)
            return faults

    def draw_fault(self) -> str | None:
        """The fault to inject into this API call, if any (seeded, so repeatable)."""
        with self.lock:
            faults = self.faults
            if faults.fail_rate <= 0 or not faults.kinds:
                return None
            if self.fault_rng.random() >= faults.fail_rate:
                return None
            return self.fault_rng.choice(faults.kinds)

    # -- state of later modules ---------------------------------------------------------------

    def module_state(
        self, name: str, factory: Callable[[], T], *, keep_on_reset: bool = False
    ) -> T:
        """Per-module memory for API modules added later (menus, tags, templates, ...).

        Created by ``factory`` on first use; ``reset()`` drops it unless ``keep_on_reset``
        (account configuration such as menus), ``reset(everything=True)`` always.
        """
        with self.lock:
            if name not in self._modules:
                self._modules[name] = (factory(), keep_on_reset)
            return cast(T, self._modules[name][0])

    def track(self, task: asyncio.Task[Any]) -> None:
        """Keep a background task (a scheduled push) alive until it ends."""
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- reset and summary ------------------------------------------------------------------

    def reset(self, everything: bool = False) -> None:
        """Forget tokens, counters, windows, media, the log and deliveries; restore the start
        faults and the real clock. Accounts, followers and kept module state stay unless
        ``everything``."""
        with self.lock:
            for task in list(self.tasks):
                task.cancel()
            self._clear_runtime()
            self.faults = copy.deepcopy(self.initial_faults)
            self.fault_rng = random.Random(self.faults.seed)
            self.clock_offset = 0.0
            if everything:
                self.accounts.clear()
                self.followers.clear()
                self._modules.clear()
            else:
                self._modules = {k: v for k, v in self._modules.items() if v[1]}

    def summary(self) -> dict[str, Any]:
        with self.lock:
            now = self.now()
            return {
                "now": int(now),
                "clock_offset": self.clock_offset,
                "seed": self.seed,
                "accounts": len(self.accounts),
                "followers": sum(
                    1 for table in self.followers.values() for f in table.values() if f.subscribe
                ),
                "followers_per_account": self.followers_per_account,
                "token_calls": self.token_calls,
                "token_calls_by_path": dict(self.token_calls_by_path),
                "live_tokens": sum(1 for t in self.tokens.values() if t.alive(now)),
                "api_calls": sum(1 for e in self.log if e.get("kind") == "api"),
                "callbacks": sum(1 for e in self.log if e.get("kind") == "callback"),
                "delivered": len(self.delivered),
                "open_windows": sum(
                    1 for ws in self.windows.values() for w in ws.values() if now < w.expires_at
                ),
                "media": len(self.media),
                "faults": self.faults.to_dict(),
            }


def _validate_faults(faults: Faults) -> None:
    if not isinstance(faults.fail_rate, int | float) or not 0 <= faults.fail_rate <= 1:
        raise ValueError("fail_rate must be a number from 0 to 1")
    if not isinstance(faults.latency_ms, int) or faults.latency_ms < 0:
        raise ValueError("latency_ms must be a whole number of milliseconds, 0 or more")
    if not isinstance(faults.seed, int):
        raise ValueError("seed must be an integer")
    if not isinstance(faults.callback_timeout, int | float) or faults.callback_timeout <= 0:
        raise ValueError("callback_timeout must be a positive number of seconds")
    if not isinstance(faults.quota_scale, int | float) or faults.quota_scale <= 0:
        raise ValueError("quota_scale must be a positive number")
    if not isinstance(faults.kinds, list) or not set(faults.kinds) <= set(FAULT_KINDS):
        raise ValueError(f"kinds must be a list drawn from {', '.join(FAULT_KINDS)}")
    if not isinstance(faults.quotas, dict) or not all(
        isinstance(path, str)
        and isinstance(limits, dict)
        and set(limits) <= {"daily", "minute"}
        and all(isinstance(n, int) and n >= 0 for n in limits.values())
        for path, limits in faults.quotas.items()
    ):
        raise ValueError('quotas must look like {"/cgi-bin/...": {"daily": N, "minute": N}}')
