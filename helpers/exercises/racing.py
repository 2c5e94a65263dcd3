"""The learner's variant in a lesson's main race: raced once it passes its exercise's check, left out (said in one
line, never an error on Run All) while it still holds `____` or is not right yet.

    variants, best = with_yours(ex.q1, customer_columns, contrast, reference="select(columns)")
    course.compare(..., naive="whole entities", best=best, prediction=guess, claim="columns")
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from ..measure.display import say
from .app_task import AppTask
from .core import Exercise, Incorrect, contains_blank

__all__ = ["RacedExercises", "V", "with_yours"]

_YOURS = "yours"  # the label the learner's variant races under
V = TypeVar("V")


def with_yours(
    exercise: Exercise, answer: Any, variants: Mapping[str, V], *, reference: str
) -> tuple[dict[str, V], str]:
    """`variants` with the learner's `answer` added as "yours" when it passes `exercise`'s check, and the variant
    that plays the best role: "yours" then, else the course's `reference` (one line says why it is left out)."""
    name = getattr(answer, "__name__", "answer")
    why = _not_ready(exercise, answer)
    if why is None:
        return {**variants, _YOURS: answer}, _YOURS
    say(f"Your {name} {why}: this race runs without it, with {reference!r} as the best variant.", "#7a6a00")
    return dict(variants), reference


def _not_ready(exercise: Exercise, answer: Any) -> str | None:
    """Why the answer cannot race yet (None: it passes its check). The check runs silently."""
    if contains_blank(answer):
        return "still has ____ in it"
    try:
        exercise.question.check(exercise.course, answer)
    except Incorrect as exc:
        return f"does not pass its check yet ({str(exc).split(':')[0]})"
    except Exception as exc:  # the learner's code failed: the check cell says how; here one line is enough
        return f"raised {type(exc).__name__}"
    return None


@dataclass(frozen=True)
class RacedExercises:
    """A lesson's four exercises and its improve-the-app task, bound to its database, where q1's answer joins the
    lesson's main race beside the course's `reference` (its label, its function), which each lesson names."""

    q1: Exercise
    q2: Exercise
    q3: Exercise
    q4: Exercise
    improve: AppTask
    reference: ClassVar[tuple[str, Callable[..., Any]]]

    def with_yours(
        self, answer: Callable[..., Any], contrast: Mapping[str, Callable[..., Any]]
    ) -> tuple[dict[str, Callable[..., Any]], str]:
        """The main race's variants: `contrast`, the course's reference, and your q1 answer as "yours" once it
        passes q1's check; and the variant that plays the best role (yours, or the course's)."""
        label, function = self.reference
        return with_yours(self.q1, answer, {**contrast, label: function}, reference=label)
