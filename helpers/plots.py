"""Charts for measurements: bars with their spread, time against N, history across reruns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import matplotlib

if TYPE_CHECKING:
    import pandas as pd

    from .harness import Comparison

# A headless default for scripts and tests; Jupyter's inline backend still wins in a kernel.
if matplotlib.get_backend().lower() not in ("module://matplotlib_inline.backend_inline", "inline"):
    matplotlib.use("Agg")

import matplotlib.pyplot as plt

COLORS = ("#b04a3a", "#3a6fb0", "#4a9a5a", "#8a5ab0", "#c08a2a", "#2a9aa0", "#707070")


def _new_axes(ax: Any, width: float = 7.5, height: float = 3.2) -> tuple[Any, Any]:
    if ax is not None:
        return ax.figure, ax
    fig, new_ax = plt.subplots(figsize=(width, height), layout="constrained")
    return fig, new_ax


def bar_chart(comparison: Comparison, *, log: bool | None = None, ax: Any = None) -> Any:
    """Horizontal bars of median time, whiskers spanning the middle half of the runs."""
    import pandas as pd

    from .harness import format_ms, in_ms

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


def show_figure(fig: Any) -> None:
    """Display a figure once in a notebook (and free it), or do nothing outside one."""
    from IPython.display import display

    display(fig)
    plt.close(fig)
