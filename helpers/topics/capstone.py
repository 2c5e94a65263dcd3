"""The capstone's bookkeeping: its endpoint race as a chart, and the course-wide summary of the results store.

* `endpoint_chart(races, apps, title)` draws each app's median per endpoint, side by side (log scale);
* `course_summary(stored)` reduces every stored comparison to its latest run's naive and fastest variants, with
  how the speed-up varied across reruns; `summary_chart(summary, title)` draws the speed-ups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from ..measure.harness import Comparison
from ..measure.plots import COLORS

__all__ = ["course_summary", "endpoint_chart", "summary_chart"]


def endpoint_chart(races: Mapping[str, Comparison], apps: Sequence[str], *, title: str) -> Any:
    """One group of bars per endpoint (a race), one bar per app: its median time per request, log scale."""
    fig, ax = plt.subplots(figsize=(8, 3.6), layout="constrained")
    endpoints = list(races)
    width = 0.8 / len(apps)
    for i, name in enumerate(apps):
        medians = [races[endpoint][name].median_s * 1000 for endpoint in endpoints]
        ax.barh([y + i * width for y in range(len(endpoints))], medians, height=width, label=name, color=COLORS[i])
    ax.set_yticks([y + width * (len(apps) - 1) / 2 for y in range(len(endpoints))], endpoints)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("median time per request (ms, log scale)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return fig


def _speedups(part: pd.DataFrame) -> list[float]:
    """Per stored run of one comparison: its first (naive) variant's median over its fastest."""
    return [
        run["median_s"].iloc[0] / run["median_s"].min()
        for _, run in part.groupby("run_id", sort=False)
        if len(run) > 1
    ]


def course_summary(stored: pd.DataFrame) -> pd.DataFrame:
    """Every lesson's stored comparison (not the capstone's own): the latest run's naive and best variants.

    `stored` is the results store's history at one backend and size. A comparison needs two variants in its
    latest run and at least one run with two variants; "speedup" is the latest run's naive ÷ best median.
    """
    summary = []
    for (lesson, comparison), part in stored.groupby(["lesson", "comparison"], sort=True):
        if not str(lesson).isdigit() or lesson == "10":
            continue
        speedups = _speedups(part)
        latest = part[part["run_id"] == part["run_id"].iloc[-1]]
        if len(latest) < 2 or not speedups:
            continue
        naive, best = latest.iloc[0], latest.loc[latest["median_s"].idxmin()]
        summary.append(
            {
                "lesson": lesson,
                "comparison": comparison,
                "naive": naive["variant"],
                "naive_ms": naive["median_s"] * 1000,
                "best": best["variant"],
                "best_ms": best["median_s"] * 1000,
                "speedup": speedups[-1],
                "runs stored": len(speedups),
                "speedup min–max": f"{min(speedups):.1f}–{max(speedups):.1f}×",
            }
        )
    return pd.DataFrame(summary)


def summary_chart(summary: pd.DataFrame, *, title: str) -> Any:
    """The speed-up of every comparison that has one (naive ÷ best), coloured by lesson, log scale."""
    races_only = summary[summary["speedup"] > 1.0]
    fig, ax = plt.subplots(figsize=(8, 0.6 + 0.22 * len(races_only)), layout="constrained")
    labels = [f"{row.lesson} · {row.comparison}"[:60] for row in races_only.itertuples()]
    colors = [COLORS[int(lesson) % len(COLORS)] for lesson in races_only["lesson"]]
    ax.barh(labels, races_only["speedup"], color=colors)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("naive ÷ best median (log scale)")
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="y", labelsize=7)
    return fig
