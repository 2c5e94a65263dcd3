"""Exercises for lesson 10 · Capstone: name your app's slowest endpoint under load, and what inside it makes it
slow, as a value the check reads against the same runs (`topics.capstone.slowest`: the longest mean latency, and
where its time inside the app went, from the app's own headers on every answered request).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..course import Course
from ..measure.units import format_ms
from ..topics.capstone import CAUSES, STATEMENT_HEAVY, YOURS, Slowest, slowest
from ..topics.loadtest import ShopRequest, ShopRun
from .core import Exercise, Incorrect, Question

__all__ = [
    "HINTS",
    "Q1",
    "SOLUTION",
    "STARTER",
    "USERS",
    "Lesson10Exercises",
    "Runs",
    "check_slowest",
    "exercises",
]

USERS = 16  # the load whose runs the check reads

STARTER = """\
# (the endpoint, as the tables name it; the cause: "python", "database" or "statements")
slowest_endpoint = (____, ____)

ex.slowest.check(slowest_endpoint)
# ex.slowest.hint()  ex.slowest.hint(2)  ex.slowest.solution()"""

HINTS = (
    "The slowest endpoint is the one whose requests took longest on average under 16 users (the lowest and "
    "highest run beside it say whether another is as slow). Why: what its own time inside the app went to, its "
    "Python or its statements, and if it sends many statements, their number. The time every request waited "
    "before the app saw it is the load's, shared by every endpoint.",
    "The table `where` has a row per endpoint: latency_ms (with latency_ms_min and latency_ms_max, the lowest and "
    f"highest run), python_ms, database_ms and statements per request ({STATEMENT_HEAVY} or more: an N+1, the "
    "cause is 'statements'). pandas' idxmax finds the row with the largest value of a column.",
)

SOLUTION = """\
endpoint = where["latency_ms"].idxmax()
inside = where.loc[endpoint]
if inside["python_ms"] > inside["database_ms"]:
    cause = "python"
else:
    cause = "statements" if inside["statements"] >= STATEMENT_HEAVY else "database"
slowest_endpoint = (endpoint, cause)
"""


def _named(given: Any, requests: Sequence[ShopRequest], measured: Sequence[str]) -> str:
    """The endpoint the learner named: as the tables name it, or by its path (with or without the method)."""
    text = str(given).strip().lower()
    for request in requests:
        path = request.path.lower()
        forms = {request.name.lower(), path, path.split("?")[0], f"{request.method.lower()} {path.split('?')[0]}"}
        if text in forms or text == f"{request.method.lower()} {path}":
            return request.name
    raise Incorrect(f"no endpoint is named {given!r}: name one as the tables do ({', '.join(measured)})")


def _pair(answer: Any) -> tuple[Any, str]:
    if not isinstance(answer, tuple | list) or len(answer) != 2:
        raise Incorrect("answer with a pair: (the endpoint, the cause), e.g. ('search', 'database')")
    endpoint, cause = answer
    cause = str(cause).strip().lower()
    if cause not in CAUSES:
        raise Incorrect(f"the cause is one of {', '.join(map(repr, CAUSES))}, not {answer[1]!r}")
    return endpoint, cause


def _inside(truth: Slowest, endpoint: str) -> str:
    row = truth.layers.loc[endpoint]
    n = int(row["statements"])
    return (
        f"{format_ms(row['python_ms'] / 1000)} in its Python and {format_ms(row['database_ms'] / 1000)} in "
        f"{n} statement{'s' * (n != 1)} a request, on average"
    )


def check_slowest(runs: Sequence[ShopRun], requests: Sequence[ShopRequest], answer: Any) -> str:
    """Whether `answer` names the slowest endpoint of `runs` and the cause its profile shows; why not if not."""
    if not runs:
        raise Incorrect(f"load your app with {USERS} users first (the cells above): the check reads those runs")
    truth = slowest(runs)
    given, cause = _pair(answer)
    endpoint = _named(given, requests, list(truth.layers.index))
    latency = truth.layers["latency_ms"]
    if endpoint not in truth.tied:
        raise Incorrect(
            f"{endpoint!r} took {format_ms(latency[endpoint] / 1000)} on average, {truth.endpoint!r} "
            f"{format_ms(truth.latency_ms / 1000)}: the slowest is the one whose requests took longest"
        )
    found = truth.causes[endpoint]
    if cause not in found:
        if cause == "database" and "statements" in found:
            why = f"yes, its statements, but it sends {int(truth.layers.loc[endpoint, 'statements'])} a request"
            raise Incorrect(f"{why}: how many statements a request sends is the cause ('statements')")
        raise Incorrect(f"{endpoint!r} spent {_inside(truth, endpoint)}: which of them is the larger?")
    waited = truth.layers.loc[endpoint, "waiting_ms"]
    tie = f" (as slow as {truth.endpoint!r} within the runs' spread)" if endpoint != truth.endpoint else ""
    return (
        f"{endpoint!r} took longest, {format_ms(latency[endpoint] / 1000)} on average{tie}; inside the app it "
        f"spent {_inside(truth, endpoint)}: {CAUSES[cause]}. Before the app saw it, it waited "
        f"{format_ms(waited / 1000)}, as every endpoint did under {USERS} users."
    )


class Runs(Protocol):
    """What the exercise reads: the capstone's lab (`topics.capstone.CapstoneLab`), or anything keeping runs so."""

    requests: Sequence[ShopRequest]

    def runs_of(
        self, *, users: int | None = None, app: str | None = None, open_loop: bool = False
    ) -> list[ShopRun]:
        """The runs kept at `users` users, of `app`."""
        ...


@dataclass
class _LabCourse(Course):
    """The lesson's course, with the lab whose runs the exercise reads."""

    lab: Runs | None = None


def _check(course: Course, answer: Any) -> str:
    lab = getattr(course, "lab", None)
    if lab is None:
        raise Incorrect("this exercise reads the capstone's runs: bind it with exercises(course, lab)")
    return check_slowest(lab.runs_of(users=USERS, app=YOURS), lab.requests, answer)


Q1 = Question(
    title="Your slowest endpoint under load, and why",
    starter=STARTER,
    check=_check,
    hints=HINTS,
    solution=SOLUTION,
)


@dataclass(frozen=True)
class Lesson10Exercises:
    """Lesson 10's exercise: your app's slowest endpoint under load, and why."""

    slowest: Exercise


def exercises(course: Course, lab: Runs) -> Lesson10Exercises:
    """The lesson's exercise, reading the runs `lab` keeps of your app at `USERS` users."""
    bound = _LabCourse(course.lesson, course.settings, course.url, course.engine, course.info, lab)
    return Lesson10Exercises(Q1.bind(bound))
