"""The library's tables as SQLAlchemy 2.x declarative models: authors, books, members and their loans."""

from __future__ import annotations

from datetime import datetime
from functools import cache

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "GENRES",
    "LOAN_DAYS",
    "STATUSES",
    "TODAY",
    "Author",
    "Base",
    "Book",
    "Loan",
    "Member",
    "deployed_indexes",
]


class Base(DeclarativeBase):
    """Declarative base shared by every library model."""


class Author(Base):
    __tablename__ = "authors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    country: Mapped[str] = mapped_column(String(40))
    bio: Mapped[str] = mapped_column(Text)  # wide: a few hundred words

    books: Mapped[list[Book]] = relationship(back_populates="author")

    def __repr__(self) -> str:
        return f"Author(id={self.id}, name={self.name!r})"


class Book(Base):
    __tablename__ = "books"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
    genre: Mapped[str] = mapped_column(String(30))  # low selectivity: twelve genres
    isbn: Mapped[str] = mapped_column(String(20))  # selective: one book each
    published_year: Mapped[int]
    synopsis: Mapped[str] = mapped_column(Text)  # wide: a long paragraph
    added_at: Mapped[datetime]

    author: Mapped[Author] = relationship(back_populates="books")
    loans: Mapped[list[Loan]] = relationship(back_populates="book")

    @property
    def author_name(self) -> str:
        """The author's name, for display."""
        return self.author.name

    def __repr__(self) -> str:
        return f"Book(id={self.id}, title={self.title!r})"


class Member(Base):
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(60))
    joined_at: Mapped[datetime]
    notes: Mapped[str] = mapped_column(Text)  # wide: the librarians' notes

    loans: Mapped[list[Loan]] = relationship(back_populates="member")

    def __repr__(self) -> str:
        return f"Member(id={self.id}, name={self.name!r})"


class Loan(Base):
    __tablename__ = "loans"

    id: Mapped[int] = mapped_column(primary_key=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    borrowed_at: Mapped[datetime]
    due_at: Mapped[datetime]
    returned_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20))  # low selectivity: 'returned' or 'out'

    book: Mapped[Book] = relationship(back_populates="loans")
    member: Mapped[Member] = relationship(back_populates="loans")

    def __repr__(self) -> str:
        return f"Loan(id={self.id}, book_id={self.book_id}, member_id={self.member_id}, status={self.status!r})"


GENRES = (
    "fiction",
    "crime",
    "fantasy",
    "science fiction",
    "history",
    "biography",
    "science",
    "poetry",
    "travel",
    "cooking",
    "children",
    "philosophy",
)
STATUSES = ("returned", "out")
TODAY = datetime(2026, 1, 1)  # the library's "now": every dataset is as it was that morning
LOAN_DAYS = 21


@cache
def deployed_indexes() -> tuple[Index, ...]:
    """The secondary indexes the library runs with in production (the datasets are built without them).

    Made once, on demand: an `Index` on a model's columns attaches itself to the table (builds leave them out).
    """
    return (
        Index("ix_books_author_id", Book.author_id),
        Index("ix_books_genre_id", Book.genre, Book.id),
        Index("ix_loans_member_borrowed", Loan.member_id, Loan.borrowed_at),
        Index("ix_loans_book_id", Loan.book_id),
        Index("ix_loans_status_due", Loan.status, Loan.due_at),
        Index("ix_loans_borrowed_at", Loan.borrowed_at),
    )
