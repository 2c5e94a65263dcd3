"""Lesson 10's exercise: your app's slowest endpoint under load and its cause, checked against the runs' own
profile. Proven on two profiles (one where the statements dominate, one where the Python does), and once on a
real load of the learner's app at `tiny` on each backend."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from helpers.course import Course
from helpers.exercises import ____
from helpers.exercises.lesson10 import Q1, USERS, exercises
from helpers.topics.capstone import FINISHED, YOURS, CapstoneLab, shop_requests, slowest
from helpers.topics.loadtest import Answered, ShopRequest, ShopRun
from tests.proving import prove, verdict
from tests.test_composition import learners_lab

REQUESTS = shop_requests(400)
ENDPOINTS = [r.name for r in REQUESTS]  # customer page, order list, search, sales report, place an order


def runs(*per_endpoint: tuple[float, float, float, int]) -> list[ShopRun]:
    """Three runs of your app at 16 users: per endpoint, in `ENDPOINTS`' order, (latency ms, ms inside the app,
    database ms, statements); the runs 1 ms apart."""
    return [
        ShopRun(
            YOURS, USERS, None, 1.0,
            tuple(Answered(name, 0.01 * i, ms + k, True, n, db, inside)
                  for name, (ms, inside, db, n) in zip(ENDPOINTS, per_endpoint, strict=True) for i in range(20)),
            0.002, 0, USERS, "locust ...",
        )
        for k in (-1.0, 0.0, 1.0)
    ]  # fmt: skip


# The sales report is the slowest, and its time inside the app goes to its statements (few of them).
DATABASE = runs((30, 8, 2, 2), (28, 6, 1, 1), (31, 9, 4, 2), (45, 25, 20, 2), (35, 12, 6, 4))
# The customer page is the slowest, with one statement per order (an N+1), and the search close behind it (the runs
# overlap), slow in its Python.
N_PLUS_ONE = runs((60, 40, 30, 41), (20, 4, 1, 1), (59.5, 38, 5, 2), (25, 5, 3, 2), (30, 10, 6, 4))


@dataclass
class Lab:
    """What the exercise reads of the capstone's lab: its requests and its runs."""

    runs: list[ShopRun]
    requests: Sequence[ShopRequest] = tuple(REQUESTS)

    def runs_of(
        self, *, users: int | None = None, app: str | None = None, open_loop: bool = False
    ) -> list[ShopRun]:
        return [r for r in self.runs if users in (None, r.users) and app in (None, r.app)]


def check(course: Course, profile: list[ShopRun]) -> Any:
    return exercises(course, Lab(profile)).slowest.check


def test_the_slowest_endpoint_is_proven_on_a_database_bound_report(course: Course) -> None:
    prove(
        check(course, DATABASE),
        right=[
            ("sales report", "database"),
            ("GET /reports/sales", " Database"),
            ["/reports/sales?days=400", "database"],
        ],
        wrong=[
            (("search", "python"), "the slowest is the one whose requests took longest"),
            (("sales report", "python"), "which of them is the larger"),
            (("sales report", "the ORM"), "the cause is one of"),
            (("the report", "database"), "no endpoint is named"),
            ("sales report", "answer with a pair"),
        ],
    )


def test_the_slowest_endpoint_is_proven_on_an_n_plus_one(course: Course) -> None:
    prove(
        check(course, N_PLUS_ONE),
        right=[("customer page", "statements"), ("search", "python"), ("GET /customers/1", "STATEMENTS")],
        wrong=[
            (("customer page", "database"), "how many statements a request sends is the cause"),
            (("customer page", "python"), "which of them is the larger"),
            (("search", "database"), "which of them is the larger"),
            (("order list", "python"), "the slowest is the one whose requests took longest"),
        ],
    )
    assert slowest(N_PLUS_ONE).tied == ("customer page", "search")


def test_the_check_says_what_it_read_and_waits_for_the_runs(course: Course) -> None:
    passed, said = verdict(check(course, DATABASE), ("sales report", "database"))
    assert passed and "inside the app it spent" in said and "waited" in said
    passed, said = verdict(check(course, []), ("sales report", "database"))
    assert not passed and f"load your app with {USERS} users first" in said
    passed, said = verdict(check(course, DATABASE), (____, ____))
    assert not passed and said.startswith("Not answered yet")
    passed, said = verdict(Q1.bind(course).check, ("sales report", "database"))
    assert not passed and "exercises(course, lab)" in said  # a question bound without the lab cannot check


def test_the_hints_go_from_the_idea_to_the_api_and_the_solution_is_not_a_blank(
    course: Course, capsys: pytest.CaptureFixture[str]
) -> None:
    task = exercises(course, Lab(DATABASE)).slowest
    task.hint()
    task.hint(2)
    task.solution()
    out = capsys.readouterr().out
    assert (
        "Hint 1 of 2" in out and "Hint 2 of 2" in out and "idxmax" in out and "____" not in out.split("Hint 2")[1]
    )


@pytest.fixture
def lab(course: Course, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CapstoneLab]:
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    with learners_lab(course, tmp_path) as made:
        yield made


def test_the_check_reads_a_real_load_of_your_app(course: Course, lab: CapstoneLab) -> None:
    """On each backend: the lab's own runs of your app at 16 users; the check agrees with the runs' profile."""
    ex = exercises(course, lab)
    lab.serve([YOURS])
    lab.load(USERS, apps=[YOURS, FINISHED], runs=1, seconds=0.5, longest_s=2, each=5)
    truth = slowest(lab.runs_of(users=USERS, app=YOURS))
    passed, said = verdict(ex.slowest.check, (truth.endpoint, truth.causes[truth.endpoint][0]))
    assert passed, said
    fastest = truth.layers["latency_ms"].idxmin()
    if fastest not in truth.tied:
        assert not verdict(ex.slowest.check, (fastest, "python"))[0]
