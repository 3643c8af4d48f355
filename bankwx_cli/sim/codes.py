"""WeChat's error codes as the simulator answers them (protocol sheet §6.1)."""

from __future__ import annotations

ERRMSG: dict[int, str] = {
    -1: "system error",
    0: "ok",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40004: "invalid media type",
    40005: "invalid file type",
    40006: "invalid media size",
    40007: "invalid media_id",
    40008: "invalid message type",
    40009: "invalid image size",
    40010: "invalid voice size",
    40011: "invalid video size",
    40012: "invalid thumb size",
    40013: "invalid appid",
    40014: "invalid access_token",
    40032: "invalid openid list size",
    40033: "invalid charset. please check your request, if include \\uxxxx will create fail!",
    40066: "invalid url",
    40125: "invalid appsecret",
    40164: "invalid ip, not in whitelist",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41005: "media data missing",
    42001: "access_token expired",
    43001: "require GET method",
    43002: "require POST method",
    43004: "require subscribe",
    44001: "empty media data",
    44002: "empty post data",
    44003: "empty news data",
    44004: "empty content",
    45008: "article size out of limit",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    45072: "command field content is invalid",
    45080: "has not sent message to user in 30s, can not send typing command",
    45081: "you are typing now, can not send typing command",
    47001: "data format error",
    47002: "data format error, do NOT use json unicode encode",
    48006: "forbid to clear quota because of reaching the limit",
    65400: "please enable new custom service, or wait for a while if you have enabled",
    65401: "invalid custom service account",
    65402: "the custom service account need to bind a wechat user",
    65403: "illegal nickname",
    65404: "illegal custom service account",
    65405: "custom service account number reach limit",
    65406: "custom service account exists",
    65413: "no session for this user",
    65414: "user already accepted by other kf",
    76021: "cgi_path not found, please check",
    76022: "could not use this cgi_path, no permission",
}


class ApiError(Exception):
    """A WeChat API error: answered as HTTP 200 with ``{"errcode", "errmsg"}``."""

    def __init__(self, errcode: int, errmsg: str | None = None) -> None:
        self.errcode = errcode
        self.errmsg = errmsg if errmsg is not None else ERRMSG.get(errcode, "error")
        super().__init__(f"{errcode} {self.errmsg}")
