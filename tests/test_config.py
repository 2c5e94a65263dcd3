"""Settings come from the environment; a wrong value is one line that says what to do."""

from __future__ import annotations

import pytest

from helpers.config import SIZES, settings, size_spec
from helpers.errors import CourseError


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("COURSE_SIZE", "COURSE_BACKEND", "COURSE_CACHE", "DATABASE_URL", "CACHE_REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    s = settings()
    assert (s.size, s.backend, s.cache, s.database_url) == ("small", "sqlite", "simple", None)


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_SIZE", "Medium")
    monkeypatch.setenv("COURSE_BACKEND", "postgres")
    monkeypatch.setenv("COURSE_CACHE", "redis")
    s = settings()
    assert (s.size, s.backend, s.cache) == ("medium", "postgres", "redis")


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("COURSE_SIZE", "huge", "tiny, small, medium, large"),
        ("COURSE_BACKEND", "mysql", "sqlite, postgres"),
        ("COURSE_CACHE", "memcached", "simple, redis"),
    ],
)
def test_unknown_values_say_what_to_choose(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(CourseError) as info:
        settings()
    message = str(info.value)
    assert "\n" not in message
    assert repr(value) in message and expected in message and var in message


def test_sizes_grow() -> None:
    totals = [SIZES[name].total_rows for name in ("tiny", "small", "medium", "large")]
    assert totals == sorted(totals)
    assert SIZES["large"].total_rows > 1_000_000
    assert size_spec("tiny").name == "tiny"
