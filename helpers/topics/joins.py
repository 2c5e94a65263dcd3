"""Lesson 03's instruments: the SQL a query sends, read for its joins; how a joined plan matches a collection's
rows; what a flat LIMIT would cut; and the lesson's two sweeps, time against N and against a delay per round trip.

* `sql_text(query, bind)` is the SQL on one line; `from_clause`, `joins_to`, `join_kind`, `order_by_clause`,
  `shortened` and `limit_subquery` read it;
* `how_lines_are_matched(plan)` says, from a joinedload's plan, how the database found each order's lines;
* `flat_limit_cut(flat_orders, orders, limit)` says what a LIMIT on the joined rows would have returned;
* `overhead_sentence(race, naive, best)` says what each extra statement of the N+1 cost, from the race itself;
  `needless_join_sentence(needless, race, naive, best)` sets a join nobody needed beside N queries replacing one;
  `delay_sentence(sweep)` reads the cost of a delay per round trip off the latency sweep;
* `n_plus_one_sweep(course, variants_for, largest_n)` charts time against N and counts the statements;
* `latency_sweep(course, variants_on, delays)` times variants with a delay per round trip: real through a proxy
  on PostgreSQL, a labelled simulation on SQLite (`SimulatedLatency`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from IPython.display import display
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.sql import ClauseElement

from ..course import Course
from ..db import make_engine
from ..measure.harness import Comparison, Variants, scaling
from ..measure.plans import Plan
from ..measure.plots import scaling_chart, show_figure
from ..servers.latency import Latency
from ..shop.models import Order
from .batching import SimulatedLatency

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "REAL",
    "SIMULATED",
    "DelaySweep",
    "delay_sentence",
    "flat_limit_cut",
    "from_clause",
    "how_lines_are_matched",
    "join_kind",
    "joins_to",
    "latency_sweep",
    "limit_subquery",
    "n_plus_one_sweep",
    "needless_join_sentence",
    "order_by_clause",
    "overhead_sentence",
    "shortened",
    "sql_text",
]


# ---------------------------------------------------------------------- the SQL a query sends
def sql_text(query: ClauseElement, bind: Engine | Connection) -> str:
    """The SQL `query` sends to this database, on one line."""
    return " ".join(str(query.compile(bind)).split())


def from_clause(sql: str) -> str:
    """The FROM ... part of a statement, up to its WHERE."""
    return sql[sql.index(" FROM ") + 1 : sql.index(" WHERE ")]


def joins_to(sql: str, table: str) -> int:
    """How many times a statement joins `table` (aliased or not)."""
    return len(re.findall(rf"\bJOIN\s+{re.escape(table)}\b", sql, re.I))


def join_kind(sql: str, table: str) -> str:
    """How a statement joins `table`: 'LEFT OUTER JOIN' or 'JOIN' ('' when it does not)."""
    found = re.search(rf"(LEFT OUTER JOIN|JOIN) {re.escape(table)}\b", sql)
    return found.group(1) if found else ""


def order_by_clause(sql: str) -> str:
    """The outermost ORDER BY of a statement, up to its LIMIT, on one line (empty when there is none)."""
    found = re.search(r"\bORDER BY\b(.*?)(?:\bLIMIT\b|\bOFFSET\b|$)", sql, re.S | re.I)
    return " ".join(found.group(1).split()) if found else ""


def shortened(sql: str) -> str:
    """SQL on one line, each SELECT's column list replaced by …"""
    return re.sub(r"SELECT .*? FROM", "SELECT … FROM", " ".join(sql.split()))


def limit_subquery(sql: str, joined: str) -> tuple[str, str] | None:
    """The subquery a joinedload of the collection `joined` wraps its parents in: (its SQL, its alias)."""
    found = re.search(rf"FROM \((SELECT .*?)\) AS (anon_\d+) LEFT OUTER JOIN {re.escape(joined)}\b", sql)
    return (found.group(1), found.group(2)) if found else None


# ---------------------------------------------------------------------- what a statement costs
def _extra_statement_us(race: Comparison, naive: str, best: str) -> tuple[int, float]:
    """The naive variant's extra statements over the best one's, and the time each cost (µs), from one race."""
    extra = (race[naive].statements or 0) - (race[best].statements or 0)
    return extra, (race[naive].median_s - race[best].median_s) / max(extra, 1) * 1e6


def overhead_sentence(race: Comparison, naive: str, best: str) -> str:
    """What each extra statement of the N+1 cost in this race, on this backend: per-statement work in the ORM,
    the driver and the database (and the socket, on a server), computed, never assumed to be nothing."""
    extra, us = _extra_statement_us(race, naive, best)
    if extra <= 0 or us <= 0:
        slow, fast = race[naive], race[best]
        return (
            f"This run could not tell the statements apart: {naive!r} ran {slow.statements} statements in "
            f"{slow.median_s * 1e3:.2f} ms, {best!r} {fast.statements} in {fast.median_s * 1e3:.2f} ms."
        )
    where = "in one process, with no network at all" if race.backend == "sqlite" else "over a local socket"
    return (
        f"On {race.backend}, {where}, the {extra} extra statements of {naive!r} cost about {us:.0f} µs each "
        f"(the ORM building each SELECT and its object, the driver running it, the database answering): "
        f"{race[naive].median_s / race[best].median_s:.1f}× the time of {best!r}. An embedded database makes a "
        "statement cheap, not free."
    )


def needless_join_sentence(needless: Comparison, race: Comparison, naive: str, best: str) -> str:
    """A join nobody needed (the `needless` race: its naive variant joins, its best does not) against the N queries
    that replace a needed join (`race`), both measured in this run."""
    joined, without = needless.role("naive") or needless.baseline, needless.role("best") or needless.baseline
    extra, us = _extra_statement_us(race, naive, best)
    cost = joined.median_s / without.median_s
    verdict = (
        f"cost {cost:.2f}× the time without it ({(joined.median_s - without.median_s) * 1e3:+.2f} ms, one "
        "statement either way): minimizing joins is right there"
        if cost > 1
        else "did not cost measurably in this run, but it is work for nothing, and it grows with the table"
    )
    return (
        f"A join the page does not need {verdict}. Replacing the one join the page needs with {extra} queries "
        f"cost {race[naive].median_s / race[best].median_s:.1f}× ({us:.0f} µs per extra statement): minimizing "
        "joins is wrong there."
    )


# ---------------------------------------------------------------------- a collection, joined
def flat_limit_cut(flat_orders: Counter[int], orders: Iterable[Any], limit: int) -> str:
    """What LIMIT on the joined rows returns, said against the complete page: `flat_orders` counts the lines of
    each order the flat join's rows hold, `orders` are the page's orders with their lines loaded."""
    last_order = min(flat_orders)
    last_order_lines = next(len(order.lines) for order in orders if order.id == last_order)
    if flat_orders[last_order] < last_order_lines:
        tail = f"the last (order {last_order}) cut to {flat_orders[last_order]} of its {last_order_lines} lines"
    else:
        tail = f"the cut falling, by chance, just after the last line of order {last_order}"
    return f"On the flat join, LIMIT {limit} would keep {limit} lines from only {len(flat_orders)} orders, {tail}."


def _subtree(plan: Plan, at: int) -> list[str]:
    """The plan lines below line `at` (deeper indentation), stripped."""
    depth = len(plan.lines[at]) - len(plan.lines[at].lstrip())
    below = []
    for line in plan.lines[at + 1 :]:
        if len(line) - len(line.lstrip()) <= depth:
            break
        below.append(line.strip().removeprefix("->").strip())
    return below


def how_lines_are_matched(plan: Plan) -> str:
    """How a joinedload's plan matched order_lines to the orders: SQLite's automatic index, PostgreSQL's hash."""
    on_lines = [line.strip() for line in plan.lines if "order_lines" in line]
    if plan.backend == "sqlite":
        automatic = [line.strip() for line in plan.lines if "AUTOMATIC" in line and "order_lines" in line]
        if not automatic:
            return f"SQLite's plan for order_lines: {on_lines}"
        return (
            f"SQLite reads order_lines once to build a temporary index for this statement ({automatic[0]}), "
            "then looks each order's lines up in it."
        )
    hashes = [i for i, line in enumerate(plan.lines) if re.fullmatch(r"(->\s+)?Hash", line.strip())]
    if not hashes:
        return f"PostgreSQL's plan for order_lines: {on_lines}"
    hashed = _subtree(plan, hashes[0])
    hashed_side = "the orders of the LIMIT subquery" if any("Limit" in ln for ln in hashed) else hashed[0]
    return (
        f"PostgreSQL puts {hashed_side} in a hash table (under its Hash node: {hashed}) and reads order_lines "
        f"once{', whole' if plan.scans('order_lines') else ''}, probing the hash with each line."
    )


# ---------------------------------------------------------------------- time against N
_NS = (10, 100, 250, 500, 1000, 2000)


def _distinct_customers(course: Course, n: int) -> int:
    """How many customers the n newest orders belong to."""
    newest_n = select(Order.customer_id).order_by(Order.id.desc()).limit(n).subquery()
    with course.session() as session:
        return int(session.scalar(select(func.count(func.distinct(newest_n.c.customer_id)))) or 0)


def n_plus_one_sweep(course: Course, variants_for: Callable[[int], Variants], largest_n: int) -> pd.DataFrame:
    """Time lesson 03's four ways at each N up to `largest_n`: a chart, the statements per call beside the
    distinct customers on the page (checked: lazy is 1 + one per customer, selectinload 1 + one IN per 500 of
    them), and a sentence. `variants_for(n)` gives the variants by the lesson's labels."""
    ns = [n for n in _NS if n <= min(largest_n, course.info.rows["orders"])]
    frame = scaling(variants_for, ns, engine=course.engine, repeat=3)
    show_figure(scaling_chart(frame, xlabel="orders on the page (N)"))
    counts = frame.pivot(index="n", columns="variant", values="statements")[list(variants_for(1))]
    counts.insert(0, "distinct customers", [_distinct_customers(course, n) for n in counts.index])
    distinct = list(counts["distinct customers"])
    if list(counts["lazy (N+1)"]) != [1 + d for d in distinct] or list(counts["selectinload"]) != [
        1 + math.ceil(d / 500) for d in distinct
    ]:
        raise AssertionError(f"unexpected statement counts:\n{counts}")
    counts.columns.name, counts.index.name = None, "N"
    print("Statements per call:")
    display(counts)
    last = frame[frame["n"] == ns[-1]].set_index("variant")
    lazy_row, join_row = last.loc["lazy (N+1)"], last.loc["join + columns"]
    print(
        f"At N={ns[-1]}: lazy ran {lazy_row['statements']:.0f} statements in {lazy_row['median_ms']:.1f} ms, "
        f"join + columns 1 in {join_row['median_ms']:.1f} ms."
    )
    return frame


# ---------------------------------------------------------------------- time against a delay per round trip
REAL = "real delay per round trip (proxy)"
SIMULATED = "SIMULATED delay per statement (SQLite: a sleep in before_cursor_execute)"


@dataclass(frozen=True)
class DelaySweep:
    """Variants timed at each added delay: `frame` as `scaling` gives it (n: the delay in ms), `label` says
    whether the delay was real (PostgreSQL, through a proxy) or simulated (SQLite)."""

    frame: pd.DataFrame
    label: str
    backend: str

    def chart(self, title: str) -> Any:
        """Time against the delay, titled with what was measured, the backend and the kind of delay."""
        chart = scaling_chart(self.frame, xlabel=f"added delay (ms): {self.label}")
        chart.axes[0].set_title(f"{title} — {self.backend}, {self.label.split(' (')[0]}", fontsize=10)
        return chart


def delay_sentence(sweep: DelaySweep, naive: str = "lazy (N+1)", best: str = "joinedload") -> str:
    """What the first and the largest delay cost each variant, read off the sweep (per added ms, and at none)."""
    by_delay = sweep.frame.pivot(index="n", columns="variant", values="median_ms")
    statements = sweep.frame.groupby("variant")["statements"].first()
    low, high = by_delay.index.min(), by_delay.index.max()
    per_ms = (by_delay.loc[high] - by_delay.loc[low]) / (high - low)
    return (
        f"{sweep.label}. With no added delay, {naive!r} ({statements[naive]:.0f} statements) took "
        f"{by_delay.loc[low, naive]:.1f} ms against {by_delay.loc[low, best]:.1f} ms for {best!r} "
        f"({statements[best]:.0f}): the per-statement overhead. Each added millisecond per round trip cost "
        f"{naive!r} {per_ms[naive]:.0f} ms ({per_ms[naive] / statements[naive]:.2f}× its statement count) and "
        f"{best!r} {per_ms[best]:.1f} ms. At {high} ms, the delay made up "
        f"{1 - by_delay.loc[low, naive] / by_delay.loc[high, naive]:.0%} of {naive!r}'s time."
    )


@contextmanager
def _delayed(course: Course) -> Iterator[tuple[Engine, Latency, str]]:
    """An engine on the lesson's database whose round trips wait `delay.delay_ms`: through the course's latency
    proxy on PostgreSQL, a sleep before each statement on SQLite (a separate engine: the course's stays fast)."""
    delay: Latency
    if course.backend == "postgresql":
        networked, delay = course.with_latency(0)
        engine, label = networked.engine, REAL
    else:
        engine = make_engine(course.url)
        delay, label = SimulatedLatency(engine).start(), SIMULATED
    try:
        yield engine, delay, label
    finally:
        delay.delay_ms = 0
        delay.close()
        engine.dispose()


def latency_sweep(
    course: Course, variants_on: Callable[[Engine], Variants], delays: Sequence[int], *, repeat: int = 3
) -> DelaySweep:
    """Time `variants_on(engine)` at each added delay per round trip (ms) on a delayed engine, then remove it."""
    with _delayed(course) as (engine, delay, label):

        def at(delay_ms: int) -> Variants:
            delay.delay_ms = delay_ms
            return variants_on(engine)

        frame = scaling(at, delays, engine=engine, repeat=repeat)
    return DelaySweep(frame, label, course.backend)
