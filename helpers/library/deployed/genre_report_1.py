"""GET /reports/genres as deployed (one version of it)."""

from __future__ import annotations

from datetime import timedelta

from flask import jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from ...shop.db import get_session
from ..caching import cache
from ..models import GENRES, TODAY, Book, Loan

__all__ = ["genre_report"]


@cache.cached(timeout=300)  # a report over every loan: computed once, served for five minutes
def genre_report() -> ResponseReturnValue:
    """Per genre: how many books, how many are out now, how many loans in the last 30 days."""
    session = get_session()
    since = TODAY - timedelta(days=30)
    report = []
    for genre in GENRES:
        loans = select(func.count()).select_from(Loan).join(Loan.book).where(Book.genre == genre)
        report.append(
            {
                "genre": genre,
                "books": session.scalar(select(func.count()).select_from(Book).where(Book.genre == genre)),
                "out": session.scalar(loans.where(Loan.status == "out")),
                "recent_loans": session.scalar(loans.where(Loan.borrowed_at >= since)),
            }
        )
    return jsonify(genres=report)
