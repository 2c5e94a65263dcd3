"""`make bench` writes the promised CSV; every race checks that its variants agree and holds them to a floor."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from helpers.bench import COLUMNS, REGISTRY, instructions, main
from helpers.bench.runner import load_table, size_table, stability, write_csv
from helpers.topics.floors import RUNGS


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
    ] * 6 + [("projection", "postgresql")] * 4 + [("pooled_request", "postgresql")] * 6
    for row in rows:
        # 3 rounds; a variant faster than the slowest takes several samples a round
        assert row["size"] == "tiny" and int(row["runs"]) % 3 == 0
    for race in (rows[0:4], rows[4:10], rows[10:14], rows[14:20]):
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


def test_stability_counts_the_ratios_the_table_reports() -> None:
    def run(x: float, y: float, floor: float) -> list[dict[str, object]]:
        return [
            {"benchmark": "b", "backend": "sqlite", "variant": v, "median_s": s, "floor": "f"}
            for v, s in (("x", x), ("y", y), ("f", floor))
        ]

    # The machine 50% slower for every variant: every median moved, no ratio did.
    report = stability(run(1.0, 2.0, 0.5), run(1.5, 3.0, 0.75))
    assert "50%" in report and report.endswith(
        "0 of 3 medians and 4 of 4 ratios (× baseline and × floor) moved by 10% or less between the two runs: "
        "100 of every 100 ratios."
    )  # ratios: y and f against x; x and y against the floor (x against itself, f against itself left out)
    # Only the optimized variant slowed down: its × baseline and its × floor moved.
    report = stability(run(1.0, 2.0, 0.5), run(1.0, 3.0, 0.5))
    assert report.endswith("2 of 4 ratios (× baseline and × floor) moved by 10% or less between the two runs: "
                           "50 of every 100 ratios.")  # fmt: skip


def test_the_load_table_puts_the_app_beside_its_floor() -> None:
    def row(server: str, rps: float) -> dict[str, object]:
        figures = {"throughput_rps": rps, "p50_ms": 2.0, "p95_ms": 5.0, "p99_ms": 9.0}
        spread = {f"{k}{end}": v for k, v in figures.items() for end in ("_min", "_max")}
        return {
            "backend": "sqlite",
            "size": "tiny",
            "server": server,
            "endpoint": "/x",
            **figures,
            **spread,
            "runs": 3,
        }

    shown = load_table([row("app", 300.0), row("floor", 1200.0)])
    assert "300 (300–300)" in shown and "1200 (1200–1200)" in shown and "p99 ms" in shown
    assert shown.rstrip().endswith("0.25")  # the app's throughput ÷ the floor's


def test_ratios_are_shown_side_by_side_for_every_size_measured(tmp_path: Path) -> None:
    def rows(size: str, ratio: float) -> list[dict[str, object]]:
        return [
            {"benchmark": "b", "variant": "naive", "backend": "sqlite", "size": size, "median_s": 2.0,
             "spread_s": 0.0, "runs": 3, "ratio_vs_baseline": 1.0, "ratio_vs_floor": 2 * ratio},
            {"benchmark": "b", "variant": "fast", "backend": "sqlite", "size": size, "median_s": 1.0,
             "spread_s": 0.0, "runs": 3, "ratio_vs_baseline": 2.0, "ratio_vs_floor": ratio},
        ]  # fmt: skip

    write_csv(rows("small", 1.5), tmp_path / "small.csv")
    assert size_table(tmp_path) is None  # one size: nothing to compare
    write_csv(rows("medium", 3.0), tmp_path / "medium.csv")
    shown = size_table(tmp_path) or ""
    assert "× floor small" in shown and "× floor medium" in shown
    assert shown.index("× floor small") < shown.index("× floor medium")
    fast = next(line for line in shown.splitlines() if "fast" in line)
    assert fast.split()[-4:] == ["2.00", "2.00", "1.50", "3.00"]


def test_each_endpoint_race_holds_the_finished_app_to_its_raw_driver_floor(tmp_path: Path) -> None:
    out = tmp_path / "latest.csv"
    argv = [
        "--size",
        "tiny",
        "--backends",
        "sqlite",
        "--only",
        "endpoint_search",
        "--repeat",
        "2",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    with out.open() as f:
        rows = {r["variant"]: r for r in csv.DictReader(f)}
    assert list(rows) == ["baseline app", *RUNGS]
    assert float(rows[RUNGS[4]]["ratio_vs_floor"]) == 1.0
    assert float(rows["finished app"]["ratio_vs_floor"]) == pytest.approx(
        float(rows["finished app"]["median_s"]) / float(rows[RUNGS[4]]["median_s"])
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


def test_instructions_per_call_are_the_difference_of_two_dumps_over_n(tmp_path: Path) -> None:
    for i, (label, total) in enumerate([("b.0-start", 999), ("b.0-n", 1_300), ("b.0-2n", 2_300), ("b.1-n", 700),
                                        ("b.1-2n", 1_200)]):  # fmt: skip
        (tmp_path / f"cg.1.{i}").write_text(f"desc: Trigger: dump {label}\nsummary: {total}\ntotals: {total}\n")
    calls = [
        {"benchmark": "b", "backend": "sqlite", "variant": "app", "floor": "raw", "calls": 10, "key": "b.0"},
        {"benchmark": "b", "backend": "sqlite", "variant": "raw", "floor": "raw", "calls": 10, "key": "b.1"},
        {"benchmark": "b", "backend": "sqlite", "variant": "naive", "floor": "raw", "calls": 0, "key": "b.2"},
    ]
    records = instructions._per_call(calls, instructions._dumps(tmp_path))
    # 20 calls minus 10 calls, over 10: the dumps' own cost cancels out
    assert [r["instructions"] for r in records] == [100.0, 50.0, None]
    assert [r["ratio_vs_floor"] for r in records] == [2.0, 1.0, None]
    shown = instructions.table(records)
    assert "left out" in shown and "2.00" in shown
