"""The exercise machinery: unfinished, wrong, crashing and right answers each get one clear line."""

from __future__ import annotations

import pytest

from helpers.exercises import ____
from helpers.exercises.core import Incorrect, LegacyExercise, same_result, within_budget
from helpers.measure.recorder import QueryRecorder, Statement


def reference() -> list[int]:
    return [1, 2, 3]


def checker(answer: object) -> str:
    same_result(answer(), reference())  # type: ignore[operator]
    return "three numbers, in order."


exercise = LegacyExercise("numbers", checker, "count to three", reference)


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


def test_budget_names_the_repeated_statement() -> None:
    rec = QueryRecorder([Statement(f"SELECT * FROM t WHERE id = {i}", (), 0.0, False) for i in range(5)])
    within_budget(rec, 5)
    with pytest.raises(Incorrect, match=r"ran 5 statements, the budget is 2 .*ran 5 times: an N\+1"):
        within_budget(rec, 2)
