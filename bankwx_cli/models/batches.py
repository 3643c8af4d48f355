"""Batch reports, shared by every batch command (and the progress interface they take, from
``models.progress``)."""

from __future__ import annotations

from dataclasses import dataclass

from bankwx_cli.models.progress import Progress as Progress
from bankwx_cli.models.progress import ProgressBar as ProgressBar
from bankwx_cli.models.progress import no_progress as no_progress


@dataclass(frozen=True)
class BatchFailure:
    """A part of a batch run that failed: what it was, why, and how many items it held."""

    what: str  # e.g. "batch 2 (50 openids: o1, o2, o3, ...)" or "unit 17"
    reason: str
    items: int = 1
    wechat: bool = False  # WeChat refused it (a run whose every failure is one exits 3)
    unknown: bool = False  # its outcome is not known (counted as unknown, not failed)

    def message(self) -> str:
        return f"{self.what}: {self.reason}"


@dataclass(frozen=True)
class BatchReport:
    """What a batch command did: items done, skipped and failed, one summary line and the
    exit code (DESIGN §3: 0 all done; 3 when every failure was WeChat's refusal; else 1).

    A count that is None is not one the command keeps, and the summary leaves it out.
    """

    done: int = 0
    skipped: int | None = None
    retried: int | None = None  # items to be tried again later
    failures: tuple[BatchFailure, ...] = ()
    title: str = ""  # what was done, for the summary ("Tagged with 'VIP' on 'main'")
    done_word: str = "done"  # "sent" for a sending run
    failed_word: str = "failed"  # "bad" for an import's bad rows
    counts_unknown: bool = False  # the run can lose track of an item (caught mid-send)

    @property
    def failed(self) -> int:
        return sum(f.items for f in self.failures if not f.unknown)

    @property
    def unknown(self) -> int:
        return sum(f.items for f in self.failures if f.unknown)

    @property
    def exit_code(self) -> int:
        """The batch rule, in this one place (errors.OK, WECHAT, FAILED: models imports
        nothing from the project; tests hold the codes to errors')."""
        if not self.failures:
            return 0
        return 3 if all(f.wechat for f in self.failures) else 1

    def summary(self) -> str:
        parts = [f"{self.done} {self.done_word}"]
        if self.skipped is not None:
            parts.append(f"{self.skipped} skipped")
        parts.append(f"{self.failed} {self.failed_word}")
        if self.counts_unknown:
            parts.append(f"{self.unknown} unknown")
        if self.retried is not None:
            parts.append(f"{self.retried} to retry")
        counts = ", ".join(parts) + "."
        return f"{self.title}: {counts}" if self.title else counts

    def __add__(self, other: BatchReport) -> BatchReport:
        """Both runs' counts in one report (this one's title and words)."""

        def both(a: int | None, b: int | None) -> int | None:
            return None if a is None and b is None else (a or 0) + (b or 0)

        return BatchReport(
            done=self.done + other.done,
            skipped=both(self.skipped, other.skipped),
            retried=both(self.retried, other.retried),
            failures=self.failures + other.failures,
            title=self.title,
            done_word=self.done_word,
            failed_word=self.failed_word,
            counts_unknown=self.counts_unknown or other.counts_unknown,
        )
