"""The shop's rows, generated from a fixed seed with numpy: the same rows for the same size and seed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np

from ..config import SizeSpec, size_spec
from ..shop.models import STATUSES
from .info import SEED

__all__ = [
    "CHUNK",
    "CITIES",
    "FIRST_NAMES",
    "LAST_NAMES",
    "Row",
    "generate_rows",
    "iso",
    "paragraphs",
    "person",
    "timestamps",
    "zipf_weights",
]

# ---------------------------------------------------------------- vocabulary for generated text


CHUNK = 50_000


Row = tuple[Any, ...]


FIRST_NAMES = (
    "Ada Alan Amara Anna Ben Bruno Carla Chen Chiara Dana David Elena Emil Eva Farah Felix Grace Hana Hugo "
    "Ines Ivan Jonas Julia Kai Karin Lars Lea Leo Lina Luca Maja Marco Maria Mateo Mia Nadia Nils Noor Omar "
    "Olga Paul Priya Rafael Rosa Sami Sara Sofia Tariq Tom Uma Vera Viktor Wen Yara Yusuf Zoe Amir Beatriz"
).split()


LAST_NAMES = (
    "Adams Alves Bauer Becker Brown Costa Dubois Eriksen Fischer Garcia Gomez Hansen Ito Jansen Kim Kowalski "
    "Larsen Lopez Martin Meyer Moreau Murphy Nakamura Novak Okafor Olsen Park Petrov Quinn Rossi Santos "
    "Schmidt Silva Smith Sousa Tanaka Tremblay Ueda Vargas Weber Wilson Yamamoto Young Zhang Ziegler"
).split()


CITIES = (
    "Lisbon Porto Madrid Lyon Berlin Hamburg Munich Vienna Zurich Milan Turin Prague Warsaw Krakow Oslo "
    "Bergen Aarhus Ghent Utrecht Dublin Leeds Glasgow Nantes Seville Valencia Bologna Graz Brno Gdansk Turku"
).split()


_STREETS = "Oak Maple Harbour Station Mill Church Market Garden River Hill Park Bridge Castle Meadow".split()


_CATEGORIES = (
    "books kitchen garden toys audio camera office outdoor sports beauty tools grocery pets music games home"
).split()


_ADJECTIVES = "Classic Compact Deluxe Eco Essential Everyday Handy Premium Pro Smart Sturdy Travel Ultra".split()


_NOUNS = "Kettle Lamp Backpack Speaker Notebook Blender Tent Drill Jacket Mug Puzzle Camera Chair Brush".split()


_WORDS = (
    "the a quality order delivery fast slow package arrived great good fine poor value price colour size "
    "fits works broke returned support helpful friendly box gift again recommend would not very really "
    "battery screen sound light heavy sturdy cheap expensive durable handle lid cable warranty manual "
    "assembly instructions easy hard minutes weeks days happy disappointed excellent perfect okay average "
    "customer please leave at door ring bell call before neighbour floor apartment building gate code"
).split()


# ---------------------------------------------------------------- generation (vectorised, seeded)
def paragraphs(
    rng: np.random.Generator, count: int, min_words: int, max_words: int, words: Sequence[str] = _WORDS
) -> list[str]:
    """A pool of random paragraphs; rows pick from the pool so wide text costs no per-row work."""
    lengths = rng.integers(min_words, max_words + 1, size=count)
    picks = [words[i] for i in rng.integers(0, len(words), size=int(lengths.sum())).tolist()]
    bounds = zip(lengths.tolist(), np.cumsum(lengths).tolist(), strict=True)
    return [" ".join(picks[end - n : end]).capitalize() + "." for n, end in bounds]


def zipf_weights(n: int, s: float = 1.1) -> np.ndarray:
    """Zipf-like popularity over n items (item 0 is the most popular)."""
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** s
    normalised: np.ndarray = weights / weights.sum()
    return normalised


def person(first: int, last: int, city: int, number: int, domain: str) -> tuple[str, str, str]:
    """A person's name, email and city, from drawn positions in FIRST_NAMES, LAST_NAMES and CITIES; `number`
    (their id) makes the email unique."""
    given, family = FIRST_NAMES[first], LAST_NAMES[last]
    return f"{given} {family}", f"{given.lower()}.{family.lower()}{number}@{domain}", CITIES[city]


def timestamps(rng: np.random.Generator, count: int, *, ordered: bool) -> np.ndarray:
    start = np.datetime64("2023-01-01T00:00:00", "s")
    seconds = rng.integers(0, 3 * 365 * 86_400, size=count)
    if ordered:
        seconds.sort()
    return start + seconds.astype("timedelta64[s]")


def iso(stamps: np.ndarray) -> list[str]:
    """Timestamps as SQLAlchemy's DateTime writes them on SQLite, 'YYYY-MM-DD HH:MM:SS.ffffff' (always six
    fractional digits): SQLite compares the stored text, so the dataset's rows and the rows the app writes later
    (and the datetimes a query binds) must share one format. PostgreSQL parses it into a timestamp."""
    return [
        s.replace("T", " ") for s in np.datetime_as_string(stamps.astype("datetime64[us]"), unit="us").tolist()
    ]


class _CustomerDraws(NamedTuple):
    first: np.ndarray
    last: np.ndarray
    city: np.ndarray
    street: np.ndarray
    number: np.ndarray
    postcode: np.ndarray
    note: np.ndarray
    created: list[str]


class _Generator:
    """Produces each table's rows in chunks, always in the same order from the same seed."""

    def __init__(self, spec: SizeSpec, seed: int = SEED) -> None:
        self.spec = spec
        self.seed = seed
        rng = self._rng("pools")
        self.notes = paragraphs(rng, 1024, 40, 110)
        self.descriptions = paragraphs(rng, 1024, 80, 160)
        self.bodies = paragraphs(rng, 1024, 10, 60)
        self.order_notes = paragraphs(rng, 1024, 4, 16)
        self.prices = np.round(self._rng("prices").gamma(2.0, 20.0, size=spec.products) + 1.0, 2)

    def _rng(self, table: str) -> np.random.Generator:
        # One stream per table: a table's content does not depend on how others are generated.
        return np.random.default_rng([self.seed, sum(map(ord, table)), len(table)])

    @cached_property
    def _customer_draws(self) -> _CustomerDraws:
        """The customers' stream, drawn once: customers() and the orders' addresses both read it."""
        n = self.spec.customers
        rng = self._rng("customers")
        return _CustomerDraws(  # keyword arguments are evaluated in order: this is the order of the draws
            first=rng.integers(0, len(FIRST_NAMES), n),
            last=rng.integers(0, len(LAST_NAMES), n),
            city=rng.integers(0, len(CITIES), n),
            street=rng.integers(0, len(_STREETS), n),
            number=rng.integers(1, 300, n),
            postcode=rng.integers(1000, 99999, n),
            note=rng.integers(0, len(self.notes), n),
            created=iso(timestamps(rng, n, ordered=True)),
        )

    @cached_property
    def addresses(self) -> list[str]:
        """Each customer's address (customer id - 1 is the index); every order ships to its customer's."""
        d = self._customer_draws
        return [
            f"{d.number[i]} {_STREETS[d.street[i]]} Street, {d.postcode[i]:05d} {CITIES[d.city[i]]}"
            for i in range(self.spec.customers)
        ]

    def customers(self) -> Iterator[list[Row]]:
        n = self.spec.customers
        d = self._customer_draws
        first, last, city, note, created, addresses = d.first, d.last, d.city, d.note, d.created, self.addresses
        for lo in range(0, n, CHUNK):
            yield [
                (
                    i + 1,
                    *person(first[i], last[i], city[i], i + 1, "example.com"),
                    addresses[i],
                    self.notes[note[i]],
                    created[i],
                )
                for i in range(lo, min(lo + CHUNK, n))
            ]

    def products(self) -> Iterator[list[Row]]:
        n = self.spec.products
        rng = self._rng("products")
        adj = rng.integers(0, len(_ADJECTIVES), n)
        noun = rng.integers(0, len(_NOUNS), n)
        cat = rng.integers(0, len(_CATEGORIES), n)
        desc = rng.integers(0, len(self.descriptions), n)
        yield [
            (
                i + 1,
                f"{_ADJECTIVES[adj[i]]} {_NOUNS[noun[i]]} {i + 1}",
                _CATEGORIES[cat[i]],
                float(self.prices[i]),
                self.descriptions[desc[i]],
            )
            for i in range(n)
        ]

    def orders_and_lines(self) -> tuple[Iterator[list[Row]], Iterator[list[Row]]]:
        """Orders and their lines; totals are the sum of each order's lines."""
        spec = self.spec
        rng = self._rng("orders")
        n = spec.orders
        # Skewed customers: a few order much more than most. The popularity rank is shuffled over ids
        # so that customer 1 is an ordinary customer, not the busiest one.
        rank = rng.choice(spec.customers, size=n, p=zipf_weights(spec.customers, 0.5))
        customer = rng.permutation(spec.customers)[rank] + 1
        status = rng.choice(len(STATUSES), size=n, p=[0.6, 0.15, 0.1, 0.1, 0.05])
        created = iso(timestamps(rng, n, ordered=True))
        has_note = rng.random(n) < 0.2
        note_idx = rng.integers(0, len(self.order_notes), n)
        line_counts = np.clip(rng.poisson(spec.lines_per_order - 1, n) + 1, 1, 12)
        order_of_line = np.repeat(np.arange(1, n + 1), line_counts)
        lrng = self._rng("order_lines")
        product = lrng.choice(spec.products, size=len(order_of_line), p=zipf_weights(spec.products)) + 1
        quantity = lrng.integers(1, 6, size=len(order_of_line))
        unit_price = self.prices[product - 1]
        totals = np.round(np.bincount(order_of_line, weights=quantity * unit_price, minlength=n + 1)[1:], 2)

        def orders() -> Iterator[list[Row]]:
            # Plain Python lists: indexing a numpy array one element at a time is several times slower.
            cust, stat, tot = customer.tolist(), status.tolist(), totals.tolist()
            noted, note = has_note.tolist(), note_idx.tolist()
            addresses, notes = self.addresses, self.order_notes
            for lo in range(0, n, CHUNK):
                yield [
                    (
                        i + 1,
                        cust[i],
                        STATUSES[stat[i]],
                        created[i],
                        tot[i],
                        addresses[cust[i] - 1],
                        notes[note[i]] if noted[i] else None,
                    )
                    for i in range(lo, min(lo + CHUNK, n))
                ]

        def lines() -> Iterator[list[Row]]:
            m = len(order_of_line)
            ids, orders_, products_ = np.arange(1, m + 1).tolist(), order_of_line.tolist(), product.tolist()
            qty, price = quantity.tolist(), unit_price.tolist()
            for lo in range(0, m, CHUNK):
                hi = min(lo + CHUNK, m)
                yield list(
                    zip(ids[lo:hi], orders_[lo:hi], products_[lo:hi], qty[lo:hi], price[lo:hi], strict=True)
                )

        return orders(), lines()

    def reviews(self) -> Iterator[list[Row]]:
        spec = self.spec
        n = spec.reviews
        rng = self._rng("reviews")
        product = rng.choice(spec.products, size=n, p=zipf_weights(spec.products)) + 1
        customer = rng.integers(1, spec.customers + 1, n)
        rating = rng.choice(5, size=n, p=[0.05, 0.07, 0.13, 0.3, 0.45]) + 1
        body = rng.integers(0, len(self.bodies), n)
        created = iso(timestamps(rng, n, ordered=True))
        prod, cust, stars, text_of = product.tolist(), customer.tolist(), rating.tolist(), body.tolist()
        for lo in range(0, n, CHUNK):
            yield [
                (i + 1, prod[i], cust[i], stars[i], self.bodies[text_of[i]], created[i])
                for i in range(lo, min(lo + CHUNK, n))
            ]

    def tables(self) -> Iterator[tuple[str, Iterator[list[Row]]]]:
        yield "customers", self.customers()
        yield "products", self.products()
        orders, lines = self.orders_and_lines()
        yield "orders", orders
        yield "order_lines", lines
        yield "reviews", self.reviews()


def generate_rows(size: str, seed: int = SEED) -> Iterator[tuple[str, list[Row]]]:
    """Every (table, chunk of rows) of a dataset, in insert order: the same for the same size and seed."""
    for table, chunks in _Generator(size_spec(size), seed).tables():
        for chunk in chunks:
            yield table, chunk
