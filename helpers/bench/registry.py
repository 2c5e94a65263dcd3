"""How a benchmark is declared: a function of the course that returns a `Race`, registered by a decorator.

A race is the lesson's key comparison measured in one run: the naive variant first (the baseline), the
optimized ones, and the **floor** — the same work done the fastest way the machine allows (the raw driver,
a bare Flask view, `SELECT 1` on an open connection). `ratio_vs_baseline` is naive ÷ variant within the race;
`ratio_vs_floor` is variant ÷ floor: how far a variant is from what the machine can do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..measure.harness import Measurement, Variants, normalize

if TYPE_CHECKING:
    from ..course import Course

__all__ = ["REGISTRY", "Benchmark", "Goal", "Race", "benchmark"]


@dataclass(frozen=True)
class Goal:
    """A target printed beside a figure (never a pass/fail test): `variant` within `max_vs_floor` × the floor."""

    variant: str
    max_vs_floor: float
    label: str = ""  # how the goal reads, when not "≤ 2× floor"

    def text(self) -> str:
        return self.label or f"≤ {self.max_vs_floor:g}× floor"

    def met(self, ratio_vs_floor: float) -> bool:
        return ratio_vs_floor <= self.max_vs_floor


@dataclass
class Race:
    """What a benchmark returns: its variants (naive first), the floor among them, goals, cleanup."""

    variants: Variants
    floor: str | None = None
    goals: tuple[Goal, ...] = ()
    same_result: bool = True
    key: Callable[[Any], Any] = normalize  # what must be equal between variants' results
    cleanup: list[Callable[[], None]] = field(default_factory=list)
    measured: list[Measurement] | None = None  # measurements made by the benchmark itself (a load run)
    details: list[dict[str, Any]] = field(default_factory=list)  # rows of a side table (per endpoint under load)


@dataclass(frozen=True)
class Benchmark:
    """A registered benchmark: `make(course)` returns its Race, or None where it does not apply."""

    name: str
    doc: str
    lesson: str
    make: Callable[[Course], Race | None]
    repeat: int


REGISTRY: list[Benchmark] = []


def benchmark(*, lesson: str, repeat: int = 7) -> Callable[[Callable[[Course], Race | None]], Any]:
    """Register a function returning a Race; its name names the benchmark, its docstring labels it."""

    def register(make: Callable[[Course], Race | None]) -> Callable[[Course], Race | None]:
        doc = (make.__doc__ or "").strip().splitlines()[0]
        REGISTRY.append(Benchmark(make.__name__, doc, lesson, make, repeat))
        return make

    return register
