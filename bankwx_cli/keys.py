"""The master key and the authenticated encryption of secrets at rest.

Secrets (AppSecret, callback token, EncodingAESKey, cached access tokens) are sealed with
AES-256-GCM under the master key. Each value is bound to its purpose (associated data such as
``account:main:secret``), so a ciphertext copied into another column does not open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bankwx_cli.errors import KeyError_
from bankwx_cli.models import Secret

__all__ = ["MasterKey", "Secret", "create_key_file", "load_key"]

_VERSION = b"\x01"


@dataclass(frozen=True)
class MasterKey:
    raw: bytes

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(AESGCM.generate_key(bit_length=256))

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
        return hmac.new(self.raw, b"bankwx-key-fingerprint", hashlib.sha256).hexdigest()[:16]

    def seal(self, plaintext: str, purpose: str) -> bytes:
        nonce = os.urandom(12)
        sealed = AESGCM(self.raw).encrypt(nonce, plaintext.encode("utf-8"), purpose.encode())
        return _VERSION + nonce + sealed

    def open(self, blob: bytes, purpose: str) -> str:
        if len(blob) < 1 + 12 + 16 or blob[:1] != _VERSION:
            raise KeyError_(f"the stored secret for {purpose} is damaged. Run bankwx check.")
        try:
            plain = AESGCM(self.raw).decrypt(blob[1:13], blob[13:], purpose.encode())
        except InvalidTag:
            raise KeyError_(
                f"the stored secret for {purpose} does not open with this master key. "
                "Is BANKWX_MASTER_KEY or BANKWX_KEY_FILE the store's key?"
            ) from None
        return plain.decode("utf-8")

    def keyed_hash(self, value: str, purpose: str) -> str:
        """A keyed hash for values that others present to us (API keys): stored, never sealed."""
        return hmac.new(self.raw, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def load_key(env_key: str | None, key_file: Path) -> MasterKey:
    """The configured master key: the variable's, else the key file's (refused if unsafe)."""
    if env_key:
        return MasterKey.from_text(env_key, "BANKWX_MASTER_KEY")
    path = key_file.expanduser()
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
    return MasterKey.from_text(path.read_text(encoding="ascii", errors="replace"), str(path))


def create_key_file(key_file: Path) -> MasterKey:
    """Create a new key file with mode 0600 (never overwriting one)."""
    path = key_file.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = MasterKey.generate()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key.to_text() + "\n")
    return key
