"""The lessons in order: the one list that the README, notebook 00 and the navigation lines follow."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lesson:
    number: str
    slug: str
    title: str

    @property
    def filename(self) -> str:
        return f"{self.number}_{self.slug}.ipynb"


LESSONS: tuple[Lesson, ...] = (
    Lesson("00", "start_here", "Start here"),
    Lesson("01", "baseline_app", "The baseline app"),
    Lesson("02", "projection", "Projection: select only what you use"),
    Lesson("03", "joins_and_n_plus_one", "Joins and the N+1 problem"),
    Lesson("04", "indexing", "Indexing"),
    Lesson("05", "caching", "Caching with Flask-Caching"),
    Lesson("06", "connection_pooling", "Connection pooling"),
    Lesson("07", "batch_operations", "Batch operations"),
    Lesson("08", "profiling_and_monitoring", "Profiling and monitoring"),
    Lesson("09", "capstone", "Capstone: the finished app under load"),
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
