"""helpers/topics/capstone.py: three apps endpoint by endpoint and under load, and the course-wide summary."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from helpers.course import Course
from helpers.data import copy_exists
from helpers.measure import results
from helpers.shop.models import Order
from helpers.topics import capstone
from helpers.topics.capstone import BASELINE, FINISHED, FLOOR, YOURS, CapstoneLab
from helpers.topics.loadtest import ALL, Answered, ShopRun, load_statistics
from tests.test_composition import learners_lab


# ---------------------------------------------------------------------- the course-wide summary, by roles
def stored(*runs: tuple[str, str, str, list[tuple[str, float, str]]]) -> pd.DataFrame:
    """Rows as the results store keeps them: (run_id, lesson, comparison, [(variant, median_s, role), ...])."""
    return pd.DataFrame(
        [
            {"run_id": run_id, "lesson": lesson, "comparison": comparison, "variant": variant, "median_s": median,
             "role": role}
            for run_id, lesson, comparison, variants in runs
            for variant, median, role in variants
        ]
    )  # fmt: skip


def test_the_summary_reads_the_declared_roles_never_the_order() -> None:
    frame = stored(
        # The best variant first and the naive one last: roles, not positions, say which is which.
        ("a", "03", "N+1", [("join", 0.002, "best"), ("joinedload", 0.010, ""), ("lazy", 0.060, "naive")]),
        ("b", "03", "N+1", [("join", 0.005, "best"), ("joinedload", 0.010, ""), ("lazy", 0.050, "naive")]),
        # A floor ladder declares no naive/best pair: not a race, left out (no "bare view → bare view 1.0×").
        ("c", "06", "cached hit", [("bare Flask view", 0.0001, "floor"), ("cached", 0.0002, "")]),
        ("d", "06", "report", [("uncached", 0.010, "naive"), ("cached", 0.020, "best")]),  # best was slower
        ("e", "10", "capstone: search", [("baseline", 0.020, "naive"), ("finished", 0.001, "best")]),  # its own
        ("f", "tests", "t", [("x", 0.020, "naive"), ("y", 0.001, "best")]),  # not a lesson
        ("g", "07", "pool", [("NullPool", 0.004, "naive"), ("yours", 0.001, "best")]),
        ("h", "07", "pool", [("NullPool", 0.004, "naive"), ("the course's", 0.002, "best")]),  # another pair
    )
    summary = capstone.course_summary(frame).set_index("comparison")
    assert list(summary.index) == ["N+1", "report", "pool"]
    n1 = summary.loc["N+1"]
    assert (n1["naive"], n1["best"], n1["speedup"], n1["runs stored"]) == ("lazy", "join", 10.0, 2)
    assert n1["speedup min–max"] == "10.0–30.0×"
    assert summary.loc["report", "speedup"] == 0.5  # shown as measured: the declared best was slower
    pool = summary.loc["pool"]
    assert (pool["best"], pool["speedup"], pool["runs stored"]) == ("the course's", 2.0, 1)  # its own pair only
    figure = capstone.summary_chart(summary.reset_index(), title="every comparison")
    assert [label.get_text() for label in figure.axes[0].get_yticklabels()] == [
        "03 · N+1",
        "06 · report",
        "07 · pool",
    ]


def test_predictions_are_shown_beside_what_was_measured() -> None:
    frame = pd.DataFrame(
        {
            "lesson": ["02", "03"],
            "comparison": ["projection", "N+1"],
            "naive": ["whole entities", "lazy"],
            "best": ["yours", "yours"],
            "predicted_speedup": [5.0, None],
            "measured_speedup": [10.0, 40.0],
            "predicted_statements": [None, 1],
            "measured_statements": [None, 1],
            "measured_at": pd.to_datetime(["2026-12-01T10:00:00", "2026-12-02T11:00:00"]),
        }
    )
    table = capstone.predictions_table(frame)
    assert table.loc[0, "naive → best"] == "whole entities → yours"
    assert table.loc[0, "measured ÷ predicted"] == 2.0 and pd.isna(table.loc[1, "measured ÷ predicted"])
    assert list(table["when"]) == ["2026-12-01 10:00", "2026-12-02 11:00"]


# ---------------------------------------------------------------------- runs and where their time went
def run(app: str, requests: dict[str, list[tuple[float, float, float, int]]], users: int | None = 16) -> ShopRun:
    """A run of `app` whose answered requests are {endpoint: [(latency ms, app ms, database ms, statements)]}."""
    answered = tuple(
        Answered(name, 0.01 * i, ms, True, n, db, inside)
        for name, heard in requests.items()
        for i, (ms, inside, db, n) in enumerate(heard)
    )
    return ShopRun(app, users, None if users else 50.0, 1.0, answered, 0.002, 0, users or 20, "locust ...")


def profile(report: float, search: float) -> list[ShopRun]:
    """Three runs in which the report's time goes to its statements and the search's to its Python."""
    return [
        run(YOURS, {"sales report": [(report + k, report - 10, report - 12, 2)] * 10,
                    "search": [(search + k, search - 10, 1.0, 2)] * 10})
        for k in (-1.0, 0.0, 1.0)
    ]  # fmt: skip


def test_the_slowest_endpoint_is_the_longest_mean_latency_and_its_cause_its_largest_layer() -> None:
    runs = profile(report=40.0, search=20.0)
    truth = capstone.slowest(runs)
    assert (truth.endpoint, truth.tied) == ("sales report", ("sales report",))
    assert truth.causes == {"sales report": ("database",)}
    where = truth.layers.loc["sales report"]
    assert where["latency_ms"] == pytest.approx(40.0) and where["waiting_ms"] == pytest.approx(10.0)
    assert (where["latency_ms_min"], where["latency_ms_max"]) == (39.0, 41.0)
    close = capstone.slowest(profile(report=30.0, search=29.5))  # runs overlapping: either is the slowest
    assert close.tied == ("sales report", "search") and close.causes["search"] == ("python",)
    figure = capstone.layer_chart(truth.layers, title="t")
    assert [t.get_text() for t in figure.axes[0].get_legend().get_texts()] == ["waiting", "python", "database"]


def test_many_statements_make_the_cause_statements() -> None:
    heavy = [run(YOURS, {"customer page": [(50.0, 45.0, 40.0, 41)] * 5, "search": [(5.0, 4.0, 1.0, 2)] * 5})]
    assert capstone.slowest(heavy).causes == {"customer page": ("statements",)}


def test_statistics_per_endpoint_keep_the_spread_over_runs() -> None:
    runs = [run(YOURS, {"search": [(float(ms), 1.0, 0.5, 2) for ms in range(1, 101)]}) for _ in range(2)]
    runs.append(run(YOURS, {"search": [(float(ms) * 2, 1.0, 0.5, 2) for ms in range(1, 101)]}))
    stats = load_statistics(runs)
    row = stats.loc[(YOURS, "16 users", "search")]
    assert (row["runs"], row["requests"], row["throughput_rps"]) == (3, 100, 100.0)
    assert row["p95_ms"] == pytest.approx(95.05) and row["p95_ms_max"] == pytest.approx(190.1)
    assert stats.loc[(YOURS, "16 users", ALL), "failures"] == 0
    chart = capstone.percentile_chart(stats, load="16 users", title="16")
    assert [t.get_text() for t in chart.axes[0].get_yticklabels()] == ["search", ALL]


def test_a_closed_loop_beside_an_open_one() -> None:
    closed = [run(YOURS, {"search": [(5.0, 4.0, 1.0, 2)] * 40}, users=4)]
    arrivals = run(YOURS, {"search": [(5.0, 4.0, 1.0, 2)] * 30 + [(400.0, 4.0, 1.0, 2)] * 10}, users=None)
    table = capstone.loop_table(closed, arrivals)
    assert list(table.index) == ["4 users, closed loop", "50/s arriving, open loop"]
    assert table["most in flight"].tolist() == [4, 20] and table.iloc[1]["p99_ms"] >= 80 * table.iloc[0]["p99_ms"]


def test_a_load_prediction_is_kept_as_a_speedup_over_the_lower_load(course: Course) -> None:
    low = [run(YOURS, {"search": [(5.0, 4.0, 1.0, 2)] * 100}, users=4)]  # 100 requests a second
    high = [run(YOURS, {"search": [(5.0, 4.0, 1.0, 2)] * 150}, users=16)]
    guess = capstone.LoadPrediction("?", users=16)
    guess.throughput.value, guess.p95.value = "200", "oops"
    assert (guess.throughput_rps, guess.p95_ms) == (200.0, None)  # a box left wrong is no prediction
    comparison = capstone.store_load_prediction(course, low, high, guess)
    assert comparison.roles == {"yours, 4 users": "naive", "yours, 16 users": "best"}
    outcome = comparison.outcome
    assert outcome is not None and (outcome.predicted_speedup, outcome.measured_speedup) == (2.0, 1.5)
    kept = results.predictions("10")
    assert kept[kept["comparison"] == comparison.title]["predicted_speedup"].tolist()[-1] == 2.0
    stats = load_statistics([*low, *high])
    table = capstone.prediction_table(guess, stats, app=YOURS)
    assert table.loc["requests per second", "measured ÷ predicted"] == 0.75
    assert pd.isna(table.loc["p95 of all requests (ms)", "you predicted"])


# ---------------------------------------------------------------------- the three apps, for real
@pytest.fixture
def lab(course: Course, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CapstoneLab]:
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    with learners_lab(course, tmp_path) as made:
        yield made
    assert not any(copy_exists(copy.url) for copy in made.copies.values())  # removed on close


def _newest(copy: Course) -> object:
    with copy.engine.connect() as conn:
        return conn.scalar(select(func.max(Order.created_at)))


def test_each_app_gets_a_copy_with_an_order_placed_today(course: Course, lab: CapstoneLab) -> None:
    """The report's window ends at the newest order: after the first order placed today, the capstone's `days`
    still covers the dataset's last days, as the load will find it."""
    newest = {name: _newest(copy) for name, copy in lab.copies.items()}
    assert len(set(newest.values())) == 1 and _newest(course) != newest[YOURS]
    days = capstone.report_window_days(course)
    assert lab.days == days and f"/reports/sales?days={days}" in [r.path for r in lab.requests]
    client = lab.apps[BASELINE].test_client()
    report = client.get(f"/reports/sales?days={days}").get_json()
    assert sum(c["units"] for c in report["categories"]) > 3  # the dataset's orders, not only the one placed today


def test_statements_are_those_of_the_timed_calls_and_a_cache_hit_has_its_miss(lab: CapstoneLab) -> None:
    race = capstone.race_endpoints(lab.course, lab.apps, lab.requests, repeat=3)
    frame = race.frame
    report = frame.xs("sales report", level="endpoint")
    assert report.loc[(FINISHED, "cache hit"), "statements"] == 0  # the timed calls, not the warm-up's miss
    assert report.loc[(FINISHED, "cache miss"), "statements"] == 2
    assert (
        report.loc[(YOURS, "cache hit"), "statements"] == 0
        and report.loc[(YOURS, "cache miss"), "statements"] == 2
    )
    assert report.loc[(BASELINE, "every call"), "statements"] > 2
    assert frame.loc[("place an order", YOURS, "every call"), "statements"] == 4
    props = capstone.properties({FINISHED: lab.apps[FINISHED], YOURS: lab.apps[YOURS]}, lab.requests)
    assert props.loc[("sales report", YOURS), "POST /orders drops it"] == "yes"
    assert props.loc[("sales report", FINISHED), "POST /orders drops it"] == "yes"
    assert not props.loc[("search", YOURS), "cached"]
    loaded, said = capstone.under_load(race)
    assert loaded == [BASELINE, FINISHED, YOURS] and said == ""  # tiny: every app is quick enough
    figure = capstone.endpoint_chart(race, title="t")
    assert len(figure.axes[0].get_yticklabels()) == len(lab.requests)


def test_the_apps_under_load_beside_the_floor(lab: CapstoneLab) -> None:
    pools = lab.serve([FINISHED, YOURS])
    assert pools.loc[FINISHED, "pool_size"] == 8 and pools.loc[YOURS, "pool_size"] == 6
    runs = lab.load(4, apps=[YOURS, FLOOR], runs=1, seconds=0.5, longest_s=2, each=5)
    assert [r.app for r in runs] == [YOURS, FLOOR] and all(r.failures == 0 for r in runs)
    mine = runs[0]
    assert {a.name for a in mine.answered} == {r.name for r in lab.requests}
    assert all(a.statements is not None for a in mine.answered)  # the app's headers, kept
    assert all(a.statements is None for a in runs[1].answered)  # the floor has no database
    assert mine.command.startswith("locust -f locustfile.py --headless") and "Shopper --users 4" in mine.command
    assert mine.ramp_s < 0.5 and 0.5 <= mine.window_s <= 2.5
    arrivals = lab.open_loop(YOURS, rate_rps=50, seconds=1)
    assert arrivals.users is None and 20 <= len(arrivals.answered) <= 100 and arrivals.failures == 0
    assert lab.runs_of(users=4, app=YOURS) == [mine] and lab.runs_of(open_loop=True) == [arrivals]
