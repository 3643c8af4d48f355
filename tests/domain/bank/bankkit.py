"""What the bank services' tests share besides fixtures (a module of its own: conftest modules
of several test folders clash by name when collected together)."""

from __future__ import annotations

from typing import Any

KEY = "sandbox-bank-key-42"  # the sandbox's key in these tests
OPENID = "oBank0000000000000000000001"
OTHER = "oBank0000000000000000000002"


def yuan(fen: int) -> str:
    """Fen rendered as the replies render it (12,345.67), written independently of the code."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


def amounts(fens: list[int]) -> list[bytes]:
    """Amounts as they must never be stored: rendered (12,345.67) from 1,000.00 up, and in fen
    from 7 digits up (shorter ones could occur by chance, in a timestamp's microseconds)."""
    found: list[bytes] = []
    for fen in fens:
        if abs(fen) >= 100_000:
            found.append(yuan(abs(fen)).encode())
        if abs(fen) >= 1_000_000:
            found.append(str(abs(fen)).encode())
    return found


def secrets_of(customers: list[dict[str, Any]]) -> list[bytes]:
    """What must never be in bankwx's files: every full card and account number, and every
    balance (transactions and bills are added by the caller)."""
    found: list[bytes] = []
    for customer in customers:
        found += [card["number"].encode() for card in customer["cards"]]
        found += [account["number"].encode() for account in customer["accounts"]]
        found += amounts([account["balance_fen"] for account in customer["accounts"]])
    return found
