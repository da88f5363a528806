"""``ftaudit.progress``: progress bars that ``trainer.progress_bar=false`` turns off, and one timed log line per stage."""

import logging
import re
import time

import pytest

from ftaudit.progress import progress, stage


def test_a_bar_is_drawn_on_stderr_only_when_enabled(capsys):
    assert list(progress(range(3), "encoding", enabled=True)) == [0, 1, 2]
    shown = capsys.readouterr()
    assert "encoding:" in shown.err and "/3 [" in shown.err and shown.out == ""  # a bar counting 3 steps
    assert list(progress(range(3), "encoding", enabled=False)) == [0, 1, 2]
    assert capsys.readouterr() == ("", "")


def test_a_stage_logs_one_line_with_its_duration(caplog):
    caplog.set_level(logging.INFO, logger="ftaudit.progress")
    with stage("probe degradation/stsb") as timed:
        time.sleep(0.12)
    assert timed.seconds >= 0.12
    (line,) = caplog.messages
    assert re.fullmatch(r"probe degradation/stsb: \d+\.\d s", line) and float(line.split()[-2]) >= 0.1


def test_nested_stages_name_their_enclosing_stage_and_an_outcome_joins_the_line(caplog):
    caplog.set_level(logging.INFO, logger="ftaudit.progress")
    with stage("WiSE-FT"):
        with stage("alpha 0.5") as timed:
            timed.outcome = "skipped: no data"
    assert [re.sub(r"\d+\.\d s", "N s", line) for line in caplog.messages] == [
        "WiSE-FT / alpha 0.5: N s (skipped: no data)",
        "WiSE-FT: N s",
    ]


def test_a_stage_that_fails_logs_nothing_and_leaves_no_enclosing_name(caplog):
    caplog.set_level(logging.INFO, logger="ftaudit.progress")
    with pytest.raises(ValueError), stage("broken"):
        raise ValueError("bad")
    with stage("next"):
        pass
    assert [line.split(":")[0] for line in caplog.messages] == ["next"]
