"""Shared test values and helpers (import as `from bxtest import ...`)."""

from __future__ import annotations

import base64
from collections.abc import Callable

from typer.testing import Result

TEST_KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()
APPID = "wx1234567890abcdef"
SECRET = "0123456789abcdef0123456789abcdef"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
TOKEN = "tok123"
ORIGINAL_ID = "gh_0123456789ab"

Bankwx = Callable[..., Result]


def add_account_args(name: str = "main", mode: str = "safe") -> list[str]:
    args = ["account", "add", name, "--appid", APPID, "--secret", SECRET, "--token", TOKEN]
    args += ["--original-id", ORIGINAL_ID, "--mode", mode]
    if mode != "plain":
        args += ["--aes-key", AES_KEY]
    return args
