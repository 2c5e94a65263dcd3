"""Proving a check: it accepts every right answer a learner would plausibly write and rejects the wrong ones,
each with the reason it names, and gives an answer the same verdict on SQLite and PostgreSQL (the `course`
fixture runs every test on both).

    def test_q1_is_proven(course):
        prove(Q1.bind(course).check, right=[reference, written_otherwise],
              wrong=[(no_order_by, "ORDER BY"), (python_filter, "filter in the SELECT"), (all_columns, "reads")])
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence
from typing import Any

Check = Callable[[Any], Any]  # an exercise's or a task's check(answer): true when the answer is right


def verdict(check: Check, answer: Any) -> tuple[bool, str]:
    """Run a check as a notebook cell does; return whether it passed and the one line it said."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        passed = bool(check(answer))
    return passed, out.getvalue().strip()


def prove(check: Check, *, right: Sequence[Any], wrong: Sequence[tuple[Any, str]]) -> None:
    """At least two right answers pass, and at least three wrong ones fail, each saying what it names."""
    assert len(right) >= 2 and len(wrong) >= 3, "a proven check has 2+ right and 3+ wrong answers"
    for i, answer in enumerate(right):
        passed, said = verdict(check, answer)
        assert passed, f"right answer {i} was rejected: {said}"
    for i, (answer, reason) in enumerate(wrong):
        passed, said = verdict(check, answer)
        assert not passed, f"wrong answer {i} ({reason!r}) was accepted: {said}"
        assert reason in said, f"wrong answer {i}: expected the reason {reason!r}, the check said: {said}"
