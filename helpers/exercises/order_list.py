"""The order list's "improve the app" task as lessons 03 and 04 set it: the requests compared with lesson 01's
baseline, the page lesson 01 timed, the budget, and the keyset cursor `next` that the comparison leaves out.

Lesson 03 asks for the order list in two statements; lesson 05 for the same list paged by keyset, with its own
further check. One declaration here, so that both ask the same pages in the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Flask

from .app_task import AppTask, Call

if TYPE_CHECKING:
    from ..course import Course

__all__ = ["PER_PAGE", "deep_pages", "order_list_task", "without_next"]

PER_PAGE = 7  # orders per page in the requests the checks send (not the default 20: pages end at odd places)


def without_next(body: Any) -> Any:
    """An order list's JSON without the keyset cursor `next` the course's version adds (lesson 05)."""
    return {key: value for key, value in body.items() if key != "next"} if isinstance(body, dict) else body


def deep_pages(orders: int, per_page: int, max_page: int = 10_000) -> list[int]:
    """The last page of `per_page` orders and the one after it (empty), as far as ?page= reaches (10,000 at most):
    at the larger sizes the deepest page the parameter allows."""
    last = -(-orders // per_page)
    return [last, last + 1] if last < max_page else [max_page]


def _calls(orders: int, *, edges: bool) -> list[Call]:
    """The requests whose answers must match the baseline's: the first pages, the deepest ?page= reaches (the
    oldest orders, or past the end) and bad parameters; with `edges`, also a page of another size and page 0."""
    calls = [Call("/orders"), Call(f"/orders?page=2&per_page={PER_PAGE}")]
    if edges:
        calls.append(Call("/orders?page=3&per_page=5"))
    calls += [Call(f"/orders?page={page}&per_page={PER_PAGE}") for page in deep_pages(orders, PER_PAGE)]
    calls.append(Call("/orders?page=abc"))
    if edges:
        calls.append(Call("/orders?page=0"))
    calls.append(Call("/orders?per_page=501"))
    return calls


def order_list_task(
    lesson: str,
    course: Course,
    *,
    hint_text: str | tuple[str, ...],
    edges: bool,
    baseline_course: Course | None = None,
    extra: Callable[[Flask], str | None] | None = None,
) -> AppTask:
    """The order list to rewrite in at most two statements per request, on `course` (lesson 05: its indexed copy,
    with the baseline on `baseline_course`); `extra` checks more (lesson 05: the keyset cursor)."""
    return AppTask(
        lesson=lesson,
        endpoint="order_list",
        rule="/orders",
        calls=_calls(course.info.rows["orders"], edges=edges),
        timed=Call("/orders?page=1&per_page=20"),  # what lesson 01 measured
        budget=2,
        hint_text=hint_text,
        course=course,
        baseline_course=baseline_course,
        same=without_next,  # the course's version also returns a keyset cursor (lesson 05)
        extra=extra,
    )
