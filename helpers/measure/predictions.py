"""Predict, then measure: what a learner expects of a race, written down before it runs, shown beside what it
measured and kept with it (the capstone shows how the predictions moved across the course).

    guess = predict("How many times faster will select(columns) be than whole entities?", statements=True)
    race = course.compare(variants, naive="whole entities", best="yours", prediction=guess)

`predict` (in `measure.widgets`) shows two boxes and returns them; `Prediction(speedup=5, statements=1)` written
in a cell is the same thing. Leaving them empty is never an error: the race runs and says nothing was predicted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Outcome", "Predicted", "Prediction", "as_prediction", "outcome"]


@dataclass(frozen=True)
class Prediction:
    """How many times faster the best variant will be than the naive one, and how many statements a variant
    (`of`; None: the best one) will run. Either may be None: not predicted."""

    speedup: float | None = None
    statements: int | None = None
    of: str | None = None

    @property
    def empty(self) -> bool:
        return self.speedup is None and self.statements is None


class _HasPrediction(Protocol):
    @property
    def prediction(self) -> Prediction: ...


Predicted = Prediction | _HasPrediction | None


def as_prediction(given: Predicted) -> Prediction | None:
    """A Prediction from what a race was given: a Prediction, a prediction box, or nothing."""
    if given is None:
        return None
    prediction = given if isinstance(given, Prediction) else given.prediction
    return None if prediction.empty else prediction


@dataclass(frozen=True)
class Outcome:
    """A prediction beside what the race measured."""

    naive: str
    best: str
    predicted_speedup: float | None
    measured_speedup: float
    statements_of: str
    predicted_statements: int | None
    measured_statements: int | None

    def sentence(self) -> str:
        parts = []
        if self.predicted_speedup is not None:
            parts.append(
                f"you predicted {self.best!r} {self.predicted_speedup:g}× faster than {self.naive!r}; it was "
                f"{self.measured_speedup:.1f}×"
            )
        if self.predicted_statements is not None:
            ran = "–" if self.measured_statements is None else f"{self.measured_statements}"
            parts.append(
                f"you predicted {self.predicted_statements} statement{'s' * (self.predicted_statements != 1)} "
                f"for {self.statements_of!r}; it ran {ran}"
            )
        return ("Prediction: " + "; ".join(parts) + ".") if parts else "No prediction for this race."


def outcome(prediction: Prediction, naive: Any, best: Any, of: Any) -> Outcome:
    """What was predicted, and what the race measured: `naive`, `best` and `of` are its Measurements."""
    return Outcome(
        naive=naive.variant,
        best=best.variant,
        predicted_speedup=prediction.speedup,
        measured_speedup=naive.median_s / best.median_s,
        statements_of=of.variant,
        predicted_statements=prediction.statements,
        measured_statements=of.statements,
    )
