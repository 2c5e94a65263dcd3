"""Lesson 03's instruments (helpers.topics.joins): the SQL read for its joins, the plan read for how a collection's
rows were matched, what a flat LIMIT cuts, and the two sweeps, each pinned to what it reads or counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, contains_eager, joinedload, selectinload

from helpers.course import Course
from helpers.measure.harness import Comparison, Measurement
from helpers.measure.plans import Plan
from helpers.shop.models import Customer, Order
from helpers.topics import joins


def test_the_sql_of_a_query_read_for_its_joins(course: Course) -> None:
    in_city = select(Order).join(Order.customer).where(Customer.city == "Lisbon").limit(5)
    twice = joins.sql_text(in_city.options(joinedload(Order.customer)), course.engine)
    once = joins.sql_text(in_city.options(contains_eager(Order.customer)), course.engine)
    assert "\n" not in twice and "  " not in twice
    assert (joins.joins_to(twice, "customers"), joins.joins_to(once, "customers")) == (2, 1)
    assert joins.from_clause(once).startswith(
        "FROM orders JOIN customers ON"
    ) and "WHERE" not in joins.from_clause(once)
    outer = joins.sql_text(select(Order).options(joinedload(Order.customer)), course.engine)
    inner = joins.sql_text(select(Order).options(joinedload(Order.customer, innerjoin=True)), course.engine)
    assert (joins.join_kind(outer, "customers"), joins.join_kind(inner, "customers")) == (
        "LEFT OUTER JOIN",
        "JOIN",
    )
    assert joins.join_kind(outer, "reviews") == ""


def test_order_by_clause_is_the_outermost_up_to_limit() -> None:
    sql = "SELECT a FROM t ORDER BY count(t.id) DESC,\n   customers.id\nLIMIT ? OFFSET ?"
    assert joins.order_by_clause(sql) == "count(t.id) DESC, customers.id"
    assert joins.order_by_clause("SELECT a FROM t") == ""


def test_the_limit_of_a_joined_collection_moves_into_a_subquery(course: Course) -> None:
    page = select(Order).order_by(Order.id.desc()).limit(20)
    wrapped = joins.shortened(joins.sql_text(page.options(joinedload(Order.lines)), course.engine))
    assert wrapped.startswith("SELECT … FROM (SELECT … FROM orders")
    found = joins.limit_subquery(wrapped, "order_lines")
    assert found is not None and "LIMIT" in found[0] and found[1].startswith("anon_")
    many_to_one = joins.shortened(joins.sql_text(page.options(joinedload(Order.customer)), course.engine))
    assert joins.limit_subquery(many_to_one, "customers") is None


def test_flat_limit_cut_says_which_order_lost_lines() -> None:
    orders = [SimpleNamespace(id=i, lines=[1, 2, 3]) for i in (10, 11, 12)]
    cut = joins.flat_limit_cut(Counter({12: 3, 11: 2}), orders, 5)
    assert cut == (
        "On the flat join, LIMIT 5 would keep 5 lines from only 2 orders, "
        "the last (order 11) cut to 2 of its 3 lines."
    )
    whole = joins.flat_limit_cut(Counter({12: 3, 11: 3}), orders, 6)
    assert whole.endswith("the cut falling, by chance, just after the last line of order 11.")


SQLITE_AUTOMATIC = Plan(
    "sqlite",
    (
        "CO-ROUTINE anon_1",
        "  SCAN orders",
        "SCAN anon_1",
        "SEARCH order_lines USING AUTOMATIC COVERING INDEX (order_id=?) LEFT-JOIN",
    ),
)
POSTGRES_HASH = Plan(
    "postgresql",
    (
        "Hash Right Join",
        "  Hash Cond: (order_lines.order_id = anon_1.id)",
        "  ->  Seq Scan on order_lines",
        "  ->  Hash",
        "        ->  Subquery Scan on anon_1",
        "              ->  Limit",
        "                    ->  Index Scan Backward using orders_pkey on orders",
    ),
)


def test_how_lines_are_matched_reads_the_plan_of_either_backend(course: Course) -> None:
    assert joins.how_lines_are_matched(SQLITE_AUTOMATIC).startswith(
        "SQLite reads order_lines once to build a temporary index for this statement (SEARCH order_lines USING "
        "AUTOMATIC COVERING INDEX"
    )
    scan = Plan("sqlite", ("SCAN order_lines",))
    assert joins.how_lines_are_matched(scan) == "SQLite's plan for order_lines: ['SCAN order_lines']"
    hashed = joins.how_lines_are_matched(POSTGRES_HASH)
    assert hashed.startswith("PostgreSQL puts the orders of the LIMIT subquery in a hash table (under its Hash")
    assert "'Subquery Scan on anon_1', 'Limit'" in hashed and "reads order_lines once, whole," in hashed
    merge = Plan("postgresql", ("Merge Join", "  ->  Index Scan using ix on order_lines"))
    assert joins.how_lines_are_matched(merge).startswith("PostgreSQL's plan for order_lines: ['->  Index Scan")
    page = select(Order).order_by(Order.id.desc()).limit(20).options(joinedload(Order.lines))
    assert "order_lines" in joins.how_lines_are_matched(course.explain(page))


def names(engine: Engine, n: int, *options: Any) -> list[tuple[int, str]]:
    """The n newest orders with their customer's name, loaded with `options` (none: lazily)."""
    with Session(engine) as session:
        orders = session.scalars(select(Order).order_by(Order.id.desc()).limit(n).options(*options))
        return [(order.id, order.customer.name) for order in orders]


def four_ways(course: Course, selectin: Any = selectinload) -> Callable[[int], dict[str, Callable[[], Any]]]:
    """The lesson's four labels; the join is stood in for by joinedload (one statement as well)."""

    def variants_for(n: int) -> dict[str, Callable[[], Any]]:
        def way(*options: Any) -> Callable[[], Any]:
            return lambda: names(course.engine, n, *options)

        return {
            "lazy (N+1)": way(),
            "joinedload": way(joinedload(Order.customer)),
            "selectinload": way(selectin(Order.customer)),
            "join + columns": way(joinedload(Order.customer)),
        }

    return variants_for


def test_the_n_plus_one_sweep_checks_its_statement_counts(
    course: Course, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = joins.n_plus_one_sweep(course, four_ways(course), 100)
    assert sorted(set(frame["n"])) == [10, 100]
    out = capsys.readouterr().out
    assert "Statements per call:" in out and "At N=100: lazy ran" in out
    with pytest.raises(AssertionError, match="unexpected statement counts"):  # "selectinload" in one statement
        joins.n_plus_one_sweep(course, four_ways(course, selectin=joinedload), 10)


def test_the_latency_sweep_delays_every_round_trip_and_says_how(course: Course) -> None:
    sweep = joins.latency_sweep(course, lambda engine: {"lazy (N+1)": lambda: names(engine, 10)}, [0, 5], repeat=1)
    real = course.backend == "postgresql"
    assert sweep.label == (joins.REAL if real else joins.SIMULATED) and sweep.backend == course.backend
    delayed = sweep.frame.set_index("n").loc[5]
    assert delayed["median_ms"] >= 0.9 * 5 * delayed["statements"]  # every statement waited its 5 ms
    chart = sweep.chart("10 orders")
    assert chart.axes[0].get_title() == f"10 orders — {course.backend}, {sweep.label.split(' (')[0]}"
    plt.close(chart)


def _race(backend: str, lazy_ms: float, best_ms: float, roles: dict[str, str] | None = None) -> Comparison:
    measurements = [
        Measurement("lazy (N+1)", [lazy_ms / 1000], 101, None),
        Measurement("yours", [best_ms / 1000], 1, None),
    ]
    return Comparison("03", backend, "tiny", measurements, roles=roles or {})


def test_the_overhead_of_a_statement_is_computed_never_assumed_to_be_nothing() -> None:
    assert joins.overhead_sentence(_race("sqlite", 21.0, 1.0), "lazy (N+1)", "yours") == (
        "On sqlite, in one process, with no network at all, the 100 extra statements of 'lazy (N+1)' cost "
        "about 200 µs each (the ORM building each SELECT and its object, the driver running it, the database "
        "answering): 21.0× the time of 'yours'. An embedded database makes a statement cheap, not free."
    )
    assert "over a local socket" in joins.overhead_sentence(_race("postgresql", 21.0, 1.0), "lazy (N+1)", "yours")
    assert joins.overhead_sentence(_race("sqlite", 1.0, 2.0), "lazy (N+1)", "yours").startswith(
        "This run could not tell the statements apart"
    )


def test_minimizing_joins_is_right_for_a_needless_join_and_wrong_against_n_queries() -> None:
    needless = Comparison(
        "03",
        "sqlite",
        "tiny",
        [Measurement("joined", [0.0012], 1, None), Measurement("plain", [0.001], 1, None)],
        roles={"joined": "naive", "plain": "best"},
    )
    said = joins.needless_join_sentence(needless, _race("sqlite", 21.0, 1.0), "lazy (N+1)", "yours")
    assert said.startswith("A join the page does not need cost 1.20× the time without it (+0.20 ms")
    assert said.endswith(
        "with 100 queries cost 21.0× (200 µs per extra statement): minimizing joins is wrong there."
    )
    needless.measurements[0].times_s[0] = 0.0009  # noise: the join was not slower in this run
    assert "did not cost measurably" in joins.needless_join_sentence(
        needless, _race("sqlite", 21, 1), "lazy (N+1)", "yours"
    )


def test_the_delay_sentence_reads_the_sweep() -> None:
    frame = pd.DataFrame(
        {
            "n": [0, 0, 5, 5],
            "variant": ["lazy (N+1)", "joinedload", "lazy (N+1)", "joinedload"],
            "median_ms": [10.0, 1.0, 260.0, 6.0],
            "statements": [50, 1, 50, 1],
        }
    )
    said = joins.delay_sentence(joins.DelaySweep(frame, joins.SIMULATED, "sqlite"))
    assert said.startswith(joins.SIMULATED + ". With no added delay, 'lazy (N+1)' (50 statements) took 10.0 ms")
    assert "cost 'lazy (N+1)' 50 ms (1.00× its statement count) and 'joinedload' 1.0 ms" in said
    assert said.endswith("At 5 ms, the delay made up 96% of 'lazy (N+1)''s time.")
