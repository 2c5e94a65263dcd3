"""GET /feed as deployed (one version of it)."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import Select, func, select

from ...shop.db import get_session
from ..models import Loan
from ..params import int_arg

__all__ = ["FEED_PAGE", "loan_feed", "paginate"]

FEED_PAGE = 100


def paginate(query: Select[*tuple[Any, ...]], start: int, size: int) -> list[Any]:
    """One page of any query: the `size` rows from position `start` (the team's shared paginator)."""
    return list(get_session().execute(query.offset(start).limit(size)))


def loan_feed() -> ResponseReturnValue:
    """The loan ledger for the branches' sync job: 100 loans by id, after ?after=<id>."""
    after = int_arg("after", 0)
    position = get_session().scalar(select(func.count()).select_from(Loan).where(Loan.id <= after)) or 0
    query = select(Loan.id, Loan.book_id, Loan.member_id, Loan.borrowed_at, Loan.returned_at, Loan.status)
    rows = [
        {
            "id": id_,
            "book_id": book,
            "member_id": member,
            "borrowed": borrowed.isoformat(),
            "returned": returned.isoformat() if returned else None,
            "status": status,
        }
        for id_, book, member, borrowed, returned, status in paginate(query.order_by(Loan.id), position, FEED_PAGE)
    ]
    return jsonify(loans=rows, next=rows[-1]["id"] if len(rows) == FEED_PAGE else None)
