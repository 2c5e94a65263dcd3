"""GET /books/<id> as deployed (one version of it)."""

from __future__ import annotations

from flask import abort, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ...shop.db import get_engine
from ..caching import cache
from ..models import Author, Book, Loan

__all__ = ["book_detail"]


@cache.cached(timeout=300)
def book_detail(book_id: int) -> ResponseReturnValue:
    """One book: title, author, genre, year, ISBN, synopsis, and how often it was borrowed."""
    # A session of its own, read-only: this page never writes, so it need not share the request's.
    session = Session(get_engine())
    row = session.execute(
        select(Book.id, Book.title, Author.name, Book.genre, Book.published_year, Book.isbn, Book.synopsis)
        .join(Book.author)
        .where(Book.id == book_id)
    ).one_or_none()
    if row is None:
        abort(404, description=f"no book {book_id}")
    borrowed = session.scalar(select(func.count()).select_from(Loan).where(Loan.book_id == book_id))
    session.close()
    keys = ("id", "title", "author", "genre", "year", "isbn", "synopsis")
    return jsonify({**dict(zip(keys, row, strict=True)), "times_borrowed": borrowed})
