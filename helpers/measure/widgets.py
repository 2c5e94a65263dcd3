"""Small ipywidgets for live demos: rerun a comparison, pick a dataset, sweep a parameter."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import ipywidgets as w
from IPython.display import display

from ..config import BACKENDS, SIZES
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


class DatasetPicker:
    """Switch the running notebook to another dataset (size, backend), or reset the one in use to pristine.

    Nothing happens behind the learner's back: "Use this dataset" builds the dataset if it is missing, sets
    COURSE_SIZE and COURSE_BACKEND in this kernel's environment (so a later `setup()` in this kernel agrees)
    and makes a new `Course`, `picker.course`, which the cells below take up when they are run again. Other
    notebooks run in their own kernels and keep the size and backend JupyterLab was started with.

    `switch()` and `reset()` are the buttons' callbacks, callable directly (the tests do).
    """

    def __init__(self, course: Course) -> None:
        self.course = course
        own_database = not course.settings.database_url  # DATABASE_URL: a database the course did not make
        self.size = w.Dropdown(options=list(SIZES), value=course.size, description="size")
        self.backend = w.Dropdown(
            options=list(BACKENDS),
            value=course.settings.backend,
            description="backend",
            disabled=not own_database,
        )
        self.use_button = w.Button(description="Use this dataset", icon="check", button_style="primary")
        self.reset_button = w.Button(
            description="Reset to pristine",
            icon="undo",
            button_style="warning",
            disabled=not own_database,
            tooltip="Rebuild the dataset in use from its seed",
        )
        self.out = w.Output()
        self.use_button.on_click(lambda _: self._run(self.switch))
        self.reset_button.on_click(lambda _: self._run(self.reset))
        self.widget = w.VBox([w.HBox([self.size, self.backend, self.use_button, self.reset_button]), self.out])

    def switch(self) -> Course:
        """Build (if missing) and connect to the chosen dataset: the new `self.course`, this kernel's default."""
        from ..course import setup

        size, backend = self.size.value, self.backend.value
        os.environ["COURSE_SIZE"] = size
        if not self.course.settings.database_url:
            os.environ["COURSE_BACKEND"] = backend
        new = setup(self.course.lesson, size=size, backend=backend)
        old, self.course = self.course, new
        if old.url != new.url:
            old.engine.dispose()  # its connections are not needed any more (it reconnects if used again)
        print(
            f"This notebook now runs on {new.backend}, size {new.size}. Run the cells below again, from "
            "`course = picker.course` on; other notebooks keep their own settings until you restart them with "
            f"COURSE_SIZE={new.size} COURSE_BACKEND={new.settings.backend}."
        )
        return new

    def reset(self) -> float:
        """Rebuild the dataset in use from its seed (undoing any change made to it); returns the seconds taken."""
        from ..data import build_dataset

        course = self.course
        if course.settings.database_url:
            raise CourseError(
                "Reset rebuilds the course's own databases; yours (DATABASE_URL) is left alone: "
                "point DATABASE_URL at an empty database and rerun the setup cell to rebuild it there."
            )
        # Close this kernel's connections first: SQLite's would keep reading the replaced file, and PostgreSQL's
        # would be ended by the rename that swaps the new database in.
        course.engine.dispose()
        started = time.perf_counter()
        course.info = build_dataset(course.size, url=course.url, force=True)
        seconds = time.perf_counter() - started
        print(
            f"Reset {course.size} on {course.backend}: {course.info.total_rows:,} rows rebuilt from seed "
            f"{course.info.seed} in {seconds:.1f} s. Notebooks open in other kernels: rerun their setup cell"
            + (" (their connections were ended)." if course.backend == "postgresql" else ".")
        )
        return seconds

    @contextmanager
    def _busy(self) -> Iterator[None]:
        buttons = (self.use_button, self.reset_button)
        enabled = [not b.disabled for b in buttons]
        for b in buttons:
            b.disabled = True
        try:
            yield
        finally:
            for b, was_enabled in zip(buttons, enabled, strict=True):
                b.disabled = not was_enabled

    def _run(self, action: Callable[[], Any]) -> None:
        """A button's click: clear the output, run `action` into it, one red line on a CourseError."""
        self.out.clear_output()
        with self._busy(), self.out:
            try:
                action()
            except CourseError as exc:
                print(f"\x1b[31mCourseError: {exc}\x1b[0m")

    def _ipython_display_(self) -> None:
        display(self.widget)


def dataset_picker(course: Course) -> DatasetPicker:
    """Show a DatasetPicker for `course` and return it (`course = picker.course` takes up its choice)."""
    picker = DatasetPicker(course)
    display(picker)
    return picker
