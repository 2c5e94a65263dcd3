"""The dataset is deterministic, complete, index-free, and swapped in atomically."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect
from sqlalchemy.engine import URL

from helpers.config import SIZES
from helpers.data import build, build_dataset, content_fingerprint, generate, read_info, row_counts
from helpers.data import info as dataset_info
from helpers.db import make_engine
from helpers.errors import CourseError


def sqlite_url(path: Path) -> URL:
    return URL.create("sqlite+pysqlite", database=str(path))


@contextmanager
def engine_on(url: str | URL) -> Iterator[Engine]:
    """An engine for one test's queries, its connections closed after, whatever happened."""
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def fingerprint(path: Path) -> dict[str, str]:
    with engine_on(sqlite_url(path)) as engine:
        return content_fingerprint(engine)


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "shop-tiny.sqlite"
    build_dataset("tiny", url=sqlite_url(path), progress=False)
    return path


def test_two_builds_are_identical(tiny_file: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.sqlite"
    build_dataset("tiny", url=sqlite_url(again), progress=False)
    assert fingerprint(again) == fingerprint(tiny_file)


def test_another_seed_gives_other_data(tiny_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    build_dataset("tiny", url=sqlite_url(other), progress=False, seed=7)
    assert fingerprint(other)["orders"] != fingerprint(tiny_file)["orders"]


def test_row_counts_match_the_size(tiny_file: Path) -> None:
    spec = SIZES["tiny"]
    with engine_on(sqlite_url(tiny_file)) as engine:
        counts = row_counts(engine)
    assert counts["customers"] == spec.customers
    assert counts["products"] == spec.products
    assert counts["orders"] == spec.orders
    assert counts["reviews"] == spec.reviews
    assert 2.5 * spec.orders < counts["order_lines"] < 3.5 * spec.orders
    info = read_info(sqlite_url(tiny_file))
    assert info.rows == counts and info.size == "tiny"


def test_no_secondary_indexes(tiny_file: Path) -> None:
    with engine_on(sqlite_url(tiny_file)) as engine:
        inspector = inspect(engine)
        assert all(inspector.get_indexes(t) == [] for t in dataset_info.TABLE_ORDER)


def test_orders_reference_real_rows_and_totals_add_up(tiny_file: Path) -> None:
    with engine_on(sqlite_url(tiny_file)) as engine, engine.connect() as conn:
        orphans = conn.exec_driver_sql(
            "SELECT count(*) FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NULL"
        ).scalar_one()
        mismatched = conn.exec_driver_sql(
            "SELECT count(*) FROM orders o JOIN (SELECT order_id, sum(quantity * unit_price) AS s "
            "FROM order_lines GROUP BY order_id) l ON l.order_id = o.id WHERE abs(o.total - l.s) > 0.01"
        ).scalar_one()
    assert (orphans, mismatched) == (0, 0)


def test_popularity_is_skewed(tiny_file: Path) -> None:
    with engine_on(sqlite_url(tiny_file)) as engine, engine.connect() as conn:
        per_product = [
            r[0]
            for r in conn.exec_driver_sql(
                "SELECT count(*) FROM order_lines GROUP BY product_id ORDER BY count(*) DESC"
            )
        ]
    top_tenth = sum(per_product[: len(per_product) // 10])
    assert top_tenth > 0.4 * sum(per_product)  # a Zipf-like head: caching has something to hit


def test_an_interrupted_build_keeps_the_previous_dataset(
    tiny_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "shop.sqlite"
    target.write_bytes(tiny_file.read_bytes())
    before = fingerprint(target)
    real = build.generate_rows

    def interrupted(size: str, seed: int = dataset_info.SEED):  # type: ignore[no-untyped-def]
        for i, item in enumerate(real(size, seed)):
            if i == 2:
                raise KeyboardInterrupt
            yield item

    monkeypatch.setattr(build, "generate_rows", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_dataset("tiny", url=sqlite_url(target), force=True, progress=False)
    assert fingerprint(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shop.sqlite"]


def test_a_killed_build_keeps_the_previous_dataset(tiny_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "shop-small.sqlite"
    target.write_bytes(tiny_file.read_bytes())
    before = fingerprint(target)
    script = (
        "import sys; from sqlalchemy.engine import URL; from helpers.data import build_dataset; "
        f"build_dataset('small', url=URL.create('sqlite+pysqlite', database={str(target)!r}), "
        "force=True, progress=False)"
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("*.building-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # well inside the load of a few seconds
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert fingerprint(target) == before
    # The next build removes what the killed one left behind.
    build_dataset("tiny", url=sqlite_url(target), force=True, progress=False)
    assert not list(tmp_path.glob("*.building-*"))


def test_a_file_that_is_not_a_dataset_is_named_and_kept(tmp_path: Path) -> None:
    notes = tmp_path / "shop-tiny.sqlite"
    notes.write_text("my notes, not a database")
    with pytest.raises(CourseError) as info:
        build_dataset("tiny", url=sqlite_url(notes), progress=False)
    assert "\n" not in str(info.value) and "make reset" in str(info.value)
    build_dataset("tiny", url=sqlite_url(notes), force=True, progress=False)
    assert (tmp_path / "shop-tiny.sqlite.bak").read_text() == "my notes, not a database"
    assert read_info(sqlite_url(notes)).size == "tiny"


def test_a_dataset_from_an_older_version_of_the_course_is_rebuilt_in_place(
    tiny_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "shop-tiny.sqlite"
    target.write_bytes(tiny_file.read_bytes())
    with sqlite3.connect(target) as conn:  # as a dataset built before the timestamps' format changed says
        conn.execute("UPDATE course_meta SET value = '1' WHERE key = 'schema_version'")
    with pytest.raises(CourseError, match="built by another version of the course"):
        read_info(sqlite_url(target))
    info = build_dataset("tiny", url=sqlite_url(target), progress=False)
    assert info.schema_version == dataset_info.SCHEMA_VERSION
    assert "built by an older version of the course: rebuilding it" in capsys.readouterr().out
    assert fingerprint(target) == fingerprint(tiny_file)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shop-tiny.sqlite"]  # nothing kept: it was the course's


def test_a_half_built_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "half.sqlite"
    with engine_on(sqlite_url(path)) as engine:
        build.Base.metadata.create_all(engine)  # tables, but no course_meta: not finished
    with pytest.raises(CourseError, match="not a complete course dataset"):
        read_info(sqlite_url(path))


def test_command_line_reports_bad_size_in_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "helpers", "data", "build", "--size", "huge"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "Unknown COURSE_SIZE 'huge'" in proc.stderr


def test_an_index_made_on_a_model_does_not_reach_new_datasets(tmp_path: Path) -> None:
    from sqlalchemy import Index

    from helpers.shop.models import Order

    stray = Index("ix_lesson_experiment", Order.status)  # what a learner might type in a lesson
    try:
        build_dataset("tiny", url=sqlite_url(tmp_path / "fresh.sqlite"), progress=False)
        with engine_on(sqlite_url(tmp_path / "fresh.sqlite")) as engine:
            assert inspect(engine).get_indexes("orders") == []
    finally:
        Order.__table__.indexes.discard(stray)


@pytest.mark.postgres
def test_new_rows_get_fresh_ids_on_postgres() -> None:
    from sqlalchemy import text

    from helpers.config import settings
    from helpers.data import copy_dataset, drop_copy
    from helpers.db import course_url

    source = course_url(settings(size="tiny", backend="postgres"))
    build_dataset("tiny", url=source, progress=False)
    copy = copy_dataset("tiny", "ids-test", source=source)
    try:
        with engine_on(copy) as engine, engine.begin() as conn:
            new_id = conn.execute(
                text(
                    "INSERT INTO customers (name, email, city, address, notes, created_at) "
                    "VALUES ('New', 'new@example.com', 'Oslo', '-', '-', now()) RETURNING id"
                )
            ).scalar_one()
        assert new_id == SIZES["tiny"].customers + 1
    finally:
        drop_copy(copy)


@pytest.mark.postgres
def test_an_app_opened_before_a_copy_answers_its_next_request() -> None:
    """A copy ends the source's other sessions (PostgreSQL copies a template nobody is on): the pools of this
    process's apps on it are emptied, so a notebook's app made earlier does not answer its next request 503."""
    from helpers.course import setup
    from helpers.data import copy_dataset, drop_copy

    course = setup("tests", size="tiny", backend="postgres", quiet=True)
    app = course.app()
    client = app.test_client()
    assert client.get("/customers/1").status_code == 200  # a pooled session on the course's database
    copy = copy_dataset("tiny", "before-after", source=course.url)
    try:
        response = client.get("/customers/1")
        assert response.status_code == 200, response.get_json()
    finally:
        drop_copy(copy)
        app.extensions["engine"].dispose()
        course.engine.dispose()


@pytest.mark.postgres
def test_a_postgres_build_is_ready_for_the_planner() -> None:
    """Every table has statistics and every page is marked all-visible (rows written frozen, then VACUUM): the
    first query of a lesson gets an estimated plan and can read an index alone (04's index-only scan)."""
    from sqlalchemy import text

    from helpers.config import settings
    from helpers.db import course_url

    source = course_url(settings(size="tiny", backend="postgres"))
    build_dataset("tiny", url=source, force=True, progress=False)
    with engine_on(source) as engine, engine.connect() as conn:
        tables = conn.execute(
            text(
                "SELECT relname, relpages, relallvisible, "
                "(SELECT count(*) FROM pg_stats s WHERE s.tablename = c.relname) AS columns_with_stats, "
                "(SELECT count(*) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 "
                "AND NOT a.attisdropped) AS columns "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r'"
            )
        ).all()
    assert {t.relname for t in tables} == {*dataset_info.TABLE_ORDER, dataset_info.META_TABLE}
    for table in tables:
        assert table.relpages > 0 and table.relallvisible == table.relpages, table
        assert table.columns_with_stats == table.columns, table


def test_every_kind_of_build_loads_the_same_rows(tiny_file: Path, tmp_path: Path) -> None:
    """The in-place build (for a DATABASE_URL of another kind) runs the same skeleton through SQLAlchemy Core."""
    target = sqlite_url(tmp_path / "in-place.sqlite")
    info = build._run(build._InPlace(target), SIZES["tiny"], dataset_info.SEED, progress=False)
    assert info.rows == read_info(sqlite_url(tiny_file)).rows
    assert fingerprint(tmp_path / "in-place.sqlite") == fingerprint(tiny_file)
    with pytest.raises(CourseError, match="already has tables: point DATABASE_URL at an empty database"):
        build._run(build._InPlace(target), SIZES["tiny"], dataset_info.SEED, progress=False)


def test_orders_ship_to_their_customers_address_whatever_the_order_of_generation() -> None:
    spec = SIZES["tiny"]
    orders_first = generate._Generator(spec)
    orders, _ = orders_first.orders_and_lines()
    shipped = next(orders)[0][5]  # order 1's address, generated before any customer row
    customers = next(generate._Generator(spec).customers())
    customer_of_order_1 = next(orders_first.orders_and_lines()[0])[0][1]
    assert shipped == customers[customer_of_order_1 - 1][4]


def test_earlier_backups_are_kept_too(tmp_path: Path) -> None:
    path = tmp_path / "shop-tiny.sqlite"
    path.write_text("first notes")
    build_dataset("tiny", url=sqlite_url(path), force=True, progress=False)
    build_dataset("tiny", url=sqlite_url(path), force=True, progress=False)  # a dataset is replaced, not kept
    path.write_text("second notes")
    build_dataset("tiny", url=sqlite_url(path), force=True, progress=False)
    backups = {p.name: p.read_text() for p in tmp_path.glob("*.bak*")}
    assert backups == {"shop-tiny.sqlite.bak": "first notes", "shop-tiny.sqlite.bak1": "second notes"}


@pytest.mark.postgres
def test_a_rebuild_keeps_a_postgres_database_that_is_not_a_dataset(capsys: pytest.CaptureFixture[str]) -> None:
    from sqlalchemy import text

    from helpers import servers

    for name in ("shop_mine", "shop_mine__bak"):
        servers.drop_database(name)
    servers.create_database("shop_mine")
    url = make_engine(servers.postgres_url("shop_mine")).url
    with engine_on(url) as engine, engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (body text)"))
        conn.execute(text("INSERT INTO notes VALUES ('mine')"))
    try:
        with pytest.raises(CourseError, match="is not a complete course dataset"):
            build_dataset("tiny", url=url, progress=False)  # without --force: refused, untouched
        assert build_dataset("tiny", url=url, force=True, progress=False).size == "tiny"
        assert capsys.readouterr().err == "Kept the database that was named shop_mine as shop_mine__bak.\n"
        with engine_on(url.set(database="shop_mine__bak")) as kept, kept.connect() as conn:
            assert conn.execute(text("SELECT body FROM notes")).scalar_one() == "mine"
        build_dataset("tiny", url=url, force=True, progress=False)  # a dataset is replaced, not kept
        assert not servers.database_exists("shop_mine__bak1")
    finally:
        for name in ("shop_mine", "shop_mine__bak"):
            servers.drop_database(name)
