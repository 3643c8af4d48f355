"""One batch report for every batch command: counts, one summary line, the exit code."""

from __future__ import annotations

import pytest

from bankwx_cli.models.batches import BatchFailure, BatchReport, no_progress


def refused(items: int = 1) -> BatchFailure:
    return BatchFailure(
        "batch 1 (2 openids: o1, o2)", "WeChat 40003 (invalid openid): x.", items, wechat=True
    )


def test_a_tagging_summary_counts_done_skipped_failed() -> None:
    report = BatchReport(done=3, skipped=1, failures=(refused(2),), title="Blacklisted on 'main'")
    assert report.summary() == "Blacklisted on 'main': 3 done, 1 skipped, 2 failed."
    assert report.failures[0].message() == (
        "batch 1 (2 openids: o1, o2): WeChat 40003 (invalid openid): x."
    )


def test_a_sending_summary_counts_sent_unknown_and_retries() -> None:
    report = BatchReport(
        done=5,
        retried=2,
        failures=(BatchFailure("unit 7", "caught mid-send", unknown=True),),
        done_word="sent",
        counts_unknown=True,
    )
    assert report.summary() == "5 sent, 0 failed, 1 unknown, 2 to retry."
    assert (report.failed, report.unknown) == (0, 1)


def test_exit_codes() -> None:
    assert BatchReport(done=1).exit_code == 0
    assert BatchReport(failures=(refused(), refused())).exit_code == 3
    other = BatchFailure("unit 3", "network down")
    assert BatchReport(failures=(refused(), other)).exit_code == 1


def test_reports_add_up_without_setattr() -> None:
    one = BatchReport(done=2, retried=1, failures=(refused(),), done_word="sent")
    two = BatchReport(done=3, retried=0, done_word="sent")
    both = one + two
    assert (both.done, both.retried, both.failed, both.skipped) == (5, 1, 1, None)
    assert both.summary() == "5 sent, 1 failed, 1 to retry."


def test_no_progress_takes_the_calls_of_a_bar(capsys: pytest.CaptureFixture[str]) -> None:
    """The bar of scripts and tests: every call of the progress interface, and no output."""
    with no_progress("Syncing", None) as bar:
        assert bar.total(10) is None
        assert bar.advance(3) is None
        assert bar.advance() is None
    assert capsys.readouterr() == ("", "")
