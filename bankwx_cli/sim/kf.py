"""WeChat's customer service as the simulator keeps it (protocol sheet §5.3, §5.4, §9.5):
kf accounts (agents) per official account, sessions and the waiting queue, the typing
indicator.

Kf accounts are account configuration (kept by ``reset()``); sessions, the queue and typing are
runtime state (dropped). The API is in ``api_kf.py``; ``followers.py`` queues a follower whose
passive reply was ``transfer_customer_service``; ``api_core.py`` checks a custom message's
``kf_account`` and ends the typing indicator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bankwx_cli.sim.codes import ApiError
from bankwx_cli.sim.state import SimState

MAX_KF_ACCOUNTS = 100
MAX_NICKNAME = 16
KF_ACCOUNT_RE = re.compile(r"[A-Za-z0-9_]{1,10}@[A-Za-z0-9_-]{1,30}")
MAX_WAIT_CASES = 100  # getwaitcase answers at most this many
TYPING_NEEDS_INTERACTION_S = 30  # 45080 when the follower's last action is older
TYPING_LASTS_S = 15  # 45081 while an indicator is active


@dataclass
class KfAccount:
    kf_account: str
    nickname: str
    kf_id: int
    online: bool = True  # the web client is signed in (getonlinekflist)
    bound: bool = True  # a WeChat user accepted the invitation: it can take sessions (65402)


@dataclass
class KfAccounts:
    """Every official account's kf accounts, by appid, then by kf account name."""

    by_appid: dict[str, dict[str, KfAccount]] = field(default_factory=dict)
    next_id: int = 1001
    disabled: set[str] = field(default_factory=set)  # appids without new customer service


@dataclass
class KfSession:
    kf_account: str
    createtime: int


@dataclass
class KfRuntime:
    """Sessions and the waiting queue by (appid, openid); typing indicators."""

    sessions: dict[tuple[str, str], KfSession] = field(default_factory=dict)
    waiting: dict[tuple[str, str], int] = field(default_factory=dict)  # -> latest_time
    typing_until: dict[tuple[str, str], float] = field(default_factory=dict)


def accounts(state: SimState) -> KfAccounts:
    return state.module_state("kf_accounts", KfAccounts, keep_on_reset=True)


def runtime(state: SimState) -> KfRuntime:
    return state.module_state("kf_runtime", KfRuntime)


def of(state: SimState, appid: str) -> dict[str, KfAccount]:
    """The kf accounts of one official account (created empty)."""
    with state.lock:
        return accounts(state).by_appid.setdefault(appid, {})


def require_enabled(state: SimState, appid: str) -> None:
    """65400 when the official account has not enabled (new) customer service."""
    with state.lock:
        if appid in accounts(state).disabled:
            raise ApiError(65400)


def require_bound(found: KfAccount) -> KfAccount:
    """65402 when no WeChat user is bound to the kf account yet (it cannot take sessions)."""
    if not found.bound:
        raise ApiError(65402)
    return found


def require(state: SimState, appid: str, kf_account: object) -> KfAccount:
    """A kf account of this official account: 65401 (invalid agent) otherwise."""
    found = of(state, appid).get(kf_account) if isinstance(kf_account, str) else None
    if found is None:
        raise ApiError(65401)
    return found


def check_nickname(nickname: object) -> str:
    if not isinstance(nickname, str) or not nickname.strip() or len(nickname) > MAX_NICKNAME:
        raise ApiError(65403)
    return nickname


def add(state: SimState, appid: str, kf_account: object, nickname: object) -> KfAccount:
    if not isinstance(kf_account, str) or not KF_ACCOUNT_RE.fullmatch(kf_account):
        raise ApiError(65404)
    name = check_nickname(nickname)
    with state.lock:
        table = of(state, appid)
        if kf_account in table:
            raise ApiError(65406)
        if len(table) >= MAX_KF_ACCOUNTS:
            raise ApiError(65405)
        store = accounts(state)
        found = table[kf_account] = KfAccount(kf_account, name, store.next_id)
        store.next_id += 1
        return found


def remove(state: SimState, appid: str, kf_account: object) -> None:
    with state.lock:
        found = require(state, appid, kf_account)
        del of(state, appid)[found.kf_account]
        sessions = runtime(state).sessions
        ended = [
            k for k, s in sessions.items() if k[0] == appid and s.kf_account == found.kf_account
        ]
        for key in ended:
            del sessions[key]


def wait(state: SimState, appid: str, openid: str) -> None:
    """The follower was handed to customer service (a transfer reply) and waits for an agent,
    unless already in a session."""
    with state.lock:
        table = runtime(state)
        if (appid, openid) not in table.sessions:
            table.waiting[(appid, openid)] = int(state.now())


def last_interaction(state: SimState, appid: str, openid: str) -> float | None:
    """When the follower last wrote, tapped, followed or scanned (the windows they opened)."""
    with state.lock:
        windows = state.windows.get((appid, openid), {})
        return max((w.opened_at for w in windows.values()), default=None)


def stop_typing(state: SimState, appid: str, openid: str) -> None:
    """A message sent to the follower ends the typing indicator."""
    with state.lock:
        runtime(state).typing_until.pop((appid, openid), None)
