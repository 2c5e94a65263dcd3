"""GET /books/<id> as deployed (one version of it)."""

from __future__ import annotations

from flask import abort, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from ...shop.db import get_session
from ..caching import cache
from ..models import Book, Loan

__all__ = ["book_detail", "find_book"]


@cache.memoize(timeout=300)
def find_book(book_id: int) -> Book | None:
    """The book, kept in the cache: popular books are asked for all day."""
    return get_session().get(Book, book_id)


def book_detail(book_id: int) -> ResponseReturnValue:
    """One book: title, author, genre, year, ISBN, synopsis, and how often it was borrowed."""
    book = find_book(book_id)
    if book is None:
        abort(404, description=f"no book {book_id}")
    borrowed = get_session().scalar(select(func.count()).select_from(Loan).where(Loan.book_id == book_id))
    return jsonify(
        id=book.id,
        title=book.title,
        author=book.author.name,
        genre=book.genre,
        year=book.published_year,
        isbn=book.isbn,
        synopsis=book.synopsis,
        times_borrowed=borrowed,
    )
