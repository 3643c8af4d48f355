"""What a back-end call can raise. Every one is a BankwxError (exit code 1 in a command).

``BackendUnavailableError`` means "try later": the breaker is open, too many calls are in
flight, the call timed out, the back-end answered 5xx or could not be reached, or its answer
did not follow the contract. The domain answers a follower 系统繁忙，请稍后再试 for any of them.
``BackendRefusedError`` is a 4xx answer: the back-end understood and said no (bad key,
unknown customer, card and phone that do not match).
"""

from __future__ import annotations

from bankwx_cli.errors import BankwxError

# Why a call was unavailable (also the metrics' outcome label).
BREAKER_OPEN = "breaker_open"
BUSY = "busy"  # past the in-flight limit
TIMEOUT = "timeout"
SERVER_ERROR = "server_error"  # 5xx
UNREACHABLE = "unreachable"
BAD_ANSWER = "bad_answer"


class BackendError(BankwxError):
    """A back-end call failed. Exit code 1."""


class BackendConfigError(BackendError):
    """No back-end is configured, or its configuration is refused (plain HTTP to another
    host, a certificate that cannot be read)."""


class BackendUnavailableError(BackendError):
    """The back-end cannot answer now (``reason`` is one of the constants above)."""

    def __init__(self, reason: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


class BackendRefusedError(BackendError):
    """The back-end answered 4xx with its error ``code`` and ``detail`` (its message)."""

    def __init__(self, status: int, code: str, detail: str, endpoint: str) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        self.endpoint = endpoint
        super().__init__(f"the back-end refused {endpoint}: HTTP {status} {code} ({detail}).")
