"""Switching datasets inside a running notebook: the learner's dataset picker (lesson 00), and the instructor's
panel (switch size, backend or cache, clear the stored history, reset for the next group).

In any lesson, after its setup cell:

    from helpers.instructor import instructor_panel
    instructor_panel(course)

Every control is also a plain function (`switch`, `clear_history`, `reset_for_next_group`) for scripts.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ipywidgets as w
from IPython.display import display

from .config import BACKENDS, CACHES, SIZES, Settings, settings
from .course import Course, cache_config, setup
from .data import build_dataset, ensure_dataset
from .db import course_url
from .errors import CourseError
from .exercises.saved_views import my_app_dir
from .measure import results

__all__ = [
    "DatasetPicker",
    "clear_history",
    "clear_history_button",
    "clear_history_widget",
    "dataset_picker",
    "instructor_panel",
    "reset_for_next_group",
    "switch",
    "switch_widget",
]

_ENV = {"size": "COURSE_SIZE", "backend": "COURSE_BACKEND", "cache": "COURSE_CACHE"}


def switch(size: str | None = None, backend: str | None = None, cache: str | None = None) -> Settings:
    """Make this kernel's next `setup()` use another size, backend or cache, and have its data ready.

    Builds the dataset if it is missing (with a progress bar), then sets COURSE_SIZE / COURSE_BACKEND /
    COURSE_CACHE for this kernel. The lesson's objects still point at the old database until its setup cell
    runs again: rerun from there (or Run ▸ Run All Cells).
    """

    wanted = settings(size=size, backend=backend, cache=cache)  # an unknown name is a CourseError here
    if wanted.database_url and backend is not None:
        raise CourseError(
            "DATABASE_URL is set, so the course uses that database whatever the backend: unset DATABASE_URL "
            "and restart JupyterLab to switch backends."
        )
    ensure_dataset(wanted.size, url=course_url(wanted))  # starts the course's PostgreSQL when asked for
    if wanted.cache == "redis":
        cache_config(wanted)  # start (or reach) Redis now, so a problem shows here and not mid-lesson
    for field, var in _ENV.items():
        os.environ[var] = getattr(wanted, field)
    print(
        f"Switched to size {wanted.size} on {wanted.backend} (cache {wanted.cache}): run the setup cell again "
        "(or Run ▸ Run All Cells) to measure with it."
    )
    return wanted


def clear_history(lesson: str | None = None) -> int:
    """Forget the stored measurements of one lesson (or of the whole course); returns how many were removed."""
    return results.clear(lesson)


def _archive_answers() -> Path | None:
    """Move the learners' saved endpoints (data/my_app/*.py) into a dated folder beside them; None if none."""

    folder = my_app_dir()
    answers = sorted(folder.glob("[0-9][0-9]_*.py")) if folder.is_dir() else []
    if not answers:
        return None
    archive = folder / "previous" / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    archive.mkdir(parents=True, exist_ok=True)
    for path in answers:
        shutil.move(path, archive / path.name)
    return archive


def reset_for_next_group() -> str:
    """Clear every lesson's stored history and put the learners' saved answers aside; says what it did.

    The datasets are left alone: lessons never change them (they work on private copies); `make reset
    SIZE=...` rebuilds one from scratch if it was damaged.
    """
    removed = clear_history()
    archive = _archive_answers()
    kept = f"answers moved to {archive}" if archive else "no saved answers to move"
    return f"Cleared {removed:,} stored measurements; {kept}. Ready for the next group."


# ---------------------------------------------------------------------------------------------------- widgets


def _confirm_button(label: str, confirm: str, action: Callable[[], str], out: w.Output) -> w.Button:
    """A button that asks for a second click before `action`, then prints what the action reports into `out`."""

    button = w.Button(description=label, icon="trash", button_style="warning", layout=w.Layout(width="auto"))
    armed = {"yes": False}

    def click(_: Any = None) -> None:
        out.clear_output()
        if not armed["yes"]:
            armed["yes"] = True
            button.description, button.button_style = confirm, "danger"
            return
        armed["yes"] = False
        button.description, button.button_style = label, "warning"
        button.disabled = True
        try:
            with out:
                print(action())
        finally:
            button.disabled = False

    button.on_click(click)
    return button


def _clear_history_button(lesson: str | None, out: w.Output) -> w.Button:
    what = f"lesson {lesson}" if lesson else "every lesson"

    def action() -> str:
        removed = clear_history(lesson)
        return f"Cleared {removed:,} stored measurements of {what}: the next run starts a fresh history."

    return _confirm_button(
        f"Clear stored history ({what})", f"Click again to clear the history of {what}", action, out
    )


def clear_history_widget(lesson: str | None = None) -> w.VBox:
    """The clear-history button (of `lesson`, or of every lesson when None), with its confirmation step."""

    out = w.Output()
    return w.VBox([_clear_history_button(lesson, out), out], layout=w.Layout(align_items="flex-start"))


def clear_history_button(lesson: str | None = None) -> None:
    """Show a button that clears the stored history of `lesson` (or of every lesson), after a second click."""

    display(clear_history_widget(lesson))


def switch_widget(current: Settings | None = None) -> w.VBox:
    """Size, backend and cache pickers and a Switch button that calls `switch()`."""

    now = current or settings()
    style = {"description_width": "initial"}

    def picker(options: Any, value: str, description: str) -> w.Dropdown:
        return w.Dropdown(
            options=list(options), value=value, description=description, style=style, layout=w.Layout(width="13em")
        )

    size = picker(SIZES, now.size, "size")
    backend = picker(BACKENDS, now.backend, "backend")
    cache = picker(CACHES, now.cache, "cache")
    button = w.Button(description="Switch", icon="exchange", button_style="primary")
    out = w.Output()

    def click(_: Any = None) -> None:
        button.disabled = True
        out.clear_output()
        try:
            with out:
                # The backend is only asked for when it changes (DATABASE_URL, when set, pins it).
                switch(
                    size=size.value,
                    backend=None if backend.value == now.backend else backend.value,
                    cache=cache.value,
                )
        finally:
            button.disabled = False

    button.on_click(click)
    return w.VBox([w.HBox([size, backend, cache, button]), out])


def _switcher(course: Course | None = None) -> None:
    """Show the size / backend / cache switch for this kernel (starting from `course`'s settings)."""

    display(switch_widget(course.settings if course is not None else None))


def instructor_panel(course: Course) -> None:
    """Everything an instructor needs during a demo, in one place: switch, clear this lesson, reset for a group."""

    info = w.HTML(
        f"<b>Instructor</b> · lesson {course.lesson} · {course.backend}, size {course.size} "
        f"({course.info.total_rows:,} rows), cache {course.settings.cache}"
    )
    out = w.Output()
    reset = _confirm_button(
        "Reset for the next group", "Click again: clear all history, put answers aside", reset_for_next_group, out
    )
    buttons = w.HBox([_clear_history_button(course.lesson, out), reset])
    panel = w.VBox(
        [info, switch_widget(course.settings), buttons, out],
        layout=w.Layout(border="1px solid #c8ccd2", padding="6px"),
    )
    panel.add_class("course-instructor-panel")
    display(panel)


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
