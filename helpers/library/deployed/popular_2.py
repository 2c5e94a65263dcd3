"""GET /popular as deployed (one version of it)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from flask import jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ...shop.db import get_session
from ..caching import cache
from ..models import GENRES, TODAY, Loan

__all__ = ["popular"]


@cache.cached(timeout=300, query_string=True)  # one entry per genre asked for
def popular() -> ResponseReturnValue:
    """The 10 books of ?genre= borrowed most in the last 90 days, with how often."""
    genre = request.args.get("genre", GENRES[0])
    since = TODAY - timedelta(days=90)
    recent = get_session().scalars(select(Loan).options(joinedload(Loan.book)).where(Loan.borrowed_at >= since))
    counts = Counter((loan.book.id, loan.book.title) for loan in recent if loan.book.genre == genre)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0][0]))[:10]
    return jsonify(genre=genre, books=[{"id": i, "title": t, "loans": n} for (i, t), n in ranked])
