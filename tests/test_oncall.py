"""The on-call lesson: the library's data, the seeded incidents, and objectives that catch each one.

Deterministic objectives (answers, privacy, statements, commits, db work) are asserted on both backends at tiny;
the load-test objectives are asserted only where the outcome is structural (a 500 on every cache hit, a 503 once
the pool is empty), never a p95 (see helpers/topics/slo.py: the p95 bound is measured on the machine).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.course import Course
from helpers.data.library import generate_library_rows
from helpers.errors import CourseError
from helpers.library import spec
from helpers.library.incidents import POOL
from helpers.topics import oncall
from helpers.topics.oncall import Shift, draw
from helpers.topics.slo import ENDPOINTS

# Seeds whose draws cover every incident of the pool (a test below checks that they do).
COVERING_SEEDS = (0, 1, 2, 6)
DETERMINISTIC = ("answers", "privacy", "statements", "commits", "db work")
LOADED = ("errors",)  # measured under the load test; asserted only where the outcome is structural


@pytest.fixture(scope="module")
def shifts(course: Course) -> Iterator[dict[int, Shift]]:
    """One shift per covering seed on each backend, measured without the load test (timing=False)."""
    made = {seed: Shift(course, seed, timing=False, copy=f"test{seed}") for seed in COVERING_SEEDS}
    yield made
    for shift in made.values():
        shift.close()


def _failing(shift: Shift) -> set[tuple[str, str]]:
    return set(shift.failing(shift.evaluate(timing=False)))


# ---------------------------------------------------------------------------------------------- the draw
def test_a_seed_plants_five_or_six_incidents_on_distinct_endpoints_the_same_every_time() -> None:
    for seed in range(50):
        planted = draw(seed)
        assert 5 <= len(planted) <= 6
        assert len({i.endpoint for i in planted}) == len(planted)
        assert draw(seed) == planted
    assert draw(3) != draw(4)
    assert len({draw(seed) for seed in range(50)}) > 40


def test_the_covering_seeds_plant_every_incident_of_the_pool() -> None:
    assert len(POOL) >= 10
    assert {i.name for seed in COVERING_SEEDS for i in draw(seed)} == {i.name for i in POOL}
    assert {i.endpoint for i in POOL} <= {e.name for e in ENDPOINTS} == {r[2] for r in spec.ROUTES}


@pytest.mark.parametrize("seed", [-1, 2**31, "7", 1.5, True, None])
def test_a_wrong_seed_is_one_line(seed: object) -> None:
    with pytest.raises(CourseError, match="The seed must be a whole number from 0 to"):
        draw(seed)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- the incidents
def test_every_incident_fails_the_objectives_meant_to_catch_it(shifts: dict[int, Shift]) -> None:
    for seed, shift in shifts.items():
        failing = _failing(shift)
        planted = {i.endpoint for i in shift.incidents}
        for incident in shift.incidents:
            caught = {o for o in incident.catches if o in DETERMINISTIC}
            assert caught <= {o for e, o in failing if e == incident.endpoint}, (seed, incident.name, failing)
        # Nothing fails where nothing was planted.
        assert {e for e, _ in failing} <= planted, (seed, failing)


def test_every_seeds_reference_fix_passes_every_objective(shifts: dict[int, Shift]) -> None:
    for seed, shift in shifts.items():
        shift.apply_reference()
        assert _failing(shift) == set(), seed
        # The reference fix of any seed is the specified app: the same views for every endpoint.
        assert {n: v for n, v in shift.views.items() if n in {i.endpoint for i in shift.incidents}} == {
            name: view for *_, name, view in spec.ROUTES if name in {i.endpoint for i in shift.incidents}
        }


def test_a_partial_fix_passes_exactly_the_objectives_it_should(course: Course) -> None:
    shift = Shift(course, 1, timing=False, copy="partial")
    try:
        before = _failing(shift)
        fixed = shift.incidents[0].endpoint
        shift.apply_reference(only=(fixed,))
        after = _failing(shift)
        assert {x for x in before if x[0] != fixed} == after
        assert any(e == fixed for e, _ in before)
    finally:
        shift.close()


@pytest.mark.parametrize("incident", ["an ORM object in the cache", "a session kept alive by the error log"])
def test_under_load_the_planted_endpoint_answers_5xx_and_the_reference_does_not(
    course: Course, incident: str
) -> None:
    seed = next(s for s in range(100) if incident in {i.name for i in draw(s)})
    shift = Shift(course, seed, timing=False, copy="load")
    try:
        endpoint = next(e for e in ENDPOINTS if e.name == "book_detail")
        shift.reference.p95_ms["book_detail"] = 1000.0  # the p95 is not asserted here
        assert shift._timed(endpoint)["errors"].held is False
        shift.apply_reference(only=("book_detail",))
        assert shift._timed(endpoint)["errors"].held is True
    finally:
        shift.close()


# ---------------------------------------------------------------------------------------------- the learner's face
def test_a_fix_that_breaks_an_answer_says_where_in_one_line(shifts: dict[int, Shift]) -> None:
    shift = shifts[COVERING_SEEDS[0]]
    from flask import jsonify

    def book_list() -> object:
        return jsonify(books=[], next=None)

    saved = dict(shift.views)
    try:
        shift.replace(book_list)
        verdict = shift.evaluate(timing=False)["book_list"]["answers"]
        assert verdict.held is False
        assert verdict.failed.startswith("/books: ") and "\n" not in verdict.failed
        assert "has 0 items" in verdict.failed
    finally:
        shift.views = saved


def test_unknown_endpoints_and_objectives_are_one_line(shifts: dict[int, Shift]) -> None:
    shift = shifts[COVERING_SEEDS[0]]
    with pytest.raises(CourseError, match="The library has no endpoint 'GET /bookz': choose one of GET /books"):
        shift.replace(lambda: None, endpoint="GET /bookz")
    with pytest.raises(CourseError, match="The library has no endpoint 'shelves'"):
        shift.hint("shelves")
    with pytest.raises(CourseError, match="No objective 'speed'"):
        shift.hint("GET /feed", "speed")


def test_the_hint_ladder_has_three_steps_and_never_names_a_fix(shifts: dict[int, Shift]) -> None:
    shift = shifts[COVERING_SEEDS[0]]
    fixes = ("query_string=True", "selectinload", "joinedload", "Index(", "keyset", "insert(", "memoize")
    for objective in ("answers", "privacy", "errors", "statements", "commits", "db work", "p95"):
        steps = [shift.hint("GET /feed", objective) for _ in range(4)]
        assert steps[2] == steps[3] and len(set(steps[:3])) == 3
        assert not [f for f in fixes for s in steps if f in s], objective


def test_reveal_waits_for_check_then_names_each_incidents_lesson(course: Course) -> None:
    shift = Shift(course, 6, timing=False, copy="reveal")
    try:
        assert shift.reveal() is None  # not before check() passes
        assert shift.reveal(give_up=True) is not None
        assert shift.check() is False
        shift.apply_reference()
        assert shift.check() is True
        table = shift.reveal()
        assert list(table["incident"]) == [i.name for i in shift.incidents]
        assert all(lesson[:2].isdigit() for lesson in table["lesson"])
    finally:
        shift.close()


def test_the_deployed_code_is_a_file_the_trace_calls_application_code(shifts: dict[int, Shift]) -> None:
    from helpers.topics.profiling import is_application_file

    shift = shifts[COVERING_SEEDS[0]]
    assert is_application_file(str(shift.code_path))
    text = shift.code_path.read_text()
    assert all(f"def {e.name}(" in text for e in ENDPOINTS)
    assert "incident" not in text.lower() and "planted" not in text.lower()


def test_module_functions_need_a_started_shift() -> None:
    oncall.close()
    with pytest.raises(CourseError, match=r"No shift has started: run oncall.start\(course, seed=...\) first"):
        oncall.status()


# ---------------------------------------------------------------------------------------------- the data
def test_the_library_rows_are_the_same_for_a_seed_and_differ_for_another() -> None:
    first = list(generate_library_rows("tiny"))
    assert first == list(generate_library_rows("tiny"))
    assert first != list(generate_library_rows("tiny", seed=7))
    tables = [t for t, _ in first]
    assert sorted(set(tables), key=tables.index) == ["authors", "books", "members", "loans"]


def test_the_library_has_what_the_lesson_needs(shifts: dict[int, Shift]) -> None:
    """Skewed popularity, loans still out past their due date, wide text, and ids the requests can rely on."""
    from sqlalchemy import text

    shift = next(iter(shifts.values()))
    with shift.engine.connect() as conn:
        top = conn.execute(text("SELECT count(*) FROM loans GROUP BY book_id ORDER BY 1 DESC LIMIT 10")).scalars()
        loans = conn.scalar(text("SELECT count(*) FROM loans"))
        overdue = conn.scalar(text("SELECT count(*) FROM loans WHERE status = 'out' AND due_at < '2026-01-01'"))
        synopsis = conn.scalar(text("SELECT avg(length(synopsis)) FROM books"))
    assert sum(top) > 0.1 * loans  # ten books of a thousand: over a tenth of the loans
    assert overdue >= 20
    assert synopsis > 400


def test_the_library_dataset_is_built_like_the_shops(tmp_path: Path) -> None:
    """Deterministic (two builds, one fingerprint), primary keys only, the size's row counts."""
    from sqlalchemy import inspect

    from helpers.data import LIBRARY, build_dataset, content_fingerprint
    from helpers.data.library import LIBRARY_SIZES
    from helpers.db import make_engine

    prints = []
    for name in ("a", "b"):
        url = f"sqlite:///{tmp_path / name}.sqlite"
        info = build_dataset("tiny", url=url, dataset=LIBRARY, progress=False)
        assert info.rows == {t: getattr(LIBRARY_SIZES["tiny"], t) for t in LIBRARY.tables}
        engine = make_engine(url)
        prints.append(content_fingerprint(engine, LIBRARY.tables))
        assert all(inspect(engine).get_indexes(t) == [] for t in LIBRARY.tables)
        engine.dispose()
    assert prints[0] == prints[1]
