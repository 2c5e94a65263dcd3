"""Course settings read from the environment: size, backend, cache, and where files live."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import CourseError

__all__ = [
    "BACKENDS",
    "CACHES",
    "PROJECT_ROOT",
    "SIZES",
    "Settings",
    "SizeSpec",
    "data_dir",
    "settings",
    "size_spec",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Where datasets, results and the local servers live: COURSE_DATA_DIR, else data/ (read at call time)."""
    return Path(os.environ.get("COURSE_DATA_DIR") or PROJECT_ROOT / "data")


BACKENDS = ("sqlite", "postgres")
CACHES = ("simple", "redis")


@dataclass(frozen=True)
class SizeSpec:
    """How many rows of each table a dataset size holds."""

    name: str
    customers: int
    products: int
    orders: int
    lines_per_order: float
    reviews: int

    @property
    def order_lines(self) -> int:
        return round(self.orders * self.lines_per_order)

    @property
    def total_rows(self) -> int:
        return self.customers + self.products + self.orders + self.order_lines + self.reviews


SIZES: dict[str, SizeSpec] = {
    spec.name: spec
    for spec in (
        SizeSpec("tiny", customers=500, products=100, orders=2_000, lines_per_order=3.0, reviews=1_000),
        SizeSpec("small", customers=20_000, products=2_000, orders=200_000, lines_per_order=3.0, reviews=40_000),
        SizeSpec(
            "medium",
            customers=100_000,
            products=5_000,
            orders=1_000_000,
            lines_per_order=3.0,
            reviews=200_000,
        ),
        SizeSpec(
            "large",
            customers=500_000,
            products=20_000,
            orders=5_000_000,
            lines_per_order=3.0,
            reviews=1_000_000,
        ),
    )
}
_DEFAULT_SIZE = "small"


def _choice(var: str, value: str | None, allowed: tuple[str, ...], default: str) -> str:
    chosen = (value or os.environ.get(var) or default).strip().lower()
    if chosen not in allowed:
        raise CourseError(
            f"Unknown {var} {chosen!r}: choose one of {', '.join(allowed)} (for example {var}={default})."
        )
    return chosen


def size_spec(size: str | None = None) -> SizeSpec:
    """The SizeSpec for `size`, or for COURSE_SIZE (default 'small')."""
    return SIZES[_choice("COURSE_SIZE", size, tuple(SIZES), _DEFAULT_SIZE)]


@dataclass(frozen=True)
class Settings:
    """What the environment asks for; resolved into URLs by `helpers.db`."""

    size: str
    backend: str
    cache: str
    database_url: str | None
    cache_redis_url: str | None

    @property
    def spec(self) -> SizeSpec:
        return SIZES[self.size]


def settings(size: str | None = None, backend: str | None = None, cache: str | None = None) -> Settings:
    """Read COURSE_SIZE, COURSE_BACKEND, COURSE_CACHE, DATABASE_URL and CACHE_REDIS_URL."""
    return Settings(
        size=size_spec(size).name,
        backend=_choice("COURSE_BACKEND", backend, BACKENDS, "sqlite"),
        cache=_choice("COURSE_CACHE", cache, CACHES, "simple"),
        database_url=os.environ.get("DATABASE_URL") or None,
        cache_redis_url=os.environ.get("CACHE_REDIS_URL") or None,
    )
