"""GET /books as deployed (one version of it)."""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ...shop.db import get_session
from ..models import Book
from ..params import int_arg

__all__ = ["PAGE", "book_list"]

PAGE = 50


def book_list() -> ResponseReturnValue:
    """The catalogue: 50 books (of a genre with ?genre=), by id, after ?after=<id>."""
    genre, after = request.args.get("genre"), int_arg("after", 0)
    query = select(Book).options(joinedload(Book.author)).where(Book.id > after).order_by(Book.id).limit(PAGE)
    if genre:
        query = query.where(Book.genre == genre)
    books = [
        {"id": book.id, "title": book.title, "author": book.author.name, "year": book.published_year}
        for book in get_session().scalars(query)
    ]
    return jsonify(books=books, next=books[-1]["id"] if len(books) == PAGE else None)
