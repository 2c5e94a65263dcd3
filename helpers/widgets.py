"""Small ipywidgets for live demos: rerun a comparison, pick a dataset, sweep a parameter."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as w
from IPython.display import display

from .config import SIZES


def rerun_button(run: Callable[[], Any], *, label: str = "Run again", run_now: bool = True) -> None:
    """A button that clears its output and calls `run()` again (which displays its own table and chart)."""
    button = w.Button(description=label, icon="refresh", button_style="primary")
    out = w.Output()

    def click(_: Any = None) -> None:
        button.disabled = True
        out.clear_output(wait=True)
        try:
            with out:
                run()
        finally:
            button.disabled = False

    button.on_click(click)
    display(w.VBox([button, out]))
    if run_now:
        click()


def slider_rerun(
    run: Callable[[Any], Any], *, options: Sequence[Any], value: Any, description: str, run_now: bool = True
) -> None:
    """A slider over `options`; releasing it calls `run(value)` again into the output below."""
    slider = w.SelectionSlider(
        options=list(options),
        value=value,
        description=description,
        continuous_update=False,
        style={"description_width": "initial"},
    )
    out = w.Output()

    def changed(_: Any = None) -> None:
        out.clear_output(wait=True)
        with out:
            run(slider.value)

    slider.observe(changed, names="value")
    display(w.VBox([slider, out]))
    if run_now:
        changed()


def dataset_picker(current: str) -> None:
    """Choose a size and build it (already-built sizes are reused unless 'rebuild' is ticked)."""
    from .data import build_dataset

    size = w.Dropdown(options=list(SIZES), value=current, description="size")
    force = w.Checkbox(value=False, description="rebuild from scratch (reset)")
    button = w.Button(description="Build / check", button_style="primary")
    out = w.Output()

    def click(_: Any) -> None:
        button.disabled = True
        out.clear_output()
        try:
            with out:
                info = build_dataset(size.value, force=force.value)
                print(f"{info.size}: {info.total_rows:,} rows at {info.url}, built {info.built_at}.")
                print(f"To use it in every lesson, set COURSE_SIZE={info.size} before starting JupyterLab,")
                print(f"or pass size={info.size!r} to setup() in a lesson's first cell.")
        finally:
            button.disabled = False

    button.on_click(click)
    display(w.VBox([w.HBox([size, force, button]), out]))
