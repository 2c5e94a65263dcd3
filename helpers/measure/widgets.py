"""The course's widgets: the rerun widget (a button, sliders) for live demos, and the prediction boxes a learner
fills before a race."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as w
from IPython.display import display

from ..data import copy_exists
from ..errors import CourseError
from .display import say
from .predictions import Prediction

if TYPE_CHECKING:
    from ..course import Course

__all__ = ["PredictionBox", "predict", "rerun_button"]


def _run_in(out: w.Output, run: Callable[[], Any], needs: Course | None) -> None:
    """Call `run()` with its output in `out`; a CourseError, or a copy already removed, is one red line."""
    with out:
        try:
            if needs is not None and not copy_exists(needs.url):
                raise CourseError(
                    "this needs the lesson's copy of the dataset, which its clean-up cell has removed: "
                    "run the notebook again from the top (Run All) to use it."
                )
            run()
        except CourseError as exc:
            say(str(exc), "#b00020")


def rerun_button(
    run: Callable[..., Any],
    *,
    controls: Mapping[str, Sequence[Any]] | None = None,
    values: Mapping[str, Any] | None = None,
    label: str = "Run again",
    on_release: bool = False,
    run_now: bool = True,
    needs: Course | None = None,
) -> None:
    """The course's rerun widget: a button that clears its output and calls `run()` again (which displays its
    own table and chart), with a slider per `controls` entry whose values `run` receives by name.

    `values` are the sliders' first values; `on_release=True` drops the button and reruns when a slider is let
    go. `needs`: the private copy `run` works on; once the lesson's clean-up removed it, the widget says so.
    """
    sliders = {
        name: w.SelectionSlider(
            options=list(choices),
            value=(values or {}).get(name, next(iter(choices))),
            description=name,
            continuous_update=False,
            style={"description_width": "initial"},
        )
        for name, choices in (controls or {}).items()
    }
    button = None if on_release else w.Button(description=label, icon="refresh", button_style="primary")
    out = w.Output()

    def go(_: Any = None) -> None:
        if button is not None:
            button.disabled = True
        out.clear_output(wait=True)
        try:
            _run_in(out, lambda: run(**{name: slider.value for name, slider in sliders.items()}), needs)
        finally:
            if button is not None:
                button.disabled = False

    if button is None:
        for slider in sliders.values():
            slider.observe(go, names="value")
    else:
        button.on_click(go)
    # Sliders two to a row, the button at the end of the last one; a single slider sits on its own.
    widgets: list[Any] = list(sliders.values()) + ([button] if button is not None else [])
    rows = [widgets[i : i + 2] for i in range(0, len(widgets) - 1, 2)] if len(sliders) > 1 else []
    if rows and len(widgets) % 2:
        rows[-1].append(widgets[-1])
    children = [w.HBox(row) for row in rows] if rows else widgets
    display(w.VBox([*children, out]))
    if run_now:
        go()


class PredictionBox:
    """Boxes for a prediction, shown above a race; `.prediction` reads them (empty boxes: nothing predicted)."""

    def __init__(self, question: str, *, speedup: bool = True, statements: bool = False, of: str | None = None):
        self.of = of
        style = {"description_width": "initial"}
        self.speedup = w.Text(placeholder="e.g. 5", description="times faster:", style=style) if speedup else None
        self.statements = (
            w.Text(placeholder="e.g. 1", description=f"statements ({of or 'the best variant'}):", style=style)
            if statements
            else None
        )
        boxes = [box for box in (self.speedup, self.statements) if box is not None]
        self.widget = w.VBox([w.HTML(f"<b>Your prediction.</b> {question}"), w.HBox(boxes)])

    @property
    def prediction(self) -> Prediction:
        return Prediction(
            speedup=_number(self.speedup.value) if self.speedup is not None else None,
            statements=_whole(self.statements.value) if self.statements is not None else None,
            of=self.of,
        )

    def _ipython_display_(self) -> None:
        display(self.widget)


def _number(text: str) -> float | None:
    """A positive number typed in a box ('5', '5x', '5×', '0.5'), or None."""
    try:
        value = float(text.strip().rstrip("x×").strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def _whole(text: str) -> int | None:
    value = _number(text)
    return round(value) if value is not None else None


def predict(
    question: str, *, speedup: bool = True, statements: bool = False, of: str | None = None
) -> PredictionBox:
    """Show prediction boxes for the race below and return them (pass them to `compare(prediction=...)`)."""
    box = PredictionBox(question, speedup=speedup, statements=statements, of=of)
    display(box)
    return box
