"""Settings: flags, then BANKWX_* variables, then defaults, resolved once by the root callback.

typer reads the variables (``envvar=``); this module only holds the result and the defaults.
Nothing else in the package reads ``os.environ``.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_DB = Path("bankwx.db")
DEFAULT_KEY_FILE = Path("~/.config/bankwx/master.key")
WECHAT_API_BASE = "https://api.weixin.qq.com"
DEFAULT_SIM = "http://127.0.0.1:8081"
FORMATS = ("table", "json", "csv", "markdown", "plain")


def login_user() -> str:
    """The login user's name, the default acting operator."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


@dataclass(frozen=True)
class Settings:
    db: Path = DEFAULT_DB
    api_base: str | None = None
    account: str | None = None
    fmt: str | None = None
    debug: bool = False
    verbose: int = 0
    operator: str = field(default_factory=login_user)
    master_key: str | None = None
    key_file: Path = DEFAULT_KEY_FILE
    sim: str = DEFAULT_SIM
    retry_budget_s: float = 30.0
    token_lease_s: float = 15.0
    interactive: bool | None = None
    test_actions: bool = False

    @property
    def wechat_base(self) -> str:
        return (self.api_base or WECHAT_API_BASE).rstrip("/")

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def from_environment(**overrides: object) -> Settings:
    """Settings from BANKWX_* variables, for processes started without the CLI (workers, tests).

    The CLI itself resolves the same variables through typer's ``envvar=``.
    """
    env = os.environ
    values: dict[str, object] = {}
    if env.get("BANKWX_DB"):
        values["db"] = Path(env["BANKWX_DB"])
    if env.get("BANKWX_API_BASE"):
        values["api_base"] = env["BANKWX_API_BASE"]
    if env.get("BANKWX_ACCOUNT"):
        values["account"] = env["BANKWX_ACCOUNT"]
    if env.get("BANKWX_OPERATOR"):
        values["operator"] = env["BANKWX_OPERATOR"]
    if env.get("BANKWX_MASTER_KEY"):
        values["master_key"] = env["BANKWX_MASTER_KEY"]
    if env.get("BANKWX_KEY_FILE"):
        values["key_file"] = Path(env["BANKWX_KEY_FILE"])
    if env.get("BANKWX_SIM"):
        values["sim"] = env["BANKWX_SIM"]
    if env.get("BANKWX_RETRY_BUDGET_S"):
        values["retry_budget_s"] = float(env["BANKWX_RETRY_BUDGET_S"])
    if env.get("BANKWX_TOKEN_LEASE_S"):
        values["token_lease_s"] = float(env["BANKWX_TOKEN_LEASE_S"])
    if env.get("BANKWX_INTERACTIVE"):
        values["interactive"] = env["BANKWX_INTERACTIVE"] == "1"
    values["debug"] = env.get("BANKWX_DEBUG") == "1"
    values["test_actions"] = env.get("BANKWX_TEST_ACTIONS") == "1"
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
