"""Database URLs: forms people paste work, wrong ones fail fast in one line."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from helpers.db import check_connection, check_reachable, make_engine, parse_url
from helpers.errors import CourseError


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    "url", ["not a url", "://nothing", "sqlite//missing-colon", "postgresql://u:secret@h:port/db", "sqlite://x"]
)
def test_malformed_url_is_one_line(url: str) -> None:
    with pytest.raises(CourseError) as info:
        make_engine(url)
    assert "\n" not in str(info.value) and "is not a database URL" in str(info.value)
    assert "secret" not in str(info.value)


def test_unknown_driver_is_one_line() -> None:
    with pytest.raises(CourseError, match=r"^No database driver for oracle\+nosuchdriver:// URLs"):
        make_engine("oracle+nosuchdriver://scott@localhost/db")


@pytest.mark.parametrize("url", ["postgres://u@localhost/db", "postgresql://u@localhost/db"])
def test_postgres_urls_use_psycopg3(url: str) -> None:
    assert parse_url(url).drivername == "postgresql+psycopg"


def test_unreachable_database_fails_within_seconds() -> None:
    engine = make_engine(f"postgresql+psycopg://nobody@127.0.0.1:{closed_port()}/shop")
    started = time.monotonic()
    with pytest.raises(CourseError) as info:
        check_connection(engine)
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert "\n" not in message and "Cannot reach the database" in message and "DATABASE_URL" in message


def test_password_is_not_shown() -> None:
    engine = make_engine(f"postgresql+psycopg://nobody:s3cret@127.0.0.1:{closed_port()}/shop")
    with pytest.raises(CourseError) as info:
        check_connection(engine)
    assert "s3cret" not in str(info.value)


def test_sqlite_in_a_missing_folder_is_one_line(tmp_path: object) -> None:
    engine = make_engine("sqlite:////nonexistent-folder/x/shop.sqlite")
    with pytest.raises(CourseError, match="Cannot reach the database"):
        check_connection(engine)


def test_a_missing_sqlite_folder_is_named_before_anything_is_made() -> None:
    with pytest.raises(CourseError, match=r"^The folder /nonexistent-folder/x for the SQLite database"):
        check_reachable(parse_url("sqlite:////nonexistent-folder/x/shop.sqlite"))
    assert not Path("/nonexistent-folder").exists()


def test_a_sqlite_file_served_as_it_is_must_exist(tmp_path: Path) -> None:
    url = parse_url(f"sqlite:///{tmp_path}/none.sqlite")
    check_reachable(url)  # the course builds it
    with pytest.raises(CourseError, match=r"^There is no SQLite database at"):
        check_reachable(url, must_exist=True)


@pytest.mark.postgres
def test_a_missing_database_on_a_live_server_is_left_to_the_build() -> None:
    from helpers.servers import postgres_url

    url = parse_url(postgres_url("no_such_database"))
    check_reachable(url)  # the server answers: building the dataset creates the database
    with pytest.raises(CourseError, match=r'^The database .* does not exist \(database "no_such_database"'):
        check_reachable(url, must_exist=True)
    check_reachable(parse_url(postgres_url()), must_exist=True)
