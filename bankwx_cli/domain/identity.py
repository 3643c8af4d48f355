"""Who is acting: the operator, the operating-system user and the host behind every command.

A store is in one of two identity modes (``bankwx init --identity``, ``bankwx store set
identity``), kept in its ``meta`` table:

- ``declared`` (the default, and every store made before issue 14): the acting operator is
  ``BANKWX_OPERATOR`` when set, else the login user's name. Anyone who can run bankwx on the
  store can claim any operator; ``bankwx check`` and ``bankwx serve`` warn about it.
- ``os``: the acting operator is the one mapped to the login user (``bankwx operator add|update
  NAME --os-user USER``). ``BANKWX_OPERATOR`` is honoured only when it names that operator;
  otherwise every permission check refuses (exit 4), audited with the real login user. One login
  user acts as one operator, so maker-checker means two people.

The login user is the effective user id's name in the password database, not ``$USER`` or
``$LOGNAME`` (which anyone can set). Every audit row records it and the host name, whatever the
mode. ``Identity.explain`` is the sentence a refusal ends with: who the acting operator is, how
that was decided, and how to act as another.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bankwx_cli.errors import ValidationError

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext

MODES = ("declared", "os")
DEFAULT_MODE = "declared"
META_KEY = "identity"


def os_login_user() -> str:
    """The effective user's name from the password database (its uid when it has none)."""
    uid = os.geteuid()
    try:
        import pwd  # here: not every command needs it

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):  # no passwd entry (containers): the number is still real
        return f"uid:{uid}"


def host_name() -> str:
    """This machine's name (what ``socket.gethostname`` says, without importing socket)."""
    return os.uname().nodename


def validate_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValidationError(f"identity '{mode}' is invalid: use {' or '.join(MODES)}.")
    return mode


def store_mode(app: AppContext) -> str:
    """The store's identity mode: 'os' or 'declared'."""
    value = app.store.get_meta(META_KEY)
    return value if value in MODES else DEFAULT_MODE


@dataclass(frozen=True)
class Identity:
    """The acting operator and how it was decided.

    ``operator`` is the name audited and checked; ``refusal`` (``os`` mode only) says why the
    login user may not act as it: every permission check then refuses.
    """

    operator: str
    os_user: str
    host: str
    mode: str
    declared: bool  # BANKWX_OPERATOR (or --operator) named the operator
    mapped: str | None = None  # os mode: the operator mapped to the login user
    refusal: str | None = None

    def explain(self, known: bool) -> str:
        """The sentence that ends a refusal: who acts, why, and how to act as another.

        ``known``: the operator is in the store.
        """
        op = self.operator
        if self.mode == "os":
            if self.refusal is not None:
                return self.refusal
            return (
                f"You act as '{op}', the operator mapped to login user '{self.os_user}' "
                "(identity os); to act as another operator, log in as a user mapped to it"
            )
        switch = "to act as another operator, set BANKWX_OPERATOR to its name"
        if self.declared:
            who = f"You act as '{op}' because BANKWX_OPERATOR says so"
        else:
            who = f"You act as '{op}', the login user (BANKWX_OPERATOR is unset)"
        if known:
            return f"{who}; {switch} (see bankwx operator list)"
        return (
            f"{who}, and '{op}' is not an operator of this store: {switch} (see bankwx operator "
            f"list), or have an administrator run: bankwx operator add {op} --role ROLE"
        )


def resolve(app: AppContext) -> Identity:
    """The identity of this process on app's store (see the module's docstring)."""
    from bankwx_cli.settings import login_user

    settings = app.settings
    real = os_login_user()
    host = host_name()
    declared = settings.operator != login_user()
    mode = store_mode(app)
    if mode == "declared":
        return Identity(settings.operator, real, host, mode, declared)
    mapped = app.store.os_users.operator_of(real)
    claimed = settings.operator if declared else None
    if claimed is not None and claimed != mapped:
        if mapped is not None:
            fix = f"Unset BANKWX_OPERATOR to act as '{mapped}', the operator mapped to '{real}'"
        else:
            fix = f"An administrator can map it: bankwx operator update {claimed} --os-user {real}"
        refusal = (
            f"BANKWX_OPERATOR names '{claimed}', but this store requires real identity "
            f"(identity os) and login user '{real}' is not mapped to '{claimed}'. {fix}"
        )
        return Identity(claimed, real, host, mode, True, mapped, refusal)
    if mapped is not None:
        return Identity(mapped, real, host, mode, declared, mapped)
    refusal = (
        f"This store requires real identity (identity os) and login user '{real}' is not mapped "
        f"to any operator. An administrator can map it: bankwx operator update NAME "
        f"--os-user {real}"
    )
    return Identity(real, real, host, mode, False, None, refusal)
