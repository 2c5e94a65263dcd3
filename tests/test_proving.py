"""The declared exercise form, and the proof every check's tests give (tests/proving.py) — which can fail."""

from __future__ import annotations

from typing import Any

import pytest
from proving import prove, verdict

from helpers.course import Course
from helpers.exercises import ____
from helpers.exercises.core import Incorrect, Question, same_result


def _count_to_three(course: Course, answer: Any) -> str:
    same_result(answer(), [1, 2, 3])
    return "three numbers, in order."


Q = Question(
    title="Count to three",
    starter="def numbers():\n    return ____\n",
    check=_count_to_three,
    hints=("a list", "the literal [1, 2, 3]"),
    solution="def numbers():\n    return [1, 2, 3]\n",
)


def test_a_declared_question_checks_hints_in_tiers_and_shows_its_solution(
    course: Course, capsys: pytest.CaptureFixture[str]
) -> None:
    exercise = Q.bind(course)
    assert verdict(exercise.check, lambda: [1, 2, 3]) == (True, "Correct! three numbers, in order.")
    assert verdict(exercise.check, lambda: ____)[1].startswith("Not answered yet")
    exercise.hint()
    exercise.hint(2)
    exercise.hint(3)
    exercise.solution()
    out = capsys.readouterr().out
    assert "Hint 1 of 2: a list" in out and "Hint 2 of 2: the literal [1, 2, 3]" in out
    assert "There are 2 hints" in out and "return [1, 2, 3]" in out


def test_prove_holds_a_check_to_its_right_and_wrong_answers(course: Course) -> None:
    check = Q.bind(course).check
    prove(
        check,
        right=[lambda: [1, 2, 3], lambda: list(range(1, 4))],
        wrong=[(lambda: [1, 3, 2], "item 1"), (lambda: [1, 2], "2 items"), (lambda: 1 / 0, "ZeroDivisionError")],
    )
    with pytest.raises(AssertionError, match="was accepted"):  # a check that lets a wrong answer through
        prove(check, right=[lambda: [1, 2, 3]] * 2, wrong=[(lambda: [1, 2, 3], "x")] * 3)
    with pytest.raises(AssertionError, match="was rejected"):
        prove(check, right=[lambda: [3]] * 2, wrong=[(lambda: [1], "")] * 3)
    with pytest.raises(AssertionError, match="2\\+ right and 3\\+ wrong"):
        prove(check, right=[lambda: [1, 2, 3]], wrong=[])


def test_an_incorrect_answer_says_why_in_one_line(course: Course) -> None:
    def wrong(course: Course, answer: Any) -> str:
        raise Incorrect("the reason, in one line")

    passed, said = verdict(Question("t", "", wrong, ("h",), "s").bind(course).check, 1)
    assert not passed and said == "Not yet — the reason, in one line"
