"""`make bench` writes the promised CSV; every race checks that its variants agree and holds them to a floor."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from helpers.bench import COLUMNS, REGISTRY, main
from helpers.bench.runner import stability


def test_every_benchmark_has_a_label_and_a_lesson() -> None:
    names = [b.name for b in REGISTRY]
    assert len(names) == len(set(names)) >= 10
    assert all(b.doc and b.lesson for b in REGISTRY)
    assert [b.lesson for b in REGISTRY] == sorted(b.lesson for b in REGISTRY)


def test_bench_writes_the_csv_with_floors_on_both_backends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "latest.csv"
    code = main(["--size", "tiny", "--only", "projection,pooled_request", "--repeat", "3", "--out", str(out)])
    assert code == 0
    with out.open() as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        rows = list(reader)
    assert [(r["benchmark"], r["backend"]) for r in rows] == [("projection", "sqlite")] * 4 + [
        ("pooled_request", "sqlite")
    ] * 3 + [("projection", "postgresql")] * 4 + [("pooled_request", "postgresql")] * 3
    for row in rows:
        assert row["size"] == "tiny" and row["runs"] == "3"
    for race in (rows[0:4], rows[4:7], rows[7:11], rows[11:14]):
        assert float(race[0]["ratio_vs_baseline"]) == 1.0
        floor = next(r for r in race if "(floor)" in r["variant"])
        assert float(floor["ratio_vs_floor"]) == 1.0
        # ratio_vs_floor is variant ÷ floor, ratio_vs_baseline naive ÷ variant: the two agree with the medians
        for r in race:
            assert float(r["ratio_vs_floor"]) == pytest.approx(float(r["median_s"]) / float(floor["median_s"]))
            assert float(r["ratio_vs_baseline"]) == pytest.approx(
                float(race[0]["median_s"]) / float(r["median_s"])
            )
    printed = capsys.readouterr().out
    assert "≤ 2× floor" in printed and "Written to" in printed


def test_one_backend_can_be_chosen(tmp_path: Path) -> None:
    out = tmp_path / "latest.csv"
    assert main(["--size", "tiny", "--backends", "sqlite", "--only", "filter_in_sql", "--out", str(out)]) == 0
    with out.open() as f:
        assert {r["backend"] for r in csv.DictReader(f)} == {"sqlite"}


def test_stability_reports_how_far_each_median_and_ratio_moved() -> None:
    def run(x: float, y: float) -> list[dict[str, object]]:
        return [
            {"benchmark": "b", "backend": "sqlite", "variant": v, "median_s": s} for v, s in (("x", x), ("y", y))
        ]

    report = stability(run(1.0, 2.0), run(1.5, 3.0))  # the machine 50% slower: both medians, no ratio moved
    assert "50%" in report and report.endswith(
        "0 of 2 medians and 2 of 2 ratios within a race (variant ÷ the race's first variant) moved by 10% or less "
        "between the two runs."
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--only", "nope"], "error: Unknown benchmark nope"),
        (["--backends", "mysql"], "error: Unknown backend mysql"),
        (["--size", "huge"], "error: Unknown COURSE_SIZE 'huge'"),
    ],
)
def test_bad_input_is_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert main(["--size", "tiny", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
