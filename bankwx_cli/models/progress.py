"""The progress interface of every batch run (a bar on a terminal, nothing elsewhere).

Apart from ``models.batches``, so that every command's shared code (``commands._cli``) loads
it without the batch report's dataclasses (start-up time)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


class ProgressBar(Protocol):
    """What a long run reports its progress to (a bar on a terminal, nothing elsewhere)."""

    def advance(self, n: int = 1) -> None: ...

    def total(self, n: int | None) -> None: ...


# Opens a progress bar: a description and the total (None: not known yet). Every batch run
# takes one (``Cli.progress`` on the command line, ``no_progress`` elsewhere).
Progress = Callable[[str, int | None], AbstractContextManager[ProgressBar]]


class _NoBar:
    def advance(self, n: int = 1) -> None:
        pass

    def total(self, n: int | None) -> None:
        pass


@contextmanager
def no_progress(description: str, total: int | None) -> Iterator[ProgressBar]:
    """A Progress that shows nothing."""
    yield _NoBar()
