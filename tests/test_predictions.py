"""Predict, then measure: a prediction is stored with its run, shown beside the measurement, never required."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from helpers.errors import CourseError
from helpers.measure import results
from helpers.measure.harness import Comparison, compare
from helpers.measure.predictions import Prediction
from helpers.measure.widgets import PredictionBox


def _slow() -> list[int]:
    time.sleep(0.004)
    return [1, 2]


def _fast() -> list[int]:
    return [1, 2]


def _race(tmp_path: Path, **kwargs: Any) -> Comparison:
    return compare(
        {"naive": _slow, "mine": _fast},
        lesson="xx",
        backend="sqlite",
        size="tiny",
        repeat=3,
        **kwargs,
    )


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "results.sqlite"
    monkeypatch.setenv("COURSE_RESULTS_PATH", str(path))
    return path


def test_a_prediction_is_stored_with_its_run_beside_what_was_measured(store: Path, tmp_path: Path) -> None:
    race = _race(tmp_path, naive="naive", best="mine", prediction=Prediction(speedup=3, statements=0))
    outcome = race.outcome
    assert outcome.predicted_speedup == 3 and outcome.measured_speedup == pytest.approx(race.ratio("mine"))
    stored = results.predictions("xx")
    assert len(stored) == 1
    row = stored.iloc[0]
    assert (row["naive"], row["best"], row["predicted_speedup"]) == ("naive", "mine", 3.0)
    assert row["measured_speedup"] == pytest.approx(outcome.measured_speedup)
    assert row["statements_of"] == "mine" and row["predicted_statements"] == 0
    roles = results.history("xx").set_index("variant")["role"].to_dict()
    assert roles == {"naive": "naive", "mine": "best"}
    assert "you predicted 'mine' 3× faster than 'naive'" in outcome.sentence()


def test_no_prediction_is_never_an_error(store: Path, tmp_path: Path) -> None:
    for given in (None, Prediction(), PredictionBox("How much faster?", statements=True)):
        race = _race(tmp_path, naive="naive", best="mine", prediction=given)
        assert race.outcome is None
    assert results.predictions("xx").empty
    assert _race(tmp_path).outcome is None  # no roles, no prediction: a plain race


def test_the_boxes_read_what_a_learner_types() -> None:
    box = PredictionBox("How much faster, and how many statements?", statements=True, of="mine")
    for typed, expected in (("5", 5.0), ("5x", 5.0), (" 2.5× ", 2.5), ("", None), ("fast", None), ("-3", None)):
        assert box.speedup is not None
        box.speedup.value = typed
        assert box.prediction.speedup == expected, typed
    assert box.statements is not None
    box.statements.value = "1"
    assert box.prediction == Prediction(speedup=None, statements=1, of="mine")


def test_a_role_must_name_a_variant(tmp_path: Path, store: Path) -> None:
    with pytest.raises(CourseError, match="No variant called 'yours'"):
        _race(tmp_path, best="yours")


def test_a_race_is_the_evidence_for_a_claim_and_a_fact_is_recorded(store: Path, tmp_path: Path) -> None:
    from helpers.claims import CLAIMS, claims_table

    before = claims_table()
    assert before.loc["“Select only necessary columns”", "verdict"] == "run lesson 02"
    race = _race(tmp_path, naive="naive", best="mine", claim="columns")
    results.record_claim(
        "cache_key",
        lesson="06",
        backend="sqlite",
        size="tiny",
        holds=False,
        detail="customer 2 got customer 1's page",
    )
    table = claims_table(backend="sqlite", size="tiny")
    assert len(table) == len(CLAIMS)
    columns = table.loc["“Select only necessary columns”", "verdict"]
    assert columns.startswith("holds: 'mine' against 'naive'") and f"{race.ratio('mine'):.1f}× faster" in columns
    cache = table.loc[next(c.advice for c in CLAIMS if c.key == "cache_key"), "verdict"]
    assert cache == "does not hold: customer 2 got customer 1's page"
    assert claims_table(backend="postgresql")["verdict"].str.startswith("run lesson").all()
    with pytest.raises(CourseError, match="names its best variant"):
        _race(tmp_path, claim="columns")


def test_a_verdict_is_read_from_the_race_and_its_backend(store: Path) -> None:
    """A race whose best was not faster does not hold; a claim's note is added on the backend it is about."""
    from helpers.claims import CLAIMS, claims_table

    batching = next(c for c in CLAIMS if c.key == "batching")
    for backend, size, per_row, bulk in (("sqlite", "tiny", _slow, _fast), ("postgresql", "tiny", _slow, _fast),
                                         ("sqlite", "small", _fast, _slow)):  # fmt: skip
        compare(
            {"per row": per_row, "bulk": bulk},
            lesson="08", backend=backend, size=size, repeat=3, naive="per row", best="bulk", claim="batching",
        )  # fmt: skip

    def verdict(backend: str, size: str) -> str:
        return str(claims_table(backend=backend, size=size).loc[batching.advice, "verdict"])

    assert verdict("sqlite", "tiny").startswith("holds: 'bulk' against 'per row'")
    assert verdict("sqlite", "tiny").endswith(f"faster — {batching.note}")
    assert verdict("postgresql", "tiny").startswith("holds: ") and batching.note not in verdict(
        "postgresql", "tiny"
    )
    assert verdict("sqlite", "small").startswith("does not hold here: 'bulk' against 'per row'")


def test_claims_quote_the_blog_only_in_quotation_marks() -> None:
    """Every claim shows the blog's words in quotation marks or none at all: no straight quotes pretending."""
    from helpers.claims import CLAIMS

    for claim in CLAIMS:
        assert claim.advice.count("“") == claim.advice.count("”") <= 1, claim.key
        assert '"' not in claim.advice, claim.key
