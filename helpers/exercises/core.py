"""What every exercise is made of: `Question` (declared in a lesson's module), `Exercise` (a question bound to
the lesson's course), the blank `____`, verdicts in one coloured line (`judge`), and the checks' building blocks.

A lesson's module declares its questions at module level (`Q1 = Question(...)`) and returns them bound, with its
improve-the-app task, as a typed dataclass: `ex = exercises(course)`, then `ex.q1.check(answer)`, `ex.q1.hint()`,
`ex.q1.hint(2)`, `ex.q1.solution()`. Tests import a question directly: `Q1.bind(course).check(answer)`.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import CodeType
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask
from sqlalchemy import Engine

from ..errors import CourseError
from ..measure.display import say, show_code
from ..measure.harness import first_difference
from ..measure.recorder import QueryRecorder, record

if TYPE_CHECKING:
    from ..course import Course

__all__ = [
    "CheckResult",
    "Checker",
    "Exercise",
    "Incorrect",
    "NotAnswered",
    "Question",
    "____",
    "blueprint_views",
    "contains_blank",
    "counting",
    "hint_text",
    "judge",
    "same_result",
    "within_budget",
]


class _Blank:
    """The ____ a starter cell leaves for the learner to replace."""

    def __repr__(self) -> str:
        return "____"

    def __call__(self, *args: Any, **kwargs: Any) -> _Blank:
        return self

    def __getattr__(self, name: str) -> _Blank:
        if name.startswith("__"):
            raise AttributeError(name)
        return self


____ = _Blank()


class CheckResult:
    """True or false like a bool, but shows nothing under the cell: the coloured line said it all."""

    def __init__(self, passed: bool) -> None:
        self.passed = passed

    def __bool__(self) -> bool:
        return self.passed

    def __eq__(self, other: object) -> bool:
        return bool(other) == self.passed if isinstance(other, bool | CheckResult) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.passed)

    def __repr__(self) -> str:
        return f"CheckResult({self.passed})"

    def _ipython_display_(self) -> None:
        """Display nothing."""


class Incorrect(CourseError):
    """Raised inside a check with the one-line reason an answer is not right yet."""


class NotAnswered(Incorrect):
    """The starter still has ____ in it."""


# A question's check: given the lesson's course and the learner's answer, raise Incorrect with the reason it is
# not right yet, or return a sentence saying what it got right (None: "Correct!" alone).
Checker = Callable[["Course", Any], "str | None"]


@dataclass(frozen=True)
class Question:
    """One exercise, declared at module level in its lesson's module, in the spirit of Kaggle's learntools.

    `starter` is the code the notebook's starter cell holds (with `____` where the learner writes); `check`
    judges an answer against the lesson's database; `hints` go from the idea (`hint()`) to the API to look up
    (`hint(2)`); `solution` is the reference, whose source `solution()` shows (or the code itself, as text).
    A question is bound to a lesson's course with `bind(course)`, which gives the `Exercise` a notebook uses.
    """

    title: str
    starter: str
    check: Checker
    hints: tuple[str, ...]
    solution: Callable[..., Any] | str

    def bind(self, course: Course) -> Exercise:
        return Exercise(self, course)


@dataclass(frozen=True)
class Exercise:
    """A question bound to a lesson's course: `check(answer)`, `hint()`, `hint(2)`, `solution()`."""

    question: Question
    course: Course = field(repr=False)

    @property
    def title(self) -> str:
        return self.question.title

    def check(self, answer: Any) -> CheckResult:
        """Say whether `answer` is right, and why not; the result is true when it is."""
        passed, detail = judge(answer, lambda given: self.question.check(self.course, given))
        if passed:
            say(f"Correct! {detail or ''}".strip(), "#1b7a2b")
        return CheckResult(passed)

    def hint(self, level: int = 1) -> None:
        """The question's hints in order: 1 names the idea, 2 the API to look up."""
        say(hint_text(self.question.hints, level), "#3a6fb0")

    def solution(self) -> None:
        """Show the reference solution's code."""
        _show_solution(self.question.solution)


def hint_text(hints: tuple[str, ...], level: int) -> str:
    """Hint number `level` (from 1), or what to do when there are no more."""
    if 1 <= level <= len(hints):
        return f"Hint {level} of {len(hints)}: {hints[level - 1]}" if len(hints) > 1 else f"Hint: {hints[0]}"
    many = "is one hint" if len(hints) == 1 else f"are {len(hints)} hints"
    return f"There {many}: hint(1) to hint({len(hints)}); solution() shows the course's answer."


def _show_solution(solution: Callable[..., Any] | str) -> None:
    """Show a reference solution: its source (a function, a class), or the code given as text."""
    code = solution if isinstance(solution, str) else inspect.getsource(solution)
    show_code(textwrap.dedent(code))


def judge(
    answer: Any,
    checker: Callable[[Any], str | None],
    *,
    explain: Callable[[Exception], str | None] | None = None,
    who: str = "your answer",
) -> tuple[bool, str | None]:
    """Run `checker(answer)`; on any failure say why in one coloured line. Returns (passed, detail).

    `____` left in the answer is "not answered yet", an `Incorrect` its reason, and anything else the learner's
    code raised one line naming the exception (`explain` may word it better); a CourseError is the course's own.
    """
    try:
        if contains_blank(answer):
            raise NotAnswered("replace ____ with your code, then run this cell again")
        return True, checker(answer)
    except NotAnswered as exc:
        say(f"Not answered yet: {exc}.", "#7a6a00")
    except Incorrect as exc:
        say(f"Not yet — {exc}", "#b00020")
    except CourseError:
        raise
    except Exception as exc:  # the learner's code failed: say how, keep it to one line
        reason = str(exc).splitlines()[0] if str(exc) else ""
        better = explain(exc) if explain else None
        say(f"Not yet — {better or f'{who} raised {type(exc).__name__}: {reason}'}", "#b00020")
    return False, None


def contains_blank(answer: Any) -> bool:
    """Whether an answer still holds the starter's ____ (in a value, a function, or a blueprint's views)."""

    if isinstance(answer, _Blank):
        return True
    if isinstance(answer, list | tuple | set):
        return any(contains_blank(a) for a in answer)
    if isinstance(answer, Blueprint):
        return any(contains_blank(view) for view in blueprint_views(answer))
    if callable(answer) and hasattr(answer, "__code__"):
        return _code_mentions_blank(answer.__code__) or _source_mentions_blank(answer)
    return False


def _code_mentions_blank(code: CodeType) -> bool:
    """____ in a function's code or in the code of what it nests (comprehensions, inner functions)."""
    return "____" in code.co_names or any(
        _code_mentions_blank(const) for const in code.co_consts if isinstance(const, CodeType)
    )


def _source_mentions_blank(function: Any) -> bool:
    """____ in a function's source, decorators included: `@cache.cached(____)` leaves it outside the code."""

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(inspect.unwrap(function))))
    except (OSError, TypeError, SyntaxError):  # no source to read (a builtin, a lambda in an expression, ...)
        return False
    return any(isinstance(node, ast.Name) and node.id == "____" for node in ast.walk(tree))


def blueprint_views(blueprint: Any) -> list[Callable[..., Any]]:
    """The view functions a Flask Blueprint registers (found by registering it on a scratch app)."""

    app = Flask("scratch")
    app.register_blueprint(blueprint)
    return [view for name, view in app.view_functions.items() if name.startswith(f"{blueprint.name}.")]


# ---------------------------------------------------------------- building blocks for checkers
@contextmanager
def counting(engine: Engine) -> Iterator[QueryRecorder]:
    """Record statements while the answer runs."""
    with record(engine) as rec:
        yield rec


def same_result(got: Any, expected: Any, what: str = "result") -> None:
    """Raise Incorrect unless two results are equal by value (rows compare as tuples)."""
    difference = first_difference(expected, got, what)
    if difference is not None:
        raise Incorrect(difference)


def within_budget(rec: QueryRecorder, budget: int) -> None:
    """Raise Incorrect if more statements ran than the budget allows."""
    if rec.count > budget:
        repeated = rec.repeated()
        why = f" (one statement shape ran {max(repeated.values())} times: an N+1?)" if repeated else ""
        raise Incorrect(f"it ran {rec.count} statements, the budget is {budget}{why}")
