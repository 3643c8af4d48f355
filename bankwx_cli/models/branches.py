"""Branches and ATMs (网点, 地理位置): rows, nearest answers, CSV import results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bankwx_cli.models.batches import BatchFailure, BatchReport

BRANCH_TYPES = ("branch", "atm")


@dataclass(frozen=True)
class Branch:
    """A branch or an ATM of an account; ``id`` is the bank's own, unique per account.

    Coordinates are degrees in the system the account's location messages use (GCJ-02 in
    mainland China)."""

    account: str
    id: str
    name: str
    type: str  # one of BRANCH_TYPES
    lat: float
    lng: float
    address: str = ""
    phone: str = ""
    hours: str = ""
    services: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "lat": self.lat,
            "lng": self.lng,
            "address": self.address,
            "phone": self.phone,
            "hours": self.hours,
            "services": list(self.services),
            "account": self.account,
        }


@dataclass(frozen=True)
class NearBranch:
    """A branch and its great-circle distance from a point, in metres."""

    branch: Branch
    distance_m: float

    def to_json(self) -> dict[str, Any]:
        found = self.branch.to_json()
        return {
            "id": found.pop("id"),
            "name": found.pop("name"),
            "type": found.pop("type"),
            "distance_m": round(self.distance_m, 1),
            **found,
        }


@dataclass(frozen=True)
class RowError:
    """A bad line of a branch file: its number (1 is the header) and why."""

    line: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "reason": self.reason}


@dataclass(frozen=True)
class ParsedFile:
    """A branch file read: the valid rows (with their line numbers) and the bad lines."""

    rows: tuple[tuple[int, Branch], ...] = ()
    errors: tuple[RowError, ...] = ()
    header_ok: bool = True  # False: the header (or its encoding) is wrong; no row was read


@dataclass(frozen=True)
class ImportResult:
    """What ``branch import`` did (or, with ``dry_run``, would do)."""

    account: str
    imported: int
    skipped: int
    errors: tuple[RowError, ...] = ()
    removed: int = 0  # with --replace: the account's branches not in the file
    dry_run: bool = False
    ids: tuple[str, ...] = field(default=(), repr=False)  # the ids imported

    def report(self, source: str = "") -> BatchReport:
        """The batch report: imported, skipped and bad rows, each bad line named."""
        what = f" {source}" if source else ""
        title = (
            "Dry run of import" if self.dry_run else "Import"
        ) + f"{what} into '{self.account}'"
        return BatchReport(
            done=self.imported,
            skipped=self.skipped,
            failures=tuple(BatchFailure(f"line {e.line}", e.reason) for e in self.errors),
            title=title,
            done_word="to import" if self.dry_run else "imported",
            failed_word="bad",
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "skipped": self.skipped,
            "errors": [e.to_json() for e in self.errors],
            "removed": self.removed,
            "dry_run": self.dry_run,
        }
