"""The master key and the authenticated encryption of secrets at rest.

Secrets (AppSecret, callback token, EncodingAESKey, cached access tokens) are sealed with
AES-256-GCM under the master key. Each value is bound to its purpose (associated data such as
``account:main:secret``), so a ciphertext copied into another column does not open.

The same sealing keeps the receiver's stored passive replies and the outbox's payloads at rest
(``Sealer``: the store's handle on the key, which the context gives it). A sealed value is
``VERSION (1 byte) | nonce (12) | ciphertext and tag``; a key keeps one ``AESGCM`` object for
its life, so sealing a reply on the receiver's hot path costs a few microseconds.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from bankwx_cli.errors import KeyError_
from bankwx_cli.models.accounts import Secret

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "MasterKey",
    "Sealer",
    "Secret",
    "UnsealError",
    "create_key_file",
    "load_key",
    "random_bytes",
]

_VERSION = b"\x01"
_OVERHEAD = 1 + 12 + 16  # version, nonce, tag


class _RandomBytes:
    """``os.urandom(n)``, read 4 KiB at a time: on the receiver's hot path a reply's sealing
    nonce and its encrypted envelope's random prefix take a system call each otherwise.
    Thread-safe; a forked process starts on bytes of its own (none of its parent's reused)."""

    SIZE = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._at = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._buffer, self._at = b"", 0

    def __call__(self, n: int) -> bytes:
        if n > self.SIZE:
            return os.urandom(n)
        with self._lock:
            if self._at + n > len(self._buffer):
                self._buffer, self._at = os.urandom(self.SIZE), 0
            chunk = self._buffer[self._at : self._at + n]
            self._at += n
        return chunk


random_bytes = _RandomBytes()


class UnsealError(KeyError_):
    """A sealed value is damaged, or was sealed under another key or for another purpose."""


@dataclass(frozen=True)
class MasterKey:
    raw: bytes

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(os.urandom(32))

    @classmethod
    def from_text(cls, text: str, origin: str) -> MasterKey:
        try:
            raw = base64.urlsafe_b64decode(text.strip().encode("ascii"))
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raw = b""
        if len(raw) != 32:
            raise KeyError_(
                f"the master key in {origin} is not URL-safe base64 of 32 bytes. "
                "Generate one with: python -c 'import base64,os;print("
                "base64.urlsafe_b64encode(os.urandom(32)).decode())'"
            )
        return cls(raw)

    def to_text(self) -> str:
        return base64.urlsafe_b64encode(self.raw).decode("ascii")

    @property
    def fingerprint(self) -> str:
        """A public identifier of the key (HMAC of a constant), kept in the store."""
        import hashlib  # with hmac, loaded when used, not by every command (start-up time)
        import hmac

        return hmac.new(self.raw, b"bankwx-key-fingerprint", hashlib.sha256).hexdigest()[:16]

    @cached_property
    def _aead(self) -> AESGCM:
        """One AESGCM object for the key's life (it keeps the expanded key). cryptography is
        imported here, on first use: commands that never open a sealed value start faster."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        return AESGCM(self.raw)

    def seal(self, plaintext: str | bytes, purpose: str) -> bytes:
        """Seal text (as UTF-8) or bytes for purpose (the associated data)."""
        data = plaintext.encode("utf-8") if isinstance(plaintext, str) else plaintext
        nonce = random_bytes(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, data, purpose.encode())

    def seal_many(self, values: Sequence[bytes | None], purpose: str) -> list[bytes | None]:
        """``seal`` of each of values (None stays None), their nonces drawn at once: the
        receiver's group write seals a reply a message, and one ``seal`` a value cost about as
        much again in Python as in the cipher."""
        encrypt, associated = self._aead.encrypt, purpose.encode()
        nonces = random_bytes(12 * len(values))
        sealed: list[bytes | None] = []
        for at, value in zip(range(0, len(nonces), 12), values, strict=True):
            if value is None:
                sealed.append(None)
            else:
                nonce = nonces[at : at + 12]
                sealed.append(_VERSION + nonce + encrypt(nonce, value, associated))
        return sealed

    def open(self, blob: bytes, purpose: str) -> str:
        """The text sealed for purpose. Raises UnsealError (a KeyError_) when it does not open."""
        plain = self.open_bytes(blob, purpose, "secret")
        try:
            return plain.decode("utf-8")
        except UnicodeDecodeError:
            raise UnsealError(
                f"the stored secret for {purpose} is damaged. Run bankwx check."
            ) from None

    def open_bytes(self, blob: bytes, purpose: str, what: str = "value") -> bytes:
        """The bytes sealed for purpose. Raises UnsealError when they do not open."""
        blob = bytes(blob)
        if len(blob) < _OVERHEAD or blob[:1] != _VERSION:
            raise UnsealError(f"the stored {what} for {purpose} is damaged. Run bankwx check.")
        from cryptography.exceptions import InvalidTag

        try:
            return self._aead.decrypt(blob[1:13], blob[13:], purpose.encode())
        except InvalidTag:
            raise UnsealError(
                f"the stored {what} for {purpose} does not open with this master key. "
                "Is BANKWX_MASTER_KEY or BANKWX_KEY_FILE the store's key?"
            ) from None

    def keyed_hash(self, value: str, purpose: str) -> str:
        """A keyed hash for values that others present to us (API keys): stored, never sealed."""
        import hashlib  # see fingerprint
        import hmac

        return hmac.new(self.raw, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def load_key(env_key: str | None, key_file: Path) -> MasterKey:
    """The configured master key: the variable's, else the key file's (refused if unsafe)."""
    if env_key:
        return MasterKey.from_text(env_key, "BANKWX_MASTER_KEY")
    path = key_file.expanduser()
    refuse_directory(path)
    if not path.exists():
        raise KeyError_(
            f"no master key: BANKWX_MASTER_KEY is unset and there is no key file at {path}. "
            "Set BANKWX_MASTER_KEY or BANKWX_KEY_FILE to the store's key."
        )
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyError_(
            f"the key file {path} can be read by others (mode {stat.S_IMODE(mode):o}). "
            f"Run: chmod 600 {path}"
        )
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise KeyError_(
            f"cannot read the key file {path} ({exc.strerror or exc}). "
            "Set BANKWX_KEY_FILE to a key file this user can read."
        ) from None
    return MasterKey.from_text(text, str(path))


def refuse_directory(path: Path) -> None:
    """KeyError_ when the key file's path is a directory (BANKWX_KEY_FILE set to a folder)."""
    if path.is_dir():
        raise KeyError_(
            f"the key file {path} is a directory, not a key file. Set BANKWX_KEY_FILE to the "
            f"key file itself (e.g. {path / 'master.key'})."
        )


def create_key_file(key_file: Path) -> MasterKey:
    """Create a new key file with mode 0600, whatever the umask (never overwriting one); its
    folder is made (0700) when missing. Raises KeyError_ when it cannot be made."""
    path = key_file.expanduser()
    refuse_directory(path)
    key = MasterKey.generate()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise KeyError_(
            f"cannot create the key file {path} ({exc.strerror or exc}). Set BANKWX_KEY_FILE "
            "to a path this user can write, or BANKWX_MASTER_KEY to a key."
        ) from None
    os.fchmod(fd, 0o600)  # the umask may have taken more than it should
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key.to_text() + "\n")
    return key


class Sealer:
    """The store's handle on the master key, for the values it keeps sealed at rest.

    The store is opened before the key is known (the key is checked against the store's
    fingerprint), so the context gives a function that returns the key; it is called once,
    when a value is first sealed or opened. Without a bound key, sealing raises KeyError_.
    """

    def __init__(self, key: Callable[[], MasterKey] | None = None) -> None:
        self._source = key
        self._key: MasterKey | None = None

    @property
    def key(self) -> MasterKey:
        key = self._key
        if key is None:
            source = self._source
            if source is None:
                raise KeyError_("no master key is available to this store.")
            key = source()
            key._aead  # noqa: B018 - build the AESGCM object now, not on the hot path
            self._key = key
        return key

    def seal(self, value: str | bytes, purpose: str) -> bytes:
        return self.key.seal(value, purpose)

    def seal_many(self, values: Sequence[bytes | None], purpose: str) -> list[bytes | None]:
        return self.key.seal_many(values, purpose)

    def open(self, blob: bytes, purpose: str) -> bytes:
        """Raises UnsealError when blob does not open with the key."""
        return self.key.open_bytes(blob, purpose)
