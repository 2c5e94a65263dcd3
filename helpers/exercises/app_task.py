"""Improve the app: the learner rewrites one endpoint of the shop per lesson, checked, kept and raced.

In a lesson::

    my_views = Blueprint("my_views", __name__)

    @my_views.get("/orders")
    def order_list(): ...

    ex.improve.check(my_views)              # right answers within the budget? then saved and raced
    ex.improve.solution()                   # the course's reference version
    ex.improve.race(my_views, reference=True)  # baseline, yours and the reference side by side

`check` asks the learner's app and the baseline app (lesson 01's code) the same requests and wants the same
status and JSON, within the lesson's statement budget. A passing answer is saved under data/my_app/ as a
small module (the cell that defined it, plus `from helpers.shop.kit import *`), which the capstone loads to
assemble the learner's own app.
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from types import ModuleType
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask

from ..data import drop_copy
from ..db import is_statement_timeout, limit_statement_time
from ..measure import results
from ..measure.display import say, show_code
from ..measure.harness import Comparison, first_difference
from ..measure.predictions import Predicted
from ..measure.units import format_ms
from ..shop import optimized
from .core import CheckResult, Incorrect, contains_blank, hint_text, judge
from .saved_views import save

if TYPE_CHECKING:
    from flask.testing import FlaskClient

    from ..course import Course

__all__ = ["BASELINE_COMPARISON", "ENDPOINT_NAMES", "STATEMENT_LIMIT_S", "AppTask", "Call"]

# A check stops any statement of the learner's that runs longer than this (the baseline's take about a second
# at `small`): a query that reads a table once per row fails in seconds instead of running for minutes.
STATEMENT_LIMIT_S = 30.0

# The names lesson 01's baseline table gives the endpoints (its stored measurements are looked up by them).
BASELINE_COMPARISON = "Baseline endpoints (test client)"
ENDPOINT_NAMES = {
    "customer_page": "customer page",
    "order_list": "order list",
    "search": "search",
    "sales_report": "sales report",
}


@dataclass(frozen=True)
class Call:
    """One request a check makes: a method, a URL and a JSON body."""

    url: str
    method: str = "GET"
    json: Any = None

    def send(self, client: FlaskClient) -> Any:
        return client.open(self.url, method=self.method, json=self.json)


def _body(response: Any) -> Any:
    return response.get_json(silent=True) if response.is_json else response.get_data(as_text=True)[:200]


@dataclass
class AppTask:
    """One lesson's "improve the app" task: rewrite `endpoint` (served at `rule`) as a Blueprint."""

    lesson: str
    endpoint: str  # the view's name in helpers/shop/baseline.py and optimized.py, e.g. "order_list"
    rule: str  # the URL rule the learner's blueprint must serve, e.g. "/orders"
    calls: Sequence[Call]  # requests whose status and JSON must match the baseline's
    timed: Call  # the request raced against the baseline
    budget: int | None  # statements allowed per request (None: no budget)
    hint_text: str | tuple[str, ...]  # one hint, or a ladder: the idea first, then the API to look up
    course: Course  # the database the learner's app runs on (lesson 05: its indexed copy)
    baseline_course: Course | None = None  # where the baseline app runs (default: `course`)
    reference: Blueprint | None = None  # the course's version (default: helpers.shop.optimized.bp)
    same: Callable[[Any], Any] = field(default=lambda body: body)  # the part of a JSON body that must match
    extra: Callable[[Flask], str | None] | None = None  # a further check on the learner's app (raises Incorrect)
    method: str = "GET"
    writes: bool = False  # the endpoint writes: each check and race runs on a fresh private copy of `course`
    solution_text: str | None = None  # the answer as a learner's cell holds it (default: the reference's source)

    @property
    def title(self) -> str:
        return ENDPOINT_NAMES.get(self.endpoint, self.endpoint.replace("_", " "))

    # ------------------------------------------------------------------ the learner's side
    def check(self, views: Any) -> CheckResult:
        """Check the learner's blueprint; if right, keep it under data/my_app/ and race it against the baseline."""
        passed, detail = judge(views, self._verify, explain=_explain, who="your code")
        if not passed:
            return CheckResult(False)
        saved = save(views, self)
        say(f"Correct! {detail} Saved as data/my_app/{saved.name} for the capstone.", "#1b7a2b")
        self.race(views).show()
        return CheckResult(True)

    def hint(self, level: int = 1) -> None:
        """The task's hints in order: 1 names the idea, 2 the API to look up."""
        hints = (self.hint_text,) if isinstance(self.hint_text, str) else self.hint_text
        say(hint_text(hints, level), "#3a6fb0")

    def solution(self) -> None:
        """Show the course's answer: `solution_text` when given, else the reference view's source."""
        if self.solution_text is not None:
            show_code(self.solution_text)
            return
        view = getattr(self._reference_module(), self.endpoint)
        show_code(textwrap.dedent(inspect.getsource(view)))

    def race(
        self, views: Blueprint, *, reference: bool = False, repeat: int = 7, prediction: Predicted = None
    ) -> Comparison:
        """Lesson 01's baseline against the learner's endpoint (and the reference), side by side, stored.

        `prediction` (the learner's, for their endpoint) is shown beside what was measured and kept with the run.
        """
        with self._databases() as (course, baseline_course):
            mine: dict[str, Flask] = {}
            if contains_blank(views):  # Run All on an untouched notebook: still a race worth showing
                say(
                    "Your view still has ____ in it: the race shows the baseline and the course's version.",
                    "#7a6a00",
                )
                reference = True
            else:
                mine["yours"] = self._app(views, course)
            apps = {"baseline (lesson 01)": baseline_course.app(), **mine}
            best = "yours" if mine else "the course's version"
            if reference:
                apps["the course's version"] = course.app(views=self._reference())
            clients = {name: app.test_client() for name, app in apps.items()}
            engines = [app.extensions["engine"] for app in apps.values()]
            try:
                comparison = course.compare(
                    {name: partial(self.timed.send, client) for name, client in clients.items()},
                    engine=engines,
                    check=lambda response: (response.status_code, self.same(_body(response))),
                    title=f"improve the app: {self.title}",
                    repeat=repeat,
                    naive="baseline (lesson 01)",
                    best=best if best in apps else None,
                    prediction=prediction if mine else None,  # a prediction of yours, not of the course's
                )
            finally:
                for engine in engines:
                    engine.dispose()
        stored = _stored_baseline(self.course, self.endpoint)
        if stored is not None:
            statements = stored["statements"]
            print(
                f"Lesson 01 measured the baseline {self.title} at {format_ms(stored['median_s'])} with "
                f"{statements} statement{'s' if statements != 1 else ''} on this backend and size "
                f"({stored['measured_at']:%Y-%m-%d})."
            )
        return comparison

    # ------------------------------------------------------------------ checking
    @contextmanager
    def _databases(self) -> Iterator[tuple[Course, Course]]:
        """Where the learner's app and the baseline run: the lesson's databases, or for an endpoint that
        writes, one fresh private copy for both, removed afterwards (every check starts from the same rows)."""
        if not self.writes:
            yield self.course, self.baseline_course or self.course
            return

        copy = self.course.private_copy(f"improve{self.lesson}")
        try:
            yield copy, copy
        finally:
            copy.engine.dispose()
            drop_copy(copy.url)

    def _app(self, views: Any, course: Course | None = None) -> Flask:
        if not isinstance(views, Blueprint):
            raise Incorrect(
                f"pass your Blueprint (the object whose .get(...) decorates your view), not {type(views).__name__}"
            )
        # TESTING: an exception in the learner's view reaches check() (one line), not Flask's logged traceback.
        app = (course or self.course).app(views=views, TESTING=True)
        limit_statement_time(app.extensions["engine"], STATEMENT_LIMIT_S)
        rules = {rule.rule for rule in app.url_map.iter_rules()}
        served_here = [
            r for r in app.url_map.iter_rules() if r.rule == self.rule and self.method in (r.methods or ())
        ]
        if not served_here:
            app.extensions["engine"].dispose()
            served = ", ".join(sorted(r for r in rules if r != "/" and not r.startswith("/static"))) or "nothing"
            raise Incorrect(
                f"your blueprint serves {served}, not {self.method} {self.rule}: "
                f"decorate your view with @{views.name}.{self.method.lower()}({self.rule!r})"
            )
        return app

    def _verify(self, views: Any) -> str:
        with self._databases() as (course, baseline_course):
            return self._verify_on(views, course, baseline_course)

    def _verify_on(self, views: Any, course: Course, baseline_course: Course) -> str:
        mine = self._app(views, course)
        baseline = baseline_course.app()
        try:
            client, expected_client = mine.test_client(), baseline.test_client()
            worst = 0
            for call in self.calls:
                expected, got = call.send(expected_client), call.send(client)
                if got.status_code != expected.status_code:
                    message = (_body(got) or {}).get("message", "") if got.is_json else ""
                    raise Incorrect(
                        f"{call.method} {call.url} answered {got.status_code}, the baseline {expected.status_code}"
                        + (f" ({message})" if message else "")
                    )
                difference = first_difference(self.same(_body(expected)), self.same(_body(got)), "JSON")
                if difference is not None:
                    raise Incorrect(f"{call.method} {call.url}: {difference}")
                if got.status_code < 400:
                    statements = int(got.headers.get("X-Statements", 0))
                    worst = max(worst, statements)
                    if self.budget is not None and statements > self.budget:
                        raise Incorrect(
                            f"{call.method} {call.url} gave the right answer with {statements} statements; "
                            f"the budget is {self.budget}"
                        )
            detail = self.extra(mine) if self.extra else None
        finally:
            for app in (mine, baseline):
                app.extensions["engine"].dispose()
        budget = f" (budget {self.budget})" if self.budget is not None else ""
        return detail or (
            f"Your {self.title} gives the baseline's answers to {len(self.calls)} requests with at most "
            f"{worst} statement{'s' if worst != 1 else ''} each{budget}."
        )

    def _reference_module(self) -> ModuleType:

        return optimized

    def _reference(self) -> Blueprint:
        return self.reference or self._reference_module().bp


def _explain(exc: Exception) -> str | None:
    """A statement stopped by the checks' time limit, said as what it probably means."""
    if not is_statement_timeout(exc):
        return None
    return (
        f"a statement of yours ran longer than {STATEMENT_LIMIT_S:.0f} s and was stopped: it probably reads a "
        "whole table once per row (choose the page first, then join or count; course.explain(query) shows "
        "the plan)."
    )


def _stored_baseline(course: Course, endpoint: str) -> dict[str, Any] | None:
    """Lesson 01's latest stored measurement of `endpoint` at this course's backend and size, if any."""

    frame = results.history("01")
    frame = frame[
        (frame["comparison"] == BASELINE_COMPARISON)
        & (frame["variant"] == ENDPOINT_NAMES.get(endpoint, endpoint))
        & (frame["backend"] == course.backend)
        & (frame["size"] == course.size)
    ]
    if frame.empty:
        return None
    row: dict[str, Any] = frame.iloc[-1].to_dict()
    return row
