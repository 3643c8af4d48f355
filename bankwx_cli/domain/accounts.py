"""Official accounts: validated fields, secrets sealed at rest, audited changes.

``bankwx account list`` imports this module: the models that only other commands build
(``models.credentials``, ``models.account_changes``) are imported by the functions that build
them (start-up time)."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from bankwx_cli.clock import iso
from bankwx_cli.domain import account_settings, audit
from bankwx_cli.domain.permissions import require, visible_accounts
from bankwx_cli.errors import ConflictError, NotFoundError, ValidationError
from bankwx_cli.models.accounts import Account, Secret
from bankwx_cli.models.changes import KEEP, Keep, given

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext
    from bankwx_cli.models.account_changes import AccountChange as AccountChange
    from bankwx_cli.models.credentials import (
        AccountSecrets,
        CredentialCheck,
        SimRegistration,
        TokenState,
    )

TYPES = ("service", "subscription")
MODES = ("plain", "compatible", "safe")
TOKEN_MODES = ("stable", "classic")

# Patterns compiled when first used (re keeps them), not when every command imports this.
_NAME = r"[a-z0-9-]{1,32}"
_APPID = r"wx[0-9a-f]{16}"
_AES_KEY = r"[A-Za-z0-9]{43}"
_TOKEN = r"[A-Za-z0-9]{3,32}"
_ORIGINAL_ID = r"gh_[0-9a-f]{12}"
_SECRET = r"[0-9a-f]{32}"


def validate_name(value: str) -> str:
    if not re.fullmatch(_NAME, value):
        raise ValidationError(
            f"account name '{value}' is invalid: use 1 to 32 lower-case letters, digits or '-' "
            "(it is the receiver's URL segment /wx/NAME)."
        )
    return value


def validate_appid(value: str) -> str:
    if not re.fullmatch(_APPID, value):
        raise ValidationError(
            f"appid '{value}' is invalid: WeChat appids are 'wx' and 16 lower-case hex "
            "characters (18 in all). Copy it from the WeChat console, Basic configuration."
        )
    return value


def validate_secret(value: str) -> str:
    if not re.fullmatch(_SECRET, value):
        raise ValidationError(
            "the AppSecret is invalid: WeChat AppSecrets are 32 lower-case hex characters. "
            "Copy it from the WeChat console, Basic configuration."
        )
    return value


def validate_token(value: str) -> str:
    if not re.fullmatch(_TOKEN, value):
        raise ValidationError(
            "the callback token is invalid: WeChat requires 3 to 32 letters or digits."
        )
    return value


def validate_aes_key(value: str) -> str:
    if not re.fullmatch(_AES_KEY, value):
        raise ValidationError(
            "the EncodingAESKey is invalid: WeChat requires exactly 43 letters or digits."
        )
    return value


def validate_original_id(value: str) -> str:
    if not re.fullmatch(_ORIGINAL_ID, value):
        raise ValidationError(
            f"original id '{value}' is invalid: it is 'gh_' and 12 lower-case hex characters "
            "(the account's ToUserName)."
        )
    return value


def validate_choice(option: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValidationError(f"{option} '{value}' is invalid: use one of {', '.join(choices)}.")
    return value


def _purpose(name: str, what: str) -> str:
    return f"account:{name}:{what}"


def _mode_warnings(mode: str) -> list[str]:
    return [account_settings.PLAIN_MODE_WARNING] if mode == "plain" else []


def add(
    app: AppContext,
    name: str,
    appid: str,
    secret: str,
    token: str,
    original_id: str,
    aes_key: str | None = None,
    type_: str = "service",
    mode: str | None = None,
    token_mode: str = "stable",
) -> AccountChange:
    """Add an account with its secrets sealed. Raises ValidationError, ConflictError."""
    require(app, "account.add")
    validate_name(name)
    validate_appid(appid)
    validate_secret(secret)
    validate_token(token)
    validate_original_id(original_id)
    validate_choice("--type", type_, TYPES)
    validate_choice("--token-mode", token_mode, TOKEN_MODES)
    if aes_key is not None:
        validate_aes_key(aes_key)
    mode = mode or ("safe" if aes_key else "plain")
    validate_choice("--mode", mode, MODES)
    if mode != "plain" and aes_key is None:
        raise ValidationError(f"--mode {mode} needs --aes-key (the account's EncodingAESKey).")
    key = app.key
    now = iso(app.clock.now())
    account = Account(name=name, appid=appid, original_id=original_id, type=type_, mode=mode,
                      token_mode=token_mode, created_at=now, updated_at=now)  # fmt: skip
    from bankwx_cli.models.credentials import SealedSecrets  # see the module docstring

    sealed = SealedSecrets(
        secret_enc=key.seal(secret, _purpose(name, "secret")),
        token_enc=key.seal(token, _purpose(name, "token")),
        aes_key_enc=key.seal(aes_key, _purpose(name, "aes_key")) if aes_key else None,
    )
    with app.store.transaction():
        if app.store.accounts.get(name) is not None:
            raise ConflictError(f"an account named '{name}' exists. See bankwx account list.")
        _refuse_taken(app, name, appid=appid, original_id=original_id)
        app.store.accounts.insert(account, sealed)
        params = {"appid": appid, "original_id": original_id, "type": type_, "mode": mode}
        app.store.bump_config_version()
        audit.record(app, "account.add", name, params)
    from bankwx_cli.models.account_changes import AccountChange  # see the module docstring

    return AccountChange(get(app, name), _mode_warnings(mode))


def _refuse_taken(
    app: AppContext, name: str, *, appid: str | None = None, original_id: str | None = None
) -> None:
    """ConflictError, naming the account, when another account has the appid or the original
    id: an official account is in the store once (its callbacks, token and quotas are one)."""
    for other in app.store.accounts.all():
        if other.name == name:
            continue
        if appid is not None and other.appid == appid:
            taken = f"appid '{appid}'"
        elif original_id is not None and other.original_id == original_id:
            taken = f"original id '{original_id}'"
        else:
            continue
        raise ConflictError(
            f"account '{other.name}' already has {taken}: an official account is added once. "
            f"See bankwx account show {other.name}."
        )


def get(app: AppContext, name: str) -> Account:
    """The account named; NotFoundError when there is none."""
    account = app.store.accounts.get(name)
    if account is None:
        raise NotFoundError(f"no account named '{name}'. See bankwx account list.")
    return account


def resolve(app: AppContext, name: str | None) -> Account:
    """The account named, or the only one when name is None."""
    if name:
        return get(app, name)
    names = app.store.accounts.names()
    if len(names) == 1:
        return get(app, names[0])
    if not names:
        raise NotFoundError("the store holds no account. Add one with bankwx account add.")
    raise ValidationError(
        f"the store holds {len(names)} accounts ({', '.join(names)}): choose one with --account."
    )


def show(app: AppContext, name: str | None) -> Account:
    if name is not None:
        require(app, "account.read", name)  # before the lookup: a refusal reveals nothing
    account = resolve(app, name)
    require(app, "account.read", account.name)
    return account


def list_(app: AppContext) -> list[Account]:
    """Every account the acting operator may see (an operator limited to some sees those)."""
    visible = visible_accounts(app, "account.read")
    return [a for a in app.store.accounts.all() if visible is None or a.name in visible]


def secrets(app: AppContext, account: Account) -> AccountSecrets:
    """The account's secrets, opened with the master key (for the client and the receiver)."""
    sealed = app.store.accounts.sealed(account.name)
    if sealed is None:
        raise NotFoundError(f"no account named '{account.name}'. See bankwx account list.")
    key = app.key
    aes = sealed.aes_key_enc
    from bankwx_cli.models.credentials import AccountSecrets  # see the module docstring

    return AccountSecrets(
        secret=Secret(key.open(sealed.secret_enc, _purpose(account.name, "secret"))),
        token=Secret(key.open(sealed.token_enc, _purpose(account.name, "token"))),
        aes_key=Secret(key.open(aes, _purpose(account.name, "aes_key"))) if aes else None,
    )


def update(
    app: AppContext,
    name: str,
    *,
    appid: str | None = None,
    secret: str | None = None,
    token: str | None = None,
    aes_key: str | None = None,
    original_id: str | None = None,
    type_: str | None = None,
    token_mode: str | None = None,
    welcome: str | None = None,
    default_reply: str | None = None,
    mode: str | None = None,
    settings: dict[str, Any] | None = None,
) -> AccountChange:
    """Change fields of an account (None: unchanged). Secrets given are re-sealed; welcome,
    default_reply, mode and ``settings`` are account settings, checked as ``account set``
    checks them. Raises ValidationError, ConflictError (an appid or original id of another
    account)."""
    require(app, "account.update", name)
    account = get(app, name)
    key = app.key
    new_appid = KEEP if appid is None else validate_appid(appid)
    secret_enc = (
        KEEP if secret is None else key.seal(validate_secret(secret), _purpose(name, "secret"))
    )
    token_enc = KEEP if token is None else key.seal(validate_token(token), _purpose(name, "token"))
    aes_key_enc = (
        KEEP if aes_key is None else key.seal(validate_aes_key(aes_key), _purpose(name, "aes_key"))
    )
    new_original_id = KEEP if original_id is None else validate_original_id(original_id)
    new_type: str | Keep = KEEP
    if type_ is not None:
        new_type = validate_choice("--type", type_, TYPES)
        account_settings.check_type_change(app, account, new_type)
    new_token_mode = (
        KEEP if token_mode is None else validate_choice("--token-mode", token_mode, TOKEN_MODES)
    )
    # Flags that are per-account settings go through the settings registry (as account set).
    flags = {"welcome": welcome, "default_reply": default_reply, "mode": mode}
    given_settings: dict[str, Any] = {k: v for k, v in flags.items() if v is not None}
    given_settings.update(settings or {})
    changed: dict[str, Any] = {}
    for setting_key, value in given_settings.items():
        setting = account_settings.usable(app, account, setting_key)
        if value == "" and setting_key in ("welcome", "default_reply"):
            changed[setting_key] = None  # --welcome '' goes back to the default
            continue
        value = account_settings.convert(setting, value)
        if setting_key == "rates":  # --rate adds to the account's rates
            value = {**account_settings.value(account, "rates"), **value}
        changed[setting_key] = value
    change = replace(
        account_settings.stored_values(account, changed),
        appid=new_appid,
        secret_enc=secret_enc,
        token_enc=token_enc,
        aes_key_enc=aes_key_enc,
        original_id=new_original_id,
        type=new_type,
        token_mode=new_token_mode,
    )
    if not given(change):
        raise ValidationError("nothing to change: give at least one option. See --help.")
    new_mode = account.mode if change.mode is KEEP else change.mode
    has_aes = change.aes_key_enc is not KEEP or app.store.accounts.has_aes_key(name)
    if new_mode != "plain" and not has_aes:
        raise ValidationError(f"--mode {new_mode} needs --aes-key (the account's EncodingAESKey).")
    change = replace(change, updated_at=iso(app.clock.now()))
    with app.store.transaction():
        _refuse_taken(
            app,
            name,
            appid=None if new_appid is KEEP else new_appid,
            original_id=None if new_original_id is KEEP else new_original_id,
        )
        app.store.accounts.update(name, change)
        app.store.bump_config_version()
        values = given(change)
        shown = {k: v for k, v in values.items() if not k.endswith("_enc") and k != "updated_at"}
        shown.update({k[:-4]: "changed" for k in values if k.endswith("_enc")})
        audit.record(app, "account.update", name, shown)
    warnings = [] if change.mode is KEEP else _mode_warnings(new_mode)
    from bankwx_cli.models.account_changes import AccountChange  # see the module docstring

    return AccountChange(get(app, name), warnings)


def parse_rates(values: list[str]) -> dict[str, Any]:
    """``--rate ENDPOINT=N`` values as the account's ``rates`` setting (calls a second)."""
    rates: dict[str, int] = {}
    for value in values:
        endpoint, sep, number = value.partition("=")
        endpoint = endpoint.strip()
        if not sep or not endpoint or not number.strip().isdigit() or int(number) < 1:
            raise ValidationError(
                f"--rate '{value}' is invalid: use ENDPOINT=N, e.g. message/template/send=200."
            )
        if not endpoint.startswith("/"):
            endpoint = "/cgi-bin/" + endpoint
        rates[endpoint] = int(number)
    return {"rates": rates}


def require_remove(app: AppContext, name: str) -> None:
    """Check, before asking for confirmation, that the operator may remove and it exists."""
    require(app, "account.remove", name)
    get(app, name)


def remove(app: AppContext, name: str) -> None:
    """Remove an account and its secrets from the store. Raises NotFoundError."""
    require(app, "account.remove", name)
    with app.store.transaction():
        get(app, name)
        app.store.accounts.delete(name)
        app.store.bump_config_version()
        audit.record(app, "account.remove", name, {})


def check(app: AppContext, name: str | None) -> CredentialCheck:
    """Prove the account's credentials against WeChat: a stable token and the callback IPs.

    The token comes from the store when a fresh one is there (never forcing a new one), so
    many processes checking at once make one token request. Raises WeChatError (exit 3).
    """
    require(app, "account.read", name)
    account = resolve(app, name)
    client = app.client(account)
    client.token()
    ips = client.callback_ips()
    status = client.tokens.status()
    now = app.clock.time()
    from bankwx_cli.models.credentials import CredentialCheck  # see the module docstring

    return CredentialCheck(
        account=account.name,
        appid=account.appid,
        token_mode=account.token_mode,
        token_age_s=int(now - status.fetched_at) if status else None,
        token_expires_in_s=int(status.expires_at - now) if status else None,
        callback_ips=tuple(ips),
    )


def token_status(app: AppContext, name: str | None) -> TokenState:
    """The shared access token's age and expiry (never the token itself)."""
    require(app, "account.read", name)
    account = resolve(app, name)
    status = app.client(account).tokens.status()
    from bankwx_cli.models.credentials import TokenState  # see the module docstring

    if status is None:
        return TokenState(account.name, account.token_mode)
    now = app.clock.time()
    return TokenState(
        account.name,
        account.token_mode,
        age_s=int(now - status.fetched_at),
        expires_in_s=int(status.expires_at - now),
    )


def sim_registration(app: AppContext, name: str | None, callback: str | None) -> SimRegistration:
    """The plain values the simulator needs to play WeChat for an account (loopback only)."""
    require(app, "account.read", name)
    account = resolve(app, name)
    opened = secrets(app, account)
    from bankwx_cli.models.credentials import SimRegistration  # see the module docstring

    return SimRegistration(
        name=account.name,
        appid=account.appid,
        secret=opened.secret.reveal(),
        token=opened.token.reveal(),
        aes_key=opened.aes_key.reveal() if opened.aes_key else None,
        mode=account.mode,
        original_id=account.original_id,
        callback_url=callback or f"http://127.0.0.1:8080/wx/{account.name}",
    )
