"""Small ipywidgets for live demos: rerun a comparison, pick a dataset, sweep a parameter."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import ipywidgets as w
from IPython.display import display

from .config import BACKENDS, SIZES
from .data import copy_exists
from .errors import CourseError
from .exercises import say

if TYPE_CHECKING:
    from .course import Course


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
    run: Callable[[], Any], *, label: str = "Run again", run_now: bool = True, needs: Course | None = None
) -> None:
    """A button that clears its output and calls `run()` again (which displays its own table and chart).

    `needs`: the private copy `run` works on; once the lesson's clean-up removed it, the button says so.
    """
    button = w.Button(description=label, icon="refresh", button_style="primary")
    out = w.Output()

    def click(_: Any = None) -> None:
        button.disabled = True
        out.clear_output(wait=True)
        try:
            _run_in(out, run, needs)
        finally:
            button.disabled = False

    button.on_click(click)
    display(w.VBox([button, out]))
    if run_now:
        click()


def slider_rerun(
    run: Callable[[Any], Any],
    *,
    options: Sequence[Any],
    value: Any,
    description: str,
    run_now: bool = True,
    needs: Course | None = None,
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
        _run_in(out, lambda: run(slider.value), needs)

    slider.observe(changed, names="value")
    display(w.VBox([slider, out]))
    if run_now:
        changed()


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
        from .course import setup

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
        from .data import build_dataset

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
