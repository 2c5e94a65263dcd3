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
    ms = comparison.measurements
    fig, ax = _new_axes(ax, height=0.6 + 0.55 * len(ms))
    names = [m.variant for m in ms][::-1]
    medians = [m.median_s * 1000 for m in ms][::-1]
    low = [(m.median_s - m.q1_s) * 1000 for m in ms][::-1]
    high = [(m.q3_s - m.median_s) * 1000 for m in ms][::-1]
    colors = [COLORS[i % len(COLORS)] for i in range(len(ms))][::-1]
    ax.barh(names, medians, xerr=[low, high], color=colors, capsize=3)
    if log is None:
        log = max(medians) / max(min(medians), 1e-9) > 50
    if log:
        ax.set_xscale("log")
    for y, m in enumerate(ms[::-1]):
        label = f" {m.median_s * 1000:.3g} ms"
        if m.statements is not None:
            label += f" · {m.statements} stmt"
        # Written just past the whisker so the label never sits on the error bar.
        ax.annotate(label, (m.q3_s * 1000, y), va="center", fontsize=8, xytext=(6, 0), textcoords="offset points")
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
    """Each variant's median across stored runs, so a rerun sits next to earlier ones."""
    fig, ax = _new_axes(ax)
    for i, (variant, part) in enumerate(frame.groupby("variant", sort=False)):
        ax.plot(
            part["measured_at"],
            part["median_s"] * 1000,
            marker="o",
            color=COLORS[i % len(COLORS)],
            label=str(variant),
        )
    ax.set_ylabel("median time (ms)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return fig


def show_figure(fig: Any) -> None:
    """Display a figure once in a notebook (and free it), or do nothing outside one."""
    from IPython.display import display

    display(fig)
    plt.close(fig)
