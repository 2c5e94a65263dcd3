"""The widgets' callbacks, called directly as a click would: switch the notebook's dataset, reset it, rerun."""

from __future__ import annotations

import dataclasses
import os

import pytest
from sqlalchemy import delete, func, select

from helpers.course import Course
from helpers.data import content_fingerprint, drop_copy
from helpers.errors import CourseError
from helpers.instructor import DatasetPicker, dataset_picker
from helpers.measure.widgets import rerun_button
from helpers.shop.models import Review


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, course: Course) -> None:
    """Whatever a switch writes into os.environ is undone after the test."""
    monkeypatch.setenv("COURSE_SIZE", course.size)
    monkeypatch.setenv("COURSE_BACKEND", course.settings.backend)


@pytest.mark.usefixtures("clean_env")
def test_use_this_dataset_sets_the_kernel_environment_and_hands_over_a_new_course(
    course: Course, capsys: pytest.CaptureFixture[str]
) -> None:
    picker = dataset_picker(course)
    assert picker.course is course
    picker.size.value, picker.backend.value = "tiny", course.settings.backend
    picker.use_button.click()  # what a click runs
    new = picker.course
    try:
        assert new is not course and new.engine is not course.engine
        assert (new.size, new.backend, new.lesson) == ("tiny", course.backend, course.lesson)
        assert os.environ["COURSE_SIZE"] == "tiny"
        assert os.environ["COURSE_BACKEND"] == course.settings.backend
        out = capsys.readouterr().out
        assert "Setup complete" in out and "Run the cells below again" in out
        assert not picker.use_button.disabled and not picker.reset_button.disabled  # enabled again after the run
    finally:
        new.engine.dispose()


@pytest.mark.postgres
@pytest.mark.usefixtures("clean_env")
def test_switching_the_backend_moves_the_notebook_to_the_other_database(course: Course) -> None:
    other = "postgres" if course.settings.backend == "sqlite" else "sqlite"
    picker = DatasetPicker(course)
    picker.backend.value = other
    new = picker.switch()
    try:
        assert new.settings.backend == other == os.environ["COURSE_BACKEND"]
        assert new.backend == {"sqlite": "sqlite", "postgres": "postgresql"}[other]
        with new.session() as session:
            assert session.scalar(select(func.count()).select_from(Review)) == new.info.rows["reviews"]
    finally:
        new.engine.dispose()


def test_reset_restores_a_dataset_that_was_changed(course: Course, capsys: pytest.CaptureFixture[str]) -> None:
    pristine = content_fingerprint(course.engine)
    copy = course.private_copy("picker_reset")  # the shared dataset stays untouched
    try:
        with copy.engine.begin() as conn:
            conn.execute(delete(Review).where(Review.id <= 10))
        assert content_fingerprint(copy.engine) != pristine
        picker = DatasetPicker(copy)
        seconds = picker.reset()
        assert seconds > 0
        assert content_fingerprint(copy.engine) == pristine
        assert copy.info.rows == course.info.rows
        out = capsys.readouterr().out
        assert out.startswith(f"Reset tiny on {course.backend}: {course.info.total_rows:,} rows rebuilt")
    finally:
        copy.engine.dispose()
        drop_copy(copy.url)


def test_reset_leaves_a_database_of_your_own_alone(course: Course, capsys: pytest.CaptureFixture[str]) -> None:
    own_url = dataclasses.replace(course.settings, database_url=str(course.url))
    theirs = dataclasses.replace(course, settings=own_url)
    picker = DatasetPicker(theirs)
    assert picker.reset_button.disabled and picker.backend.disabled
    with pytest.raises(CourseError, match="yours \\(DATABASE_URL\\) is left alone"):
        picker.reset()
    picker.reset_button.click()  # as a click: one red line, no traceback
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "CourseError: Reset rebuilds the course's own databases" in out


def test_rerun_button_and_slider_run_at_once_when_asked() -> None:
    calls: list[object] = []
    rerun_button(lambda: calls.append("run"), run_now=True)
    assert calls == ["run"]
    rerun_button(lambda n: calls.append(n), controls={"n": [1, 2, 3]}, values={"n": 2}, on_release=True)
    assert calls == ["run", 2]


def test_rerun_after_the_copy_is_gone_says_so_in_one_line(
    course: Course, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = course.private_copy("widget-test")
    calls: list[object] = []
    rerun_button(lambda: calls.append("run"), run_now=True, needs=copy)
    assert calls == ["run"]  # the copy is there: the comparison runs
    copy.engine.dispose()
    drop_copy(copy.url)
    rerun_button(lambda: calls.append("again"), run_now=True, needs=copy)
    rerun_button(lambda n: calls.append(n), controls={"n": [1, 2]}, values={"n": 1}, on_release=True, needs=copy)
    assert calls == ["run"]
    out = capsys.readouterr().out
    assert out.count("clean-up cell has removed") == 2 and "Traceback" not in out
