"""Instructor mode: switching size or backend in a running kernel, clearing history, resetting for a group."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from helpers import instructor
from helpers.errors import CourseError
from helpers.measure import results


@pytest.fixture
def course_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The course's environment variables as a fresh kernel would see them, restored after the test."""
    for var in ("COURSE_SIZE", "COURSE_BACKEND", "COURSE_CACHE", "DATABASE_URL", "CACHE_REDIS_URL"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "results.sqlite"
    monkeypatch.setenv("COURSE_RESULTS_PATH", str(path))
    results.clear()  # creates the store's table
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.executemany(
            "INSERT INTO measurements (lesson, comparison, variant) VALUES (?, ?, ?)",
            [("02", "c", "a"), ("02", "c", "b"), ("03", "c", "a")],
        )
    return path


def test_switch_sets_what_the_next_setup_reads(course_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    import os

    from helpers.config import settings

    chosen = instructor.switch(size="tiny", backend="sqlite", cache="simple")
    assert (chosen.size, chosen.backend, chosen.cache) == ("tiny", "sqlite", "simple")
    assert os.environ["COURSE_SIZE"] == "tiny" and settings().size == "tiny"
    assert "run the setup cell again" in capsys.readouterr().out


def test_switch_rejects_unknown_names_in_one_line(course_env: None) -> None:
    with pytest.raises(CourseError, match="Unknown COURSE_SIZE 'huge'"):
        instructor.switch(size="huge")


def test_switch_says_database_url_pins_the_backend(course_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite:///elsewhere.sqlite")
    with pytest.raises(CourseError, match="unset DATABASE_URL"):
        instructor.switch(backend="postgres")


def test_clear_history_of_one_lesson_then_all(store: Path) -> None:
    assert instructor.clear_history("02") == 2
    assert list(results.history()["lesson"]) == ["03"]
    assert instructor.clear_history() == 1
    assert results.history().empty


def test_clear_history_button_asks_once_before_clearing(store: Path) -> None:
    box = instructor.clear_history_widget("02")
    button = box.children[0]
    button.click()
    assert len(results.history()) == 3, "the first click only asks"
    assert "Click again" in button.description
    button.click()
    assert list(results.history()["lesson"]) == ["03"]
    assert button.description.startswith("Clear stored history")


def test_reset_for_next_group_keeps_answers_aside(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    answers = tmp_path / "data" / "my_app"
    answers.mkdir(parents=True)
    (answers / "03_order_list.py").write_text("# a learner's answer\n")
    said = instructor.reset_for_next_group()
    assert "Cleared 3 stored measurements" in said
    assert not list(answers.glob("*.py"))
    kept = list((answers / "previous").glob("*/03_order_list.py"))
    assert len(kept) == 1 and kept[0].read_text() == "# a learner's answer\n"
    assert "no saved answers to move" in instructor.reset_for_next_group()


def test_switch_widget_starts_from_the_current_settings(course_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_SIZE", "tiny")
    box = instructor.switch_widget()
    size, backend, cache, button = box.children[0].children
    assert (size.value, backend.value, cache.value) == ("tiny", "sqlite", "simple")
    assert button.description == "Switch"
