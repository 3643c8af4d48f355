"""The audit log's entries."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    operator: str
    action: str
    target: str
    params: dict[str, Any]
    outcome: str
    os_user: str = ""  # the operating-system user who ran the command ('' before m0009)
    host: str = ""
    prev_hash: str = ""
    hash: str = ""

    def to_json(self) -> dict[str, Any]:
        """As ``bankwx audit`` shows it (the chain's previous hash left out)."""
        shown = asdict(self)
        shown.pop("prev_hash")
        return shown
