"""GET /popular as deployed (one version of it)."""

from __future__ import annotations

from datetime import timedelta

from flask import jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from ...shop.db import get_session
from ..caching import cache
from ..models import GENRES, TODAY, Book, Loan

__all__ = ["popular"]


@cache.cached(timeout=300)
def popular() -> ResponseReturnValue:
    """The 10 books of ?genre= borrowed most in the last 90 days, with how often."""
    genre = request.args.get("genre", GENRES[0])
    since = TODAY - timedelta(days=90)
    count = func.count(Loan.id)
    rows = get_session().execute(
        select(Book.id, Book.title, count)
        .join(Loan.book)
        .where(Book.genre == genre, Loan.borrowed_at >= since)
        .group_by(Book.id, Book.title)
        .order_by(count.desc(), Book.id)
        .limit(10)
    )
    return jsonify(genre=genre, books=[{"id": i, "title": t, "loans": n} for i, t, n in rows])
