"""Small ipywidgets for live demos: rerun a comparison, pick a dataset, sweep a parameter."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as w
from IPython.display import display

from ..data import copy_exists
from ..errors import CourseError
from .display import say

if TYPE_CHECKING:
    from ..course import Course


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
