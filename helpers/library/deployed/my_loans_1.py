"""GET /me/loans as deployed (one version of it)."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from ...shop.db import get_session
from ..caching import cache
from ..models import Book, Loan
from ..params import member_id

__all__ = ["my_loans"]


@cache.cached(timeout=60)
def my_loans() -> ResponseReturnValue:
    """The signed-in member's page: the books they have out, and the last 10 they returned."""
    me = member_id()
    rows = get_session().execute(
        select(Loan.id, Book.title, Loan.borrowed_at, Loan.due_at, Loan.status)
        .join(Loan.book)
        .where(Loan.member_id == me)
        .order_by(Loan.borrowed_at.desc(), Loan.id.desc())
    )
    out: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    for id_, title, borrowed, due, status in rows:
        item = {"id": id_, "book": title, "borrowed": borrowed.isoformat(), "due": due.isoformat()}
        if status == "out":
            out.append(item)
        elif len(history) < 10:
            history.append(item)
    return jsonify(member=me, out=out, history=history)
