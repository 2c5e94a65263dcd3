"""Exercises: a starter with ____, then check(answer), hint() and solution(), in the learntools style."""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from ..errors import CourseError
from ..harness import _normalize
from ..recorder import Plan, QueryRecorder, record


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


@dataclass
class Exercise:
    """One exercise: a check on the learner's answer, a hint, and a reference solution."""

    title: str
    checker: Callable[[Any], str | None]  # raises Incorrect; may return a success detail
    hint_text: str
    solution_obj: Callable[..., Any] | str

    def check(self, answer: Any) -> CheckResult:
        """Say whether `answer` is right, and why not; the result is true when it is."""
        try:
            if _contains_blank(answer):
                raise NotAnswered("replace ____ with your code, then run this cell again")
            detail = self.checker(answer)
        except NotAnswered as exc:
            _say(f"Not answered yet: {exc}.", "#7a6a00")
            return CheckResult(False)
        except Incorrect as exc:
            _say(f"Not yet — {exc}", "#b00020")
            return CheckResult(False)
        except CourseError:
            raise
        except Exception as exc:  # the learner's code failed: say how, keep it to one line
            reason = str(exc).splitlines()[0] if str(exc) else ""
            _say(f"Not yet — your answer raised {type(exc).__name__}: {reason}", "#b00020")
            return CheckResult(False)
        _say(f"Correct! {detail or ''}".strip(), "#1b7a2b")
        return CheckResult(True)

    def hint(self) -> None:
        _say(f"Hint: {self.hint_text}", "#3a6fb0")

    def solution(self) -> None:
        """Show the reference solution's code."""
        code = self.solution_obj if isinstance(self.solution_obj, str) else inspect.getsource(self.solution_obj)
        _show_code(textwrap.dedent(code))


def _contains_blank(answer: Any) -> bool:
    if isinstance(answer, _Blank):
        return True
    if isinstance(answer, list | tuple | set):
        return any(_contains_blank(a) for a in answer)
    if callable(answer) and hasattr(answer, "__code__"):
        return "____" in answer.__code__.co_names
    return False


def _show(plain: str, rich: Callable[[], Any]) -> None:
    """Print `plain` outside IPython; in a notebook display the rich form instead."""
    from IPython import get_ipython
    from IPython.display import display

    if get_ipython() is None:
        print(plain)
    else:
        display(rich())


def _say(message: str, color: str) -> None:
    from html import escape

    from IPython.display import HTML

    _show(message, lambda: HTML(f'<div style="color:{color};font-weight:600">{escape(message)}</div>'))


def _show_code(code: str) -> None:
    from IPython.display import Markdown

    _show(code, lambda: Markdown(f"```python\n{code}```"))


# ---------------------------------------------------------------- building blocks for checkers
@contextmanager
def counting(engine: Engine) -> Iterator[QueryRecorder]:
    """Record statements while the answer runs."""
    with record(engine) as rec:
        yield rec


def same_result(got: Any, expected: Any, what: str = "result") -> None:
    """Raise Incorrect unless two results are equal by value (rows compare as tuples)."""
    g, e = _normalize(got), _normalize(expected)
    if g == e:
        return
    if isinstance(g, list) and isinstance(e, list):
        if len(g) != len(e):
            raise Incorrect(f"your {what} has {len(g)} items, the expected one has {len(e)}")
        for i, (a, b) in enumerate(zip(g, e, strict=True)):
            if a != b:
                raise Incorrect(f"item {i} of your {what} is {a!r:.80}, expected {b!r:.80}")
    raise Incorrect(f"your {what} is {g!r:.80}, expected {e!r:.80}")


def within_budget(rec: QueryRecorder, budget: int) -> None:
    """Raise Incorrect if more statements ran than the budget allows."""
    if rec.count > budget:
        repeated = rec.repeated()
        why = f" (one statement shape ran {max(repeated.values())} times: an N+1?)" if repeated else ""
        raise Incorrect(f"it ran {rec.count} statements, the budget is {budget}{why}")


def uses_index(plan: Plan, index: str | None = None) -> None:
    """Raise Incorrect unless the plan reads through an index."""
    if not plan.uses_index(index):
        target = f"index {index}" if index else "an index"
        raise Incorrect(f"the plan does not use {target}: {plan.text.splitlines()[0] if plan.lines else ''}")
