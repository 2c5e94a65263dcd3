"""Query pieces both sets of views share: the sales report's window and filters, the order list's order, the
search's terms."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, UnaryExpression, func, select
from sqlalchemy.orm import Session

from .models import STATUSES, Order
from .params import amount_arg, choice_arg, int_arg, str_arg

__all__ = ["NEWEST_FIRST", "report_window", "search_terms"]

# The order list shows the newest orders first; ids break ties between orders placed in the same second.
NEWEST_FIRST: tuple[UnaryExpression[Any], ...] = (Order.created_at.desc(), Order.id.desc())


def report_window(session: Session) -> tuple[int, list[ColumnElement[bool]] | None]:
    """The report's parameters as conditions on Order: the last `days` days of orders, a status, a minimum.

    Returns the days asked for and the conditions, or None when there are no orders at all.
    """
    days = int_arg("days", 7, high=3650)
    status = choice_arg("status", STATUSES)
    min_total = amount_arg("min_total", None)
    newest = session.scalar(select(func.max(Order.created_at)))
    if newest is None:
        return days, None
    conditions = [Order.created_at >= newest - timedelta(days=days)]
    if status:
        conditions.append(Order.status == status)
    if min_total is not None:
        conditions.append(Order.total >= min_total)
    return days, conditions


def search_terms() -> tuple[str | None, str | None, int]:
    """The search's parameters: a city and a fragment of the name (both optional), how many to list."""
    return str_arg("city"), str_arg("name"), int_arg("limit", 20, high=500)
