"""The library's rows, generated from a fixed seed with numpy like the shop's: same size and seed, same rows.

Popularity is skewed (a few books and members account for most loans); loans are in time order, each due three
weeks after it was borrowed; nearly every old loan came back, a few never did (they are overdue on TODAY).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..config import size_spec
from ..library.models import GENRES, LOAN_DAYS, TODAY
from .generate import CHUNK, CITIES, FIRST_NAMES, LAST_NAMES, Row, iso, paragraphs, person, zipf_weights
from .info import SEED

__all__ = [
    "LIBRARY_SIZES",
    "LIBRARY_TABLES",
    "LibrarySize",
    "generate_library_rows",
    "library_size",
    "library_total_rows",
]


@dataclass(frozen=True)
class LibrarySize:
    """How many rows of each library table a dataset size holds."""

    name: str
    authors: int
    books: int
    members: int
    loans: int

    @property
    def total_rows(self) -> int:
        return self.authors + self.books + self.members + self.loans


LIBRARY_SIZES: dict[str, LibrarySize] = {
    s.name: s
    for s in (
        LibrarySize("tiny", authors=100, books=1_000, members=500, loans=6_000),
        LibrarySize("small", authors=2_000, books=20_000, members=10_000, loans=300_000),
        LibrarySize("medium", authors=10_000, books=100_000, members=50_000, loans=1_500_000),
        LibrarySize("large", authors=50_000, books=500_000, members=250_000, loans=7_500_000),
    )
}
LIBRARY_TABLES = ("authors", "books", "members", "loans")

_BOOK_WORDS = (
    "a the of and in to her his their night city river house garden war letters last first secret long "
    "winter summer road sea island mountain forest memory journey daughter son king queen stranger light "
    "shadow glass stone fire silence voice story history time world dream music kitchen science mind "
    "children family village empire machine star map bridge door window year years lost found returns"
).split()
_COUNTRIES = "Portugal Spain France Germany Italy Poland Norway Ireland Japan Brazil Nigeria Canada Chile".split()
_START = np.datetime64("2023-01-01T00:00:00", "s")


def _stamps(seconds: np.ndarray) -> list[str]:
    return iso(_START + seconds.astype("timedelta64[s]"))


def library_size(size: str | None) -> LibrarySize:
    """The library's row counts for a course size (`tiny`, `small`, ...)."""
    return LIBRARY_SIZES[size_spec(size).name]


def library_total_rows(size: str) -> int:
    return library_size(size).total_rows


def _rng(seed: int, table: str) -> np.random.Generator:
    # One stream per table, as in the shop: a table's content does not depend on how others are generated.
    return np.random.default_rng([seed, sum(map(ord, table)), len(table), 7])


def _authors(spec: LibrarySize, seed: int) -> Iterator[list[Row]]:
    rng = _rng(seed, "authors")
    bios = paragraphs(rng, 512, 60, 160, _BOOK_WORDS)
    first = rng.integers(0, len(FIRST_NAMES), spec.authors).tolist()
    last = rng.integers(0, len(LAST_NAMES), spec.authors).tolist()
    country = rng.integers(0, len(_COUNTRIES), spec.authors).tolist()
    bio = rng.integers(0, len(bios), spec.authors).tolist()
    yield [
        (i + 1, f"{FIRST_NAMES[first[i]]} {LAST_NAMES[last[i]]}", _COUNTRIES[country[i]], bios[bio[i]])
        for i in range(spec.authors)
    ]


def _books(spec: LibrarySize, seed: int) -> Iterator[list[Row]]:
    n = spec.books
    rng = _rng(seed, "books")
    synopses = paragraphs(rng, 1024, 80, 200, _BOOK_WORDS)
    words = rng.integers(0, len(_BOOK_WORDS), (n, 3)).tolist()
    author = (rng.choice(spec.authors, size=n, p=zipf_weights(spec.authors, 0.8)) + 1).tolist()
    genre = rng.choice(len(GENRES), size=n, p=zipf_weights(len(GENRES), 0.6)).tolist()
    year = rng.integers(1950, 2026, n).tolist()
    synopsis = rng.integers(0, len(synopses), n).tolist()
    added = _stamps(np.sort(rng.integers(0, 3 * 365 * 86_400, n)))
    for lo in range(0, n, CHUNK):
        yield [
            (
                i + 1,
                " ".join(_BOOK_WORDS[w] for w in words[i]).capitalize() + f" {i + 1}",
                author[i],
                GENRES[genre[i]],
                f"978-{(i + 1) * 7919 % 1_000_000_000:09d}-{i % 10}",
                year[i],
                synopses[synopsis[i]],
                added[i],
            )
            for i in range(lo, min(lo + CHUNK, n))
        ]


def _members(spec: LibrarySize, seed: int) -> Iterator[list[Row]]:
    n = spec.members
    rng = _rng(seed, "members")
    notes = paragraphs(rng, 512, 20, 80, _BOOK_WORDS)
    first = rng.integers(0, len(FIRST_NAMES), n).tolist()
    last = rng.integers(0, len(LAST_NAMES), n).tolist()
    city = rng.integers(0, len(CITIES), n).tolist()
    note = rng.integers(0, len(notes), n).tolist()
    joined = _stamps(np.sort(rng.integers(-5 * 365 * 86_400, 0, n)))
    for lo in range(0, n, CHUNK):
        yield [
            (
                i + 1,
                *person(first[i], last[i], city[i], i + 1, "example.org"),
                joined[i],
                notes[note[i]],
            )
            for i in range(lo, min(lo + CHUNK, n))
        ]


def _loans(spec: LibrarySize, seed: int) -> Iterator[list[Row]]:
    n = spec.loans
    rng = _rng(seed, "loans")
    # Popular books and busy members, their ranks shuffled over ids (book 1 is an ordinary book).
    book = (rng.permutation(spec.books)[rng.choice(spec.books, size=n, p=zipf_weights(spec.books))] + 1).tolist()
    member_rank = rng.choice(spec.members, size=n, p=zipf_weights(spec.members, 0.6))
    member = (rng.permutation(spec.members)[member_rank] + 1).tolist()
    today_s = int((np.datetime64(TODAY.isoformat(), "s") - _START) / np.timedelta64(1, "s"))
    borrowed_s = np.sort(rng.integers(0, today_s - 3600, n))
    due_s = borrowed_s + LOAN_DAYS * 86_400
    age_days = (today_s - borrowed_s) / 86_400
    # Almost every loan older than two months came back; about half of the recent ones are still out.
    came_back = rng.random(n) < np.where(age_days > 60, 0.97, 0.5)
    returned_s = borrowed_s + rng.integers(86_400, 35 * 86_400, n)
    came_back &= returned_s < today_s
    borrowed, due, returned = _stamps(borrowed_s), _stamps(due_s), _stamps(returned_s)
    back = came_back.tolist()
    for lo in range(0, n, CHUNK):
        yield [
            (
                i + 1,
                book[i],
                member[i],
                borrowed[i],
                due[i],
                returned[i] if back[i] else None,
                "returned" if back[i] else "out",
            )
            for i in range(lo, min(lo + CHUNK, n))
        ]


def generate_library_rows(size: str, seed: int = SEED) -> Iterator[tuple[str, list[Row]]]:
    """Every (table, chunk of rows) of a library dataset, in insert order: the same for the same size and seed."""
    spec = library_size(size)
    for table, make in (("authors", _authors), ("books", _books), ("members", _members), ("loans", _loans)):
        for chunk in make(spec, seed):
            yield table, chunk
