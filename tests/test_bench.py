"""`make bench` writes the promised CSV; its comparisons check that variants agree."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from helpers.bench import COLUMNS, REGISTRY, main


def test_every_benchmark_has_a_label_and_two_variants_or_more() -> None:
    names = [b.name for b in REGISTRY]
    assert len(names) == len(set(names)) >= 5
    assert all(b.doc for b in REGISTRY)


def test_bench_writes_the_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "latest.csv"
    code = main(
        ["--size", "tiny", "--only", "projection,n_plus_one,connection_cost", "--repeat", "3", "--out", str(out)]
    )
    assert code == 0
    with out.open() as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        rows = list(reader)
    assert [r["benchmark"] for r in rows] == ["projection"] * 2 + ["n_plus_one"] * 3 + ["connection_cost"] * 2
    assert all(r["size"] == "tiny" and r["backend"] == "sqlite" and r["runs"] == "3" for r in rows)
    assert float(rows[0]["ratio_vs_baseline"]) == 1.0
    assert "Written to" in capsys.readouterr().out


def test_unknown_benchmark_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--size", "tiny", "--only", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Unknown benchmark nope") and err.count("\n") == 1
