"""The harness: warm-up, repeats, medians, statements beside times, results checked and stored."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from helpers.course import Course
from helpers.measure import harness, results
from helpers.measure.harness import (
    Measurement,
    ResultMismatch,
    batch_size,
    compare,
    measure,
    run_variants,
    samples_per_round,
    scaling,
)
from helpers.measure.units import in_ms
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


@pytest.mark.parametrize(("warmup", "repeat"), [(0, 1), (0, 5), (1, 1), (1, 4), (3, 2)])
def test_each_variant_is_called_exactly_warmup_plus_repeat_times(warmup: int, repeat: int) -> None:
    calls: list[str] = []
    variants = {name: (lambda name=name: calls.append(name) or [1, 2]) for name in ("a", "b")}
    measurements = run_variants(variants, repeat=repeat, warmup=warmup)
    assert calls.count("a") == calls.count("b") == warmup + repeat
    assert [m.runs for m in measurements] == [repeat, repeat] and measurements[0].rows == 2


def test_warmup_zero_times_the_first_call() -> None:
    """A cold first call is the one timed: it must not be hidden behind an untimed counting call."""
    durations = iter([0.05, 0.0, 0.0])

    def first_call_is_slow() -> int:
        time.sleep(next(durations))
        return 1

    cold = measure(first_call_is_slow, repeat=1, warmup=0)
    assert cold.times_s[0] >= 0.05


def test_statements_are_counted_on_a_cold_call_too(course: Course) -> None:
    m = measure(names(course, 3), engine=course.engine, repeat=1, warmup=0)
    assert (m.statements, m.rows, m.runs) == (1, 3, 1)


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


def test_history_keeps_comparisons_apart(course: Course) -> None:
    """Two comparisons with a variant of the same name are two histories, not one zigzag line."""
    for title in ("first race", "second race"):
        compare(
            {"no index (scan)": names(course, 2)},
            lesson="harness-hist",
            engine=course.engine,
            repeat=1,
            title=title,
        )
    history = results.history("harness-hist")
    assert sorted(history["comparison"].unique()) == ["first race", "second race"]
    from helpers.measure.plots import history_chart

    labels = [line.get_label() for line in history_chart(history).axes[0].get_lines()]
    assert labels == ["first race · no index (scan)", "second race · no index (scan)"]


def test_one_mapping_from_measurement_to_milliseconds() -> None:
    m = Measurement("x", [0.001, 0.003, 0.002], 4, 10)
    row = m.row()
    assert row["median_s"] == 0.002 and row["statements"] == 4 and row["min_s"] == 0.001
    import pandas as pd

    frame = in_ms(pd.DataFrame([row]))
    assert frame.loc[0, "median_ms"] == pytest.approx(2.0) and "iqr_ms" in frame and "median_s" not in frame


def test_batch_size_makes_each_sample_last_the_minimum() -> None:
    assert batch_size(0.0003, 0.001) == 4  # 4 calls of 0.3 ms: 1.2 ms
    assert batch_size(0.0002, 0.001) == 5
    assert batch_size(0.002, 0.001) == 1 and batch_size(0.0003, None) == 1
    assert batch_size(1e-12, 0.001) == 10_000  # capped


def test_fast_variants_take_more_samples_a_round_up_to_ten() -> None:
    assert samples_per_round([0.001, 0.004, 0.5]) == [10, 10, 1]
    assert samples_per_round([0.001, 0.0025]) == [2, 1]
    assert samples_per_round([0.0, 0.001]) == [1, 1]
    assert samples_per_round([1.0, 3.0]) == [1, 1]  # slow samples: one a round, or the race would last minutes


def _fake_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The harness's clock, advanced only by the variants below: timings become exact arithmetic."""
    now = [0.0]
    monkeypatch.setattr(harness, "_clock", lambda: now[0])
    return now


def test_sub_millisecond_calls_are_timed_in_batches_and_reported_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    now = _fake_clock(monkeypatch)
    calls: Counter[str] = Counter()

    def costing(name: str, seconds: float):  # type: ignore[no-untyped-def]
        def call() -> list[int]:
            calls[name] += 1
            now[0] += seconds
            return [1, 2]

        return call

    fast, slow = run_variants(
        {"fast": costing("fast", 2**-12), "slow": costing("slow", 2**-9)}, repeat=5, warmup=1, min_sample_s=2**-10
    )
    assert (fast.batch, slow.batch) == (4, 1)  # a quarter of the minimum per call: 4 calls per sample
    # A fast sample lasts half a slow one: two of them per round, 5 rounds. Times are still seconds per call.
    assert fast.times_s == [2**-12] * 10 and slow.times_s == [2**-9] * 5
    assert (fast.runs, fast.rows) == (10, 2)
    # warm-up 1, then calls adding up to the minimum and at least 3 (4 and 3), then the samples of a batch each
    assert calls == {"fast": 1 + 4 + 10 * 4, "slow": 1 + 3 + 5 * 1}


@pytest.mark.parametrize("kwargs", [{"warmup": 0}, {"reset": lambda: None}])
def test_cold_calls_and_reset_calls_are_never_batched(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, Any]
) -> None:
    now = _fake_clock(monkeypatch)

    def call() -> int:
        now[0] += 2**-12
        return 1

    (m,) = run_variants({"a": call}, repeat=3, min_sample_s=2**-10, **kwargs)
    assert m.batch == 1 and m.times_s == [2**-12] * 3


def test_interleaved_rounds_start_one_variant_later_each_round() -> None:
    order: list[str] = []
    run_variants({name: (lambda name=name: order.append(name)) for name in "abc"}, repeat=3, warmup=0)
    assert "".join(order) == "abc" + "bca" + "cab"
