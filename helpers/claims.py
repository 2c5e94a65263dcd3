"""The blog the course grew from, claim by claim: the lesson that tests each piece of its advice, and the
verdict that lesson computed on this machine (filled from the results store as the learner goes).

Lesson 00 shows the table with what is measured so far; the capstone shows it complete. A race is the evidence
for a claim when it is run with `course.compare(..., naive=..., best=..., claim="columns")`; a claim that is
a fact rather than a speed-up (a cache key that leaks, a setting nothing reads) is recorded by its lesson with
`measure.results.record_claim`.

The blog is quoted (in quotation marks) only where its words are known (shared/facts.md and the issues give
them); the rest of its advice is described, without quotation marks.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .measure import results

__all__ = ["CLAIMS", "Claim", "claims_table"]


@dataclass(frozen=True)
class Claim:
    """One piece of the blog's advice, as the table shows it: `advice` quotes the blog in quotation marks where
    its words are known and describes it otherwise. A race that bears it out reads `{won}: {detail}, N× faster`,
    followed by `note` (on the backend `note_on` only, when given); a race that does not, "does not hold here"."""

    key: str
    advice: str
    lesson: str
    tests: str
    won: str = "holds"
    note: str = ""
    note_on: str | None = None


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "columns",
        "“Select only necessary columns”",
        "02",
        "whole entities against the columns a page shows; and the trap: a deferred column touched per row",
        note="and load_only, misused, runs one SELECT per row: lesson 02 shows it",
    ),
    Claim(
        "joins",
        "“Use joins effectively: Minimize the number of joins and use appropriate join types”",
        "03",
        "1 + N lazy loads against one join selecting columns",
        won="half right: one join beat 1 + N queries",
        note="minimize statements, not joins",
    ),
    Claim(
        "filter_in_db",
        "its third tip: filter, order and limit in the database, not in Python",
        "03",
        "the same rows filtered and sorted in Python against in SQL",
    ),
    Claim(
        "indexes",
        "index the columns your queries look rows up by",
        "04",
        "50 lookups by customer without an index on orders.customer_id and with one",
        note="and every index costs each insert: lesson 04 measures it",
    ),
    Claim(
        "cache_key",
        "cache a user's page with “@cache.cached(timeout=300, key_prefix='user')” on /users/<user_id>",
        "06",
        "whether customer 2 is served customer 1's cached page",
    ),
    Claim(
        "pool_size",
        "set SQLALCHEMY_POOL_SIZE, “the maximum number of connections”",
        "07",
        "the pool's size read back from the engine, and its real ceiling (pool_size + max_overflow)",
    ),
    Claim(
        "batching",
        "“Batch to minimize round trips”",
        "08",
        "500 inserts committed one by one against one bulk insert",
        note="on SQLite there are no round trips: the win is fewer commits",
        note_on="sqlite",
    ),
    Claim(
        "profiling",
        "use “SQLAlchemy's query profiling tools”",
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
                "the blog's advice": claim.advice,
                "lesson": claim.lesson,
                "what the lesson measures": claim.tests,
                "verdict": _verdict(claim, mine.iloc[-1]) if len(mine) else f"run lesson {claim.lesson}",
            }
        )
    return pd.DataFrame(rows).set_index("the blog's advice")


def _verdict(claim: Claim, finding: pd.Series) -> str:
    """What the latest finding says: a race's speed-up read by the claim, or a recorded fact."""
    speedup = finding["measured_speedup"]
    if speedup is None or speedup != speedup:  # None or NaN: a recorded fact, not a race
        held = "holds" if bool(finding["holds"]) else "does not hold"
        return f"{held}: {finding['detail']}"
    speedup = float(speedup)
    if speedup <= 1:
        return f"does not hold here: {finding['detail']}, {speedup:.2f}× (not faster)"
    verdict = f"{claim.won}: {finding['detail']}, {speedup:.1f}× faster"
    if claim.note and claim.note_on in (None, finding["backend"]):
        verdict += f" — {claim.note}"
    return verdict
