"""The harness: warm-up, repeats, medians, statements beside times, results checked and stored."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from helpers import results
from helpers.course import Course
from helpers.harness import Measurement, ResultMismatch, compare, measure, scaling
from helpers.shop.models import Customer


def names(course: Course, n: int):  # type: ignore[no-untyped-def]
    def run():  # type: ignore[no-untyped-def]
        with course.session() as s:
            return s.execute(select(Customer.id, Customer.name).order_by(Customer.id).limit(n)).all()

    return run


def test_measure_counts_runs_statements_and_rows(course: Course) -> None:
    calls = []

    def fn():  # type: ignore[no-untyped-def]
        calls.append(1)
        return names(course, 5)()

    m = measure(fn, engine=course.engine, repeat=4, warmup=2)
    assert len(calls) == 6 and m.runs == 4
    assert (m.statements, m.rows) == (1, 5)
    assert m.q1_s <= m.median_s <= m.q3_s and m.spread_s >= 0


def test_statistics_are_medians_and_quartiles() -> None:
    m = Measurement("x", [5.0, 1.0, 3.0, 2.0, 4.0], None, None)
    assert m.median_s == 3.0 and (m.q1_s, m.q3_s) == (2.0, 4.0) and m.spread_s == 2.0


def test_compare_side_by_side_and_stored(course: Course) -> None:
    before = len(results.history("harness-test"))

    def orm_entities():  # type: ignore[no-untyped-def]
        with course.session() as s:
            return [(c.id, c.name) for c in s.scalars(select(Customer).order_by(Customer.id).limit(20))]

    cmp = compare(
        {"entities": orm_entities, "columns": names(course, 20)},
        lesson="harness-test",
        engine=course.engine,
        repeat=3,
    )
    frame = cmp.frame
    assert list(frame.index) == ["entities", "columns"]
    assert list(frame.columns) == ["median_ms", "iqr_ms", "runs", "statements", "rows", "speedup"]
    assert frame["runs"].tolist() == [3, 3] and frame["rows"].tolist() == [20, 20]
    assert frame.loc["entities", "speedup"] == 1.0
    assert "entities" in cmp.summary() or "columns" in cmp.summary()
    history = results.history("harness-test")
    assert len(history) == before + 2
    assert set(history.tail(2)["backend"]) == {course.backend}
    assert set(history.tail(2)["size"]) == {"tiny"}


def test_compare_refuses_a_variant_with_another_result(course: Course) -> None:
    with pytest.raises(ResultMismatch, match="'wrong' returned a different result"):
        compare(
            {"right": names(course, 10), "wrong": names(course, 9)},
            lesson="harness-test",
            engine=course.engine,
            repeat=1,
            store=False,
        )


def test_compare_budget_stops_early_but_keeps_a_minimum(course: Course) -> None:
    cmp = compare(
        {"a": names(course, 3)}, lesson="harness-test", engine=course.engine, repeat=50, budget_s=0.0, store=False
    )
    assert cmp["a"].runs == 3


def test_scaling_has_one_row_per_n_and_variant(course: Course) -> None:
    def variants(n: int):  # type: ignore[no-untyped-def]
        def count():  # type: ignore[no-untyped-def]
            with course.session() as s:
                return s.scalar(select(func.count()).select_from(select(Customer.id).limit(n).subquery()))

        return {"names": names(course, n), "count": count}

    frame = scaling(variants, [5, 10], engine=course.engine, repeat=2)
    assert frame[["n", "variant"]].values.tolist() == [[5, "names"], [5, "count"], [10, "names"], [10, "count"]]
    assert frame["rows"].tolist()[::2] == [5, 10]


def test_chart_is_drawn(course: Course) -> None:
    cmp = compare({"a": names(course, 3)}, lesson="harness-test", engine=course.engine, repeat=2, store=False)
    fig = cmp.plot()
    assert fig.axes[0].get_title().startswith("harness-test")
