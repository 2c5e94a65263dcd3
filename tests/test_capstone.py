"""helpers/topics/capstone.py: the course-wide summary of the results store, and the capstone's charts."""

from __future__ import annotations

import pandas as pd

from helpers.measure.harness import Comparison, Measurement
from helpers.topics.capstone import course_summary, endpoint_chart, summary_chart


def stored(*runs: tuple[str, str, str, list[tuple[str, float]]]) -> pd.DataFrame:
    """Rows as the results store keeps them: (run_id, lesson, comparison, [(variant, median_s), ...]) per run."""
    return pd.DataFrame(
        [
            {"run_id": run_id, "lesson": lesson, "comparison": comparison, "variant": variant, "median_s": median}
            for run_id, lesson, comparison, variants in runs
            for variant, median in variants
        ]
    )


def test_the_summary_takes_the_latest_run_and_the_spread_over_reruns() -> None:
    frame = stored(
        ("a", "03", "N+1", [("lazy", 0.060), ("joinedload", 0.010), ("join", 0.002)]),
        ("b", "03", "N+1", [("lazy", 0.050), ("joinedload", 0.010), ("join", 0.005)]),
        ("c", "06", "cache", [("uncached", 0.010)]),  # one variant: not a race
        ("d", "10", "capstone: search", [("baseline", 0.020), ("finished", 0.001)]),  # the capstone's own
        ("e", "tests", "t", [("x", 0.020), ("y", 0.001)]),  # not a lesson
    )
    summary = course_summary(frame)
    assert summary.to_dict("records") == [
        {
            "lesson": "03",
            "comparison": "N+1",
            "naive": "lazy",
            "naive_ms": 50.0,
            "best": "join",
            "best_ms": 5.0,
            "speedup": 10.0,
            "runs stored": 2,
            "speedup min–max": "10.0–30.0×",
        }
    ]
    figure = summary_chart(summary, title="every comparison")
    assert figure.axes[0].get_title() == "every comparison"
    assert [label.get_text() for label in figure.axes[0].get_yticklabels()] == ["03 · N+1"]


def test_the_endpoint_chart_has_a_bar_per_app_and_endpoint() -> None:
    def race(title: str, medians: dict[str, float]) -> Comparison:
        return Comparison(
            "10", "sqlite", "tiny", [Measurement(app, [median], 1, 1) for app, median in medians.items()], title
        )

    races = {
        "customer page": race("customer page", {"baseline": 0.004, "finished": 0.001}),
        "search": race("search", {"baseline": 0.020, "finished": 0.002}),
    }
    figure = endpoint_chart(races, ["baseline", "finished"], title="t")
    ax = figure.axes[0]
    assert [label.get_text() for label in ax.get_yticklabels()] == ["customer page", "search"]
    assert sorted(round(bar.get_width(), 3) for bar in ax.patches) == [1.0, 2.0, 4.0, 20.0]
