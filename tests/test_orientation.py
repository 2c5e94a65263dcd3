"""Lesson 00's instruments (helpers.topics.orientation), and the harness and chart pieces its "why medians" and
"cold first call" demos stand on: merged runs, a histogram of runs, the cold-call sentence."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from helpers.config import SIZES
from helpers.course import Course
from helpers.measure.harness import Measurement, measure, merge_runs
from helpers.measure.plots import runs_histogram
from helpers.topics.orientation import cold_call_sentence, environment_table, median_and_mean, sizes_table


def test_environment_table_lists_versions_and_settings(course: Course) -> None:
    table = environment_table(course)
    assert list(table.index) == [
        "Python", "SQLAlchemy", "Flask", "Flask-Caching", "pandas", "SQLite library", "database in use",
        "dataset size", "cache backend", "database URL",
    ]  # fmt: skip
    assert table.loc["database in use", "value"].startswith(course.backend)
    assert table.loc["dataset size", "value"] == course.size
    assert table.loc["database URL", "value"] == course.engine.url.render_as_string(hide_password=True)


def test_sizes_table_has_a_row_per_size() -> None:
    table = sizes_table()
    assert list(table.index) == list(SIZES)
    assert (table["customers"] == [s.customers for s in SIZES.values()]).all()


def test_merged_first_calls_read_like_one_measurement(course: Course) -> None:
    firsts = [measure(lambda: 1, engine=course.engine, repeat=1, warmup=0, label="one") for _ in range(3)]
    merged = merge_runs("cold", firsts)
    assert merged.variant == "cold" and merged.runs == 3
    assert merged.times_s == [m.times_s[0] for m in firsts]
    assert (merged.statements, merged.rows) == (firsts[0].statements, firsts[0].rows) == (0, None)


def test_runs_histogram_marks_the_median_and_the_mean() -> None:
    fig = runs_histogram(Measurement("warm", [0.001, 0.002, 0.002, 0.009], 1, None))
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["median", "mean"]
    assert [line.get_xdata()[0] for line in ax.get_lines()] == pytest.approx([2.0, 3.5])


def ms(*medians: float, statements: int = 1) -> list[Measurement]:
    return [Measurement(name, [m / 1000], statements, None) for name, m in zip("abc", medians, strict=True)]


@pytest.mark.parametrize(
    ("medians", "larger"),
    [
        ((9.0, 2.0, 1.0), "most of the cold cost was opening the connection."),
        ((4.0, 3.5, 1.0), "most of the cold cost was the first statement on a new connection."),
        ((5.0, 3.0, 1.0), "opening the connection and its first statement cost about as much as each other."),
    ],
)
def test_cold_call_sentence_names_the_larger_cost(medians: tuple[float, float, float], larger: str) -> None:
    cold, connected, warm = ms(*medians)
    sentence = cold_call_sentence(cold, connected, warm, "sqlite")
    assert sentence.endswith(f"\nOn sqlite, {larger}")
    assert f"{medians[0]:.1f}× the warm median" in sentence and "All three sent 1 statement:" in sentence


def test_median_and_mean_says_which_way_the_slow_runs_pulled() -> None:
    skewed = Measurement("warm", [0.001, 0.002, 0.002, 0.009], 1, None)
    assert median_and_mean(skewed) == (
        "Over 4 runs: median 2.00 ms, mean 3.50 ms. The slowest runs pulled the mean up, 1.75× the median."
    )
    even = Measurement("warm", [0.001, 0.002, 0.003], 1, None)
    assert median_and_mean(even).endswith(
        "no slow runs pulled the mean above the median; rerun the cell to see how often."
    )


NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
TIMING = re.compile(r"\d[\d.,]*\s*(ms|s|seconds?|minutes?|milliseconds?|µs)\b|a few (milli)?seconds|in seconds")


def test_00_opens_with_the_blogs_claims() -> None:
    cells = json.loads((NOTEBOOKS / "00_start_here.ipynb").read_text())["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    assert "course = setup(" in code[0] and code[1].startswith("claims_table(backend=course.backend")


@pytest.mark.parametrize("name", ["00_start_here", "01_baseline_app"])
def test_the_first_lessons_type_no_timings_and_end_with_the_instructors_notes(name: str) -> None:
    """Every number about speed is computed in a cell; asides for instructors sit in their own closing section."""
    cells = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())["cells"]
    prose = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    learners, _, instructors = prose.partition("\n## For instructors\n")
    assert instructors and "\n## " not in instructors, "the notebook ends with its '## For instructors' section"
    assert not TIMING.search(prose), TIMING.search(prose)
    assert "live demo" not in learners.lower() and "instructor" not in learners.lower()
