"""Every chart the course draws: bars with their spread, time against N, history across reruns, and the charts
of single lessons (a pool's timeline, load against concurrency, cache hit ratios, a profile split by layer)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import matplotlib
import pandas as pd
from IPython.display import display

from .units import format_ms, in_ms

if TYPE_CHECKING:
    from .harness import Comparison, Measurement

# A headless default for scripts and tests; Jupyter's inline backend still wins in a kernel.
if matplotlib.get_backend().lower() not in ("module://matplotlib_inline.backend_inline", "inline"):
    matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.ticker import PercentFormatter

__all__ = [
    "COLORS",
    "PoolTimeline",
    "bar_chart",
    "bars_side_by_side",
    "concurrency_chart",
    "history_chart",
    "hit_ratio_chart",
    "runs_histogram",
    "scaling_chart",
    "show_figure",
    "split_chart",
    "timeline_chart",
]


class PoolTimeline(Protocol):
    """What `timeline_chart` draws: a pool's timeline under load (`topics.pooling.PoolWatch` is one)."""

    @property
    def timeline(self) -> pd.DataFrame: ...

    @property
    def requests(self) -> pd.DataFrame: ...

    @property
    def settings(self) -> dict[str, Any]: ...


COLORS = ("#b04a3a", "#3a6fb0", "#4a9a5a", "#8a5ab0", "#c08a2a", "#2a9aa0", "#707070")


def _new_axes(ax: Any, width: float = 7.5, height: float = 3.2) -> tuple[Any, Any]:
    if ax is not None:
        return ax.figure, ax
    fig, new_ax = plt.subplots(figsize=(width, height), layout="constrained")
    return fig, new_ax


def bar_chart(comparison: Comparison, *, log: bool | None = None, ax: Any = None) -> Any:
    """Horizontal bars of median time, whiskers spanning the middle half of the runs."""

    frame = in_ms(pd.DataFrame.from_records([m.row() for m in comparison.measurements]))[::-1]
    fig, ax = _new_axes(ax, height=0.6 + 0.55 * len(frame))
    medians = frame["median_ms"]
    whiskers = [medians - frame["q1_ms"], frame["q3_ms"] - medians]
    colors = [COLORS[i % len(COLORS)] for i in range(len(frame))][::-1]
    ax.barh(frame["variant"], medians, xerr=whiskers, color=colors, capsize=3)
    if log is None:
        log = medians.max() / max(medians.min(), 1e-9) > 50
    if log:
        ax.set_xscale("log")
    for y, row in enumerate(frame.itertuples()):
        label = f" {format_ms(row.median_ms / 1000)}"  # 1,113 ms, not 1.11e+03 ms
        if row.statements is not None and row.statements == row.statements:  # not None, not NaN
            label += f" · {int(row.statements)} stmt"
        # Written just past the whisker so the label never sits on the error bar.
        ax.annotate(label, (row.q3_ms, y), va="center", fontsize=8, xytext=(6, 0), textcoords="offset points")
    ax.set_xlabel("median time per call (ms)" + (", log scale" if log else ""))
    title = comparison.title or comparison.lesson
    ax.set_title(f"{title} — {comparison.backend}, size {comparison.size}", fontsize=10)
    ax.margins(x=0.25)
    return fig


def scaling_chart(
    frame: pd.DataFrame, *, x: str = "n", xlabel: str = "N", log: bool = False, ax: Any = None
) -> Any:
    """Median time against N for each variant, with the interquartile band."""
    fig, ax = _new_axes(ax)
    for i, (variant, part) in enumerate(frame.groupby("variant", sort=False)):
        color = COLORS[i % len(COLORS)]
        ax.plot(part[x], part["median_ms"], marker="o", color=color, label=str(variant))
        if "q1_ms" in part:
            ax.fill_between(part[x], part["q1_ms"], part["q3_ms"], color=color, alpha=0.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("median time (ms)")
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def history_chart(frame: pd.DataFrame, *, ax: Any = None) -> Any:
    """Each variant's median across stored runs, one line per comparison and variant."""
    fig, ax = _new_axes(ax)
    several = "comparison" in frame and frame["comparison"].nunique() > 1
    keys = ["comparison", "variant"] if "comparison" in frame else ["variant"]
    for i, (key, part) in enumerate(frame.groupby(keys, sort=False)):
        parts = key if isinstance(key, tuple) else (key,)
        label = " · ".join(map(str, parts)) if several else str(parts[-1])
        ax.plot(
            part["measured_at"],
            part["median_s"] * 1000,
            marker="o",
            color=COLORS[i % len(COLORS)],
            label=label,
        )
    ax.set_ylabel("median time (ms)")
    medians = frame["median_s"]
    if medians.max() > 10 * medians.min() > 0:  # log only when the lines are orders of magnitude apart
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    ax.legend(fontsize=7 if several else 8)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return fig


def runs_histogram(measurement: Measurement, *, bins: int = 15, ax: Any = None) -> Any:
    """How one measurement's runs spread: a histogram of their times, with the median and the mean marked."""
    fig, ax = _new_axes(ax, height=2.6)
    times_ms = [t * 1000 for t in measurement.times_s]
    ax.hist(times_ms, bins=bins, color=COLORS[1])
    ax.axvline(measurement.median_s * 1000, color=COLORS[0], label="median")
    ax.axvline(sum(times_ms) / measurement.runs, color=COLORS[6], linestyle="--", label="mean")
    ax.set_xlabel("time per call (ms)")
    ax.set_ylabel("runs")
    ax.legend()
    return fig


def show_figure(fig: Any) -> None:
    """Display a figure once in a notebook (and free it), or do nothing outside one."""

    display(fig)
    plt.close(fig)


# ---------------------------------------------------------------------- charts
def timeline_chart(watch: PoolTimeline, *, title: str = "", ax: Any = None) -> Any:
    """Connections checked out and, stacked on them, requests waiting for one, against the pool's limits.

    While requests give their connections back, the total height is the number of requests in the app; a leak
    shows as checked-out connections that stay when no request holds them.
    """

    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 3.6), layout="constrained")
    else:
        fig = ax.figure
    timeline, requests = watch.timeline, watch.requests
    first = requests["started_ms"].min() if len(requests) else 0.0
    t = ((timeline["t_ms"] - first) / 1000).clip(lower=0)
    holding, waiting = timeline["checked_out"], timeline["checked_out"] + timeline["waiting"]
    ax.fill_between(t, 0, holding, step="post", color=COLORS[1], alpha=0.55, label="connections checked out")
    ax.fill_between(
        t, holding, waiting, step="post", color=COLORS[0], alpha=0.45, label="requests waiting for a connection"
    )
    ax.step(t, timeline["open"], where="post", color="black", linewidth=1.2, label="connections open")
    settings = watch.settings
    if "pool_size" in settings:
        size, limit = settings["pool_size"], settings["pool_size"] + max(settings["max_overflow"], 0)
        ax.axhline(size, color="grey", linestyle=":", linewidth=1)
        ax.annotate(
            f"pool_size {size}",
            (1, size),
            xycoords=("axes fraction", "data"),
            xytext=(3, -3),
            textcoords="offset points",
            fontsize=7,
            va="center",
        )
        if limit != size:
            ax.axhline(limit, color="black", linestyle="--", linewidth=1)
            ax.annotate(
                f"+ max_overflow = {limit}",
                (1, limit),
                xycoords=("axes fraction", "data"),
                xytext=(3, 0),
                textcoords="offset points",
                fontsize=7,
                va="center",
            )
    failed = requests[requests["status"] >= 500]
    if len(failed):
        ends = (failed["started_ms"] + failed["total_ms"] - first) / 1000
        ax.plot(
            ends,
            [0] * len(failed),
            "x",
            color=COLORS[0],
            markersize=7,
            clip_on=False,
            label=f"answered {int(failed['status'].iloc[0])} ({len(failed)})",
        )
    ax.set_xlabel("time since the first request (s)")
    ax.set_ylabel("connections, requests")
    ax.set_ylim(bottom=0)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=4, frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    return fig  # fmt: skip


def concurrency_chart(frame: pd.DataFrame, *, limit: int | None = None, title: str = "") -> Any:
    """Throughput, and waits and p95 latency, against the number of concurrent clients (one row per load)."""

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
    x = frame.index
    left.plot(x, frame["throughput_rps"], marker="o", color=COLORS[1])
    left.set_ylabel("requests per second")
    right.plot(x, frame["p95_ms"], marker="o", color=COLORS[0], label="p95 latency")
    right.plot(x, frame["median_wait_ms"], marker="s", color=COLORS[4], label="median wait for a connection")
    right.set_ylabel("ms")
    right.legend(fontsize=7, loc="upper left")
    for ax in (left, right):
        ax.set_xlabel("concurrent clients")
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
        if limit is not None:
            ax.axvline(limit, color="black", linestyle="--", linewidth=1)
            ax.annotate(
                "pool limit",
                (limit, 1),
                xycoords=("data", "axes fraction"),
                xytext=(3, -3),
                textcoords="offset points",
                fontsize=7,
                rotation=90,
                va="top",
            )
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def bars_side_by_side(comparisons: Mapping[str, Comparison]) -> Any:
    """One bar chart per comparison, side by side, each on its own scale (backends differ by a lot)."""

    fig, axes = plt.subplots(
        1, len(comparisons), figsize=(5.2 * len(comparisons), 2.4), layout="constrained", squeeze=False
    )
    for ax, (name, comparison) in zip(axes[0], comparisons.items(), strict=True):
        bar_chart(comparison, ax=ax)
        ax.set_title(f"{name}, size {comparison.size}", fontsize=10)
    first = next(iter(comparisons.values()), None)
    if first is not None and first.title:
        fig.suptitle(first.title, fontsize=10)
    return fig


# ---------------------------------------------------------------------- charts
def hit_ratio_chart(frame: pd.DataFrame, *, pages: Mapping[str, int] | None = None, ax: Any = None) -> Any:
    """Hit ratio (0–1) against cache size: one line per column of `frame`, its index the sizes.

    `pages` ({column: how many different pages the traffic asked for}) marks where the cache holds them all.
    """

    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 3.2), layout="constrained")
    else:
        fig = ax.figure
    for i, column in enumerate(frame.columns):
        color = COLORS[(i + 1) % len(COLORS)]
        ax.plot(frame.index, frame[column], marker="o", color=color, label=str(column))
        if pages and column in pages:
            ax.axvline(pages[column], color=color, linestyle=":", linewidth=1)
            ax.annotate(
                f" {pages[column]:,} pages",
                (pages[column], 0.03),
                color=color,
                fontsize=7,
                rotation=90,
                va="bottom",
            )
    ax.set_xscale("log")
    ax.set_xlabel(str(frame.index.name or "cache size (entries)") + ", log scale")
    ax.set_ylabel("requests answered from the cache")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def split_chart(frame: pd.DataFrame, *, title: str = "") -> Any:
    """Horizontal bars of each profiler's share of time per category (columns are profilers, values %)."""

    shown = frame.loc[(frame > 0.5).any(axis=1)][::-1]
    fig, ax = plt.subplots(figsize=(7.5, 0.6 + 0.45 * len(shown) * max(1, len(shown.columns) / 1.5)))
    fig.set_layout_engine("constrained")
    height = 0.8 / max(1, len(shown.columns))
    for i, column in enumerate(shown.columns):
        positions = [y + (i - (len(shown.columns) - 1) / 2) * height for y in range(len(shown))]
        ax.barh(positions, shown[column], height=height, color=COLORS[(i + 1) % len(COLORS)], label=str(column))
        for y, value in zip(positions, shown[column], strict=True):
            ax.annotate(f" {value:.0f}%", (value, y), va="center", fontsize=8)
    ax.set_yticks(range(len(shown)), shown.index)
    ax.set_xlabel("share of the profiled request's self time (%)")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title, fontsize=10)
    ax.margins(x=0.15)
    return fig
