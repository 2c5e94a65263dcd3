"""The lessons in order: the one list that the README, notebook 00, the navigation lines, the site and the
tests follow. Adding a lesson starts here (the README's "Adding a lesson" lists the rest)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LESSONS", "Lesson", "navigation", "navigation_line"]


@dataclass(frozen=True)
class Lesson:
    """One lesson: `notebooks/<number>_<slug>.ipynb`; with `exercises`, its questions are declared in
    `helpers/exercises/lesson<number>.py` and tested in `tests/test_lesson<number>.py`; `topics` name the modules
    of `helpers/topics/` that hold its instruments."""

    number: str
    slug: str
    title: str
    exercises: bool = True
    topics: tuple[str, ...] = ()

    @property
    def filename(self) -> str:
        return f"{self.number}_{self.slug}.ipynb"


LESSONS: tuple[Lesson, ...] = (
    Lesson("00", "start_here", "Start here", exercises=False),
    Lesson("01", "baseline_app", "The baseline app"),
    Lesson("02", "projection", "Projection: select only what you use"),
    Lesson("03", "joins_and_n_plus_one", "Joins and the N+1 problem", topics=("joins",)),
    Lesson("04", "index_fundamentals", "Indexes: the fundamentals", topics=("indexing",)),
    Lesson(
        "05", "indexes_for_endpoints", "Indexes for the app's endpoints", topics=("indexing", "endpoint_indexes")
    ),
    Lesson("06", "caching", "Caching with Flask-Caching", topics=("caching",)),
    Lesson("07", "connection_pooling", "Connection pooling", topics=("pooling",)),
    Lesson("08", "batch_operations", "Batch operations", topics=("batching",)),
    Lesson(
        "09", "profiling_and_monitoring", "Profiling and monitoring", topics=("profiling", "panel", "query_budget")
    ),
    Lesson("10", "capstone", "Capstone: the finished app under load", topics=("loadtest", "capstone")),
    Lesson("11", "on_call", "On call: an app you have never seen", exercises=False, topics=("oncall", "slo")),
)


def navigation(number: str) -> list[tuple[str, Lesson | None]]:
    """'← previous', 'Contents', 'next →' for a lesson: each link's text and the lesson it leads to (None: the
    contents). The notebooks' navigation line and the site's pages both write it from here."""
    index = [lesson.number for lesson in LESSONS].index(number)
    links: list[tuple[str, Lesson | None]] = []
    if index > 0:
        prev = LESSONS[index - 1]
        links.append((f"← {prev.number} {prev.title}", prev))
    links.append(("Contents", None))
    if index + 1 < len(LESSONS):
        nxt = LESSONS[index + 1]
        links.append((f"{nxt.number} {nxt.title} →", nxt))
    return links


def navigation_line(number: str) -> str:
    """'← previous · contents · next →' for a lesson, as Markdown links (the first line of each notebook)."""
    return " · ".join(f"[{text}]({(lesson or LESSONS[0]).filename})" for text, lesson in navigation(number))
