"""What a learner saved under the old lesson numbers follows the new ones, once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from helpers.renumbering import NUMBERING, renumber_saved_work


def _history(path: Path, rows: list[tuple[str, str]]) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE measurements (id INTEGER PRIMARY KEY, lesson TEXT, comparison TEXT)")
        conn.executemany("INSERT INTO measurements (lesson, comparison) VALUES (?, ?)", rows)


def test_saved_endpoints_and_history_move_to_the_new_numbers_once(tmp_path: Path) -> None:
    my_app = tmp_path / "my_app"
    my_app.mkdir()
    old = ["02_customer_page.py", "03_order_list.py", "04_order_list.py", "04_search.py", "05_sales_report.py",
           "06_customer_page.py", "06_engine_options.json", "07_place_order.py", "08_sales_report.py"]  # fmt: skip
    for name in old:
        (my_app / name).write_text(name)
    results = tmp_path / "results.sqlite"
    _history(results, [("04", "50 lookups by customer"), ("04", "Paging: OFFSET against keyset"), ("05", "cache"),
                       ("09", "capstone"), ("02", "projection")])  # fmt: skip
    moved = renumber_saved_work(tmp_path, results)
    assert sorted(p.name for p in my_app.glob("[0-9]*")) == sorted(
        ["02_customer_page.py", "03_order_list.py", "05_order_list.py", "05_search.py", "06_sales_report.py",
         "07_customer_page.py", "07_engine_options.json", "08_place_order.py", "09_sales_report.py"]
    )  # fmt: skip
    assert (my_app / "09_sales_report.py").read_text() == "08_sales_report.py"  # the same file, renamed
    with sqlite3.connect(results) as conn:
        lessons = dict(conn.execute("SELECT comparison, lesson FROM measurements"))
    assert lessons == {"50 lookups by customer": "04", "Paging: OFFSET against keyset": "05", "cache": "06",
                       "capstone": "10", "projection": "02"}  # fmt: skip
    assert "04_search.py → 05_search.py" in moved
    assert (my_app / ".lesson-numbering").read_text().strip() == NUMBERING
    (my_app / "05_new_answer.py").write_text("written after the move")  # a new lesson 05 answer stays lesson 05
    with sqlite3.connect(results) as conn:
        conn.execute("INSERT INTO measurements (lesson, comparison) VALUES ('05', 'Paging, measured anew')")
    assert renumber_saved_work(tmp_path, results) == []
    assert (my_app / "05_new_answer.py").exists()
    with sqlite3.connect(results) as conn:
        assert conn.execute("SELECT lesson FROM measurements WHERE comparison LIKE '%anew'").fetchone() == ("05",)


def test_a_fresh_project_and_a_store_made_by_this_version_are_left_alone(tmp_path: Path) -> None:
    from helpers.measure import results
    from helpers.measure.harness import Comparison, Measurement

    store = tmp_path / "results.sqlite"
    results.store(Comparison("05", "sqlite", "tiny", [Measurement("a", [0.1], 1, 1)], "keyset"), path=store)
    assert renumber_saved_work(tmp_path, store) == []
    assert (tmp_path / "my_app" / ".lesson-numbering").exists()
    assert results.history("05", path=store)["lesson"].tolist() == ["05"]  # a new store's 05 is lesson 05
