"""WeChat error codes: a plain explanation and what the client does about each (§6)."""

from __future__ import annotations

REFRESH = frozenset({40001, 40014, 42001, 41001})
RETRY = frozenset({-1, 45011, 89503})

EXPLANATIONS: dict[int, str] = {
    -1: "WeChat is busy; the call was retried and may be tried again later",
    40001: "the access token is invalid or superseded, or the AppSecret is wrong",
    40002: "invalid grant_type (a bug in the caller)",
    40003: "the openid is wrong, belongs to another account, or never interacted",
    40007: "the media id is invalid or the temporary media expired (re-upload it)",
    40013: "the appid is invalid: check bankwx account show",
    40014: "the access token is malformed or expired",
    40016: "the menu has too many or too few buttons",
    40017: "a menu button has an invalid type",
    40018: "a menu button name is too long",
    40019: "a menu button key is too long",
    40023: "a sub-menu has too many buttons",
    40027: "a menu button URL is too long",
    40032: "the openid list is too long for this API",
    40033: "invalid charset in the request (\\uXXXX escapes)",
    40037: "the template id is invalid for this account",
    40125: "the AppSecret is wrong: update it with bankwx account update NAME --secret -",
    40130: "a mass send by openid needs at least two openids",
    40164: "this host's IP is not on the account's API IP whitelist (WeChat console)",
    41001: "the access token is missing",
    41002: "the appid is missing",
    41004: "the AppSecret is missing",
    42001: "the access token expired",
    43004: "the follower has unsubscribed",
    43019: "the follower is on the account's blacklist",
    43101: "the follower refused messages of this kind",
    45009: "the API's daily quota is used up; it resets at midnight (Beijing time)",
    45011: "WeChat's per-minute rate limit was hit; slow down",
    45015: "the customer-service window is closed (no message from the follower in 48 hours) "
    "or the follower unsubscribed",
    45028: "the account has no mass-send quota left",
    45047: "the customer-service allowance for this window is used up",
    45056: "the account has too many tags (100 at most)",
    45057: "a tag with more than 100,000 followers cannot be deleted",
    45058: "system tags (0, 1, 2) cannot be changed",
    45059: "a follower may hold at most 20 tags",
    45065: "this mass send was already submitted (same clientmsgid)",
    45066: "the same clientmsgid was retried within a minute; wait and retry",
    45067: "clientmsgid is longer than 64 bytes",
    45157: "the tag name is invalid or already used",
    45158: "the tag name is too long (30 characters at most)",
    45159: "the tag id is invalid",
    46003: "the account has no menu",
    46004: "the follower does not exist",
    47001: "WeChat could not parse the request body",
    47003: "a template data field breaks the template's rules",
    48001: "the account lacks this API permission (unverified, or wrong account type)",
    48002: "the follower turned off messages from this account",
    48004: "the API is banned for this account for irregularities",
    61500: "date format error",
    65303: "a conditional menu needs a default menu first",
    65304: "a conditional menu's match rule is empty",
    65316: "the menu links to more than 3 domains",
    65320: "conditional menus may match only tag_id and client_platform_type",
    89503: "WeChat's API-IP risk control awaits an administrator's confirmation",
}


def explain(errcode: int) -> str:
    return EXPLANATIONS.get(errcode, "see WeChat's global return codes")


def classify(errcode: int | None) -> str:
    """'refresh' (token: refresh once), 'retry' (busy: back off), or 'fatal'."""
    if errcode is None:
        return "retry"  # HTTP error status
    if errcode in REFRESH:
        return "refresh"
    if errcode in RETRY:
        return "retry"
    return "fatal"
