"""The BankwxError family. Each class knows its exit code (DESIGN §3).

This module imports nothing from the project, nor typer or rich: the domain, the storage,
the WeChat client, the server and the simulator all raise these.
"""

from __future__ import annotations


class BankwxError(Exception):
    """A request that was refused or failed. Exit code 1."""

    exit_code = 1


class ValidationError(BankwxError):
    """A value the user gave is invalid."""


class NotFoundError(BankwxError):
    """The thing named does not exist."""


class ConflictError(BankwxError):
    """The thing already exists, or the state forbids the change."""


class StoreError(BankwxError):
    """The store is missing, newer than the code, or unreadable."""


class KeyError_(BankwxError):
    """The master key is missing, wrong, or unsafe."""


class ConfirmationRequired(BankwxError):
    """A destructive action was asked for off a terminal without --yes."""


class PermissionDenied(BankwxError):
    """The acting operator lacks a permission. Exit code 4."""

    exit_code = 4

    def __init__(self, operator: str, permission: str, detail: str = "") -> None:
        self.operator = operator
        self.permission = permission
        super().__init__(f"operator '{operator}' lacks permission '{permission}'{detail}.")


class OwnApprovalDenied(PermissionDenied):
    """Maker-checker: who made or submitted a change may not approve it. Exit code 4.

    Menus and broadcasts raise it alike (through `permissions.deny_own_approval`, which audits
    the refusal first).
    """

    def __init__(self, operator: str, permission: str, message: str) -> None:
        self.operator = operator
        self.permission = permission
        BankwxError.__init__(self, message)


class WeChatError(BankwxError):
    """WeChat answered with an error code. Exit code 3."""

    exit_code = 3

    def __init__(
        self,
        errcode: int,
        errmsg: str,
        explanation: str = "",
        body: dict[str, object] | None = None,
    ) -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        self.explanation = explanation
        self.body = body or {}
        text = f"WeChat {errcode} ({errmsg})"
        if explanation:
            text += f": {explanation}"
        super().__init__(text)


class WeChatUnavailableError(WeChatError):
    """WeChat could not be reached, or stayed busy, within the retry budget. Exit code 1."""

    exit_code = 1


class WeChatUnreachableError(WeChatUnavailableError):
    """WeChat's address could not be reached (refused, unknown host, no route). Exit code 1."""

    def __init__(self, url: str, cause: str, hint: str = "") -> None:
        super().__init__(-1, f"cannot reach {url}: {cause}")
        self.url = url
        self.cause = cause
        self.args = (f"cannot reach WeChat at {url} ({cause}){hint}",)


class WeChatInDoubtError(WeChatUnavailableError):
    """A request that may have reached WeChat failed (dropped connection, read timeout).

    Raised instead of retrying when the call is not idempotent (customer-service messages).
    """


class BadCallbackError(BankwxError):
    """A callback body that is malformed or hostile. HTTP 400."""

    status = 400


class BadSignatureError(BankwxError):
    """A callback whose signature or timestamp does not verify. HTTP 403."""

    status = 403


# --- exit codes (DESIGN §3): the one place that names them -------------------------------------

OK = 0  # done
FAILED = 1  # the request was refused or failed, invalid values included
USAGE = 2  # unknown option, missing argument (typer's own)
WECHAT = 3  # WeChat answered with an error
DENIED = 4  # not permitted for this operator
DIFFERENCES = 5  # differences found (commands with --exit-code)
INTERRUPTED = 130  # Ctrl-C
# A batch command's exit code (OK; WECHAT when every failure was WeChat's refusal; else FAILED)
# is models.BatchReport.exit_code: models imports nothing from the project, so the rule lives
# there, once, and tests hold it to these codes.
