"""The blog the course grew from, claim by claim: the lesson that tests each piece of its advice, and the
verdict that lesson computed on this machine (filled from the results store as the learner goes).

Lesson 00 shows the table with what is measured so far; the capstone shows it complete. A race is the evidence
for a claim when it is run with `course.compare(..., naive=..., best=..., claim="columns")`; a claim that is
a fact rather than a speed-up (a cache key that leaks, a setting nothing reads) is recorded by its lesson with
`measure.results.record_claim`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .measure import results

__all__ = ["CLAIMS", "Claim", "claims_table"]


@dataclass(frozen=True)
class Claim:
    """One piece of the blog's advice. `advice` is its own words when `quoted`, else what it advises; `reading`
    turns a race's speed-up into a verdict (`{speedup}` and `{detail}` are filled in)."""

    key: str
    advice: str
    quoted: bool
    lesson: str
    tests: str
    reading: str = "{detail}: {speedup:.1f}× faster here"


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "columns",
        "Select only necessary columns",
        True,
        "02",
        "whole entities against the columns a page shows; and the trap: a deferred column touched per row",
        "holds: {detail}, {speedup:.1f}× faster (and load_only can run one SELECT per row if misused)",
    ),
    Claim(
        "joins",
        "Use joins effectively: Minimize the number of joins and use appropriate join types",
        True,
        "03",
        "1 + N lazy loads against one join selecting columns",
        "half right: minimize statements, not joins — {detail}, {speedup:.1f}× faster than 1 + N queries",
    ),
    Claim(
        "filter_in_db",
        "filter, order and limit in the database rather than in Python (its third tip)",
        False,
        "03",
        "the same query shape, filtered and sorted in Python against in SQL",
        "holds: {detail}, {speedup:.1f}× faster",
    ),
    Claim(
        "indexes",
        "add indexes to the columns you look rows up by",
        False,
        "04",
        "50 lookups by customer without an index on orders.customer_id and with one",
        "holds: {detail}, {speedup:.1f}× faster (each index also costs every insert: lesson 04 measures it)",
    ),
    Claim(
        "cache_key",
        "@cache.cached(timeout=300, key_prefix='user') on /users/<user_id>",
        True,
        "06",
        "whether customer 2 is served customer 1's cached page",
    ),
    Claim(
        "pool_size",
        'app.config["SQLALCHEMY_POOL_SIZE"] = 10 — "the maximum number of connections"',
        True,
        "07",
        "the pool's size read back from the engine, and its real ceiling (pool_size + max_overflow)",
    ),
    Claim(
        "batching",
        "Batch to minimize round trips",
        True,
        "08",
        "500 inserts committed one by one against one bulk insert",
        "holds, for a reason the blog does not give on SQLite (commits, not round trips): {detail}, "
        "{speedup:.1f}× faster",
    ),
    Claim(
        "profiling",
        "SQLAlchemy's query profiling tools",
        True,
        "09",
        "what SQLAlchemy has: events, echo, a recipe — and a profiler pointed at a request",
    ),
)


def claims_table(backend: str | None = None, size: str | None = None) -> pd.DataFrame:
    """Each claim, the lesson that tests it, and its latest verdict (at this backend and size, when given)."""
    found = results.claims()
    if backend is not None:
        found = found[found["backend"] == backend]
    if size is not None:
        found = found[found["size"] == size]
    rows = []
    for claim in CLAIMS:
        mine = found[found["claim"] == claim.key]
        rows.append(
            {
                "the blog's advice": f"“{claim.advice}”" if claim.quoted else claim.advice,
                "lesson": claim.lesson,
                "what the lesson measures": claim.tests,
                "verdict": _verdict(claim, mine.iloc[-1]) if len(mine) else f"run lesson {claim.lesson}",
            }
        )
    return pd.DataFrame(rows).set_index("the blog's advice")


def _verdict(claim: Claim, finding: pd.Series) -> str:
    speedup = finding["measured_speedup"]
    if speedup == speedup and speedup is not None:  # a race: not NaN, not None
        return claim.reading.format(speedup=float(speedup), detail=finding["detail"])
    held = "holds" if bool(finding["holds"]) else "does not hold"
    return f"{held}: {finding['detail']}"
