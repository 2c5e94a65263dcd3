"""The exercise machinery: a question declared at module level, bound to a course, gives unfinished, wrong,
crashing and right answers one clear line each, its hints in order, and its solution's code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import pytest

from helpers.exercises import ____
from helpers.exercises.core import Exercise, Incorrect, Question, same_result, within_budget
from helpers.measure.recorder import QueryRecorder, Statement

if TYPE_CHECKING:
    from helpers.course import Course

COURSE = cast("Course", object())  # a stand-in: these checks read nothing from the course they are bound to


def reference() -> list[int]:
    return [1, 2, 3]


def _check_numbers(course: Course, answer: Any) -> str:
    assert course is COURSE  # the check is handed the course its question was bound to
    same_result(answer(), reference())
    return "three numbers, in order."


NUMBERS = Question(
    title="Count to three",
    starter="def numbers():\n    return ____\n\n\nex.q1.check(numbers)",
    check=_check_numbers,
    hints=("count to three",),
    solution=reference,
)
TWO_HINTS = Question(
    title="Count to three, two hints",
    starter="",
    check=_check_numbers,
    hints=("a list of numbers", "[1, 2, 3]"),
    solution="def numbers():\n    return [1, 2, 3]\n",
)
exercise = NUMBERS.bind(COURSE)


def test_a_bound_question_is_an_exercise_with_its_title() -> None:
    assert isinstance(exercise, Exercise) and exercise.question is NUMBERS and exercise.course is COURSE
    assert exercise.title == "Count to three"


def test_right_answer(capsys: pytest.CaptureFixture[str]) -> None:
    assert exercise.check(lambda: [1, 2, 3])
    assert "Correct! three numbers, in order." in capsys.readouterr().out


def test_unfinished_starter_is_not_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    def starter() -> object:
        return ____

    assert not exercise.check(starter)
    assert not exercise.check(____)
    assert "Not answered yet" in capsys.readouterr().out


def test_wrong_answer_says_where(capsys: pytest.CaptureFixture[str]) -> None:
    assert not exercise.check(lambda: [1, 3, 2])
    out = capsys.readouterr().out
    assert "item 1 of your result is 3, expected 2" in out and out.count("\n") == 1


def test_crashing_answer_is_reported_not_raised(capsys: pytest.CaptureFixture[str]) -> None:
    assert not exercise.check(lambda: 1 / 0)
    assert "raised ZeroDivisionError: division by zero" in capsys.readouterr().out


def test_hint_and_solution(capsys: pytest.CaptureFixture[str]) -> None:
    exercise.hint()
    exercise.solution()
    out = capsys.readouterr().out
    assert "Hint: count to three" in out and "def reference()" in out


def test_hints_go_in_order_and_say_when_there_are_no_more(capsys: pytest.CaptureFixture[str]) -> None:
    two = TWO_HINTS.bind(COURSE)
    two.hint()
    assert capsys.readouterr().out.strip() == "Hint 1 of 2: a list of numbers"
    two.hint(2)
    assert capsys.readouterr().out.strip() == "Hint 2 of 2: [1, 2, 3]"
    two.hint(3)
    assert capsys.readouterr().out.strip().startswith("There are 2 hints: hint(1) to hint(2)")


def test_a_solution_given_as_text_is_shown_as_it_is(capsys: pytest.CaptureFixture[str]) -> None:
    TWO_HINTS.bind(COURSE).solution()
    assert "return [1, 2, 3]" in capsys.readouterr().out


def test_budget_names_the_repeated_statement() -> None:
    rec = QueryRecorder([Statement(f"SELECT * FROM t WHERE id = {i}", (), 0.0, False) for i in range(5)])
    within_budget(rec, 5)
    with pytest.raises(Incorrect, match=r"ran 5 statements, the budget is 2 .*ran 5 times: an N\+1"):
        within_budget(rec, 2)
